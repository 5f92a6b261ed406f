"""Fixtures of the key tests: Secret Manager's fake, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cloud import FakeSecretManager


@pytest.fixture(scope="module")
def fake_sm() -> Iterator[FakeSecretManager]:
    fake = FakeSecretManager()
    yield fake
    fake.stop()
