"""Fixtures of the Terraform tests: each stack, parsed and merged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.hcl import STACKS, load_stack


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, load_stack(request.param)
