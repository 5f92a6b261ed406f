"""Fixtures of the limits tests: DynamoDB in moto, and a way to open each store (Redis: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lib.limits.base import LimitStore
from lib.limits.dynamodb import DynamoStore
from lib.limits.memory import MemoryStore
from lib.limits.redis import RedisStore
from tests.support.cloud import create_limits_table, point_dynamodb_at_moto
from tests.support.redis_server import RedisServer

StoreOpener = Callable[[], LimitStore]


@pytest.fixture
def dynamo_table(monkeypatch) -> str:
    """A fresh limits table in the shared moto server, and boto3 pointed at it."""
    point_dynamodb_at_moto(monkeypatch)
    return create_limits_table()


@pytest.fixture(params=["memory", "redis", "dynamodb"])
def open_store(request, redis_server: RedisServer) -> StoreOpener:
    """Opens the store under test; each call is a new client, as another instance would have.

    (Memory stores share nothing, so for them each call is the same store.)
    """
    if request.param == "memory":
        memory = MemoryStore()
        return lambda: memory
    # These tests hold what each store counts, not how fast: a generous timeout, so that 100 calls at
    # once on a busy CI machine are still answered (the deployed timeout: tests/limits/test_fallback.py).
    if request.param == "redis":
        return lambda: RedisStore(redis_server.url, timeout_s=5.0)
    table = request.getfixturevalue("dynamo_table")
    return lambda: DynamoStore(table, timeout_s=5.0)
