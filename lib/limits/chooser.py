"""Chooses the limits store named by `STREAMGATE_LIMITS` and builds the limiter over it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from lib.config import ConfigError
from lib.limits.base import LimitStore
from lib.limits.estimate import DEFAULT_OUTPUT_TOKENS
from lib.limits.fallback import DEFAULT_TIMEOUT_S, FallbackStore
from lib.limits.limiter import DEFAULT_LEASE_TTL_S, Limiter
from lib.limits.memory import MemoryStore

log = logging.getLogger("streamgate.limits")
DYNAMODB_PREFIX = "dynamodb://"
REDIS_PREFIXES = ("redis://", "rediss://")


def store_kind(spec: str) -> str:
    """`memory`, `redis` or `dynamodb`, by the shape of `spec` (anything else is a ConfigError)."""
    if spec in ("", "memory"):
        return "memory"
    if spec.startswith(REDIS_PREFIXES):
        return "redis"
    if spec.startswith(DYNAMODB_PREFIX) and len(spec) > len(DYNAMODB_PREFIX):
        return "dynamodb"
    raise ConfigError(
        "STREAMGATE_LIMITS: use memory, redis://HOST[:PORT][/DB], rediss://... or dynamodb://TABLE"
    )


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number from the environment, or `default` when unset or empty."""
    try:
        value = float(env.get(name, "") or default)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None
    if not value > 0:
        raise ConfigError(f"{name} must be positive")
    return value


def open_store(spec: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> LimitStore:
    """The store `spec` names; redis and boto3 are imported only for their own store."""
    kind = store_kind(spec)
    if kind == "redis":
        from lib.limits.redis import RedisStore

        return RedisStore(spec, timeout_s=timeout_s)
    if kind == "dynamodb":
        from lib.limits.dynamodb import DynamoStore

        return DynamoStore(spec[len(DYNAMODB_PREFIX) :], timeout_s=timeout_s)
    return MemoryStore()


def open_limiter(env: Mapping[str, str] | None = None) -> Limiter:
    """The limiter from the environment: a shared store behind the fallback, or per-instance memory."""
    env = os.environ if env is None else env
    spec = env.get("STREAMGATE_LIMITS", "").strip()
    timeout_s = _positive(env, "STREAMGATE_LIMITS_TIMEOUT_S", DEFAULT_TIMEOUT_S)
    store = open_store(spec, timeout_s)
    if isinstance(store, MemoryStore):
        log.info(
            "limits are counted per instance (STREAMGATE_LIMITS is not a shared store)"
        )
    else:
        store = FallbackStore(store, timeout_s=timeout_s, label=store_kind(spec))
    output = _positive(env, "STREAMGATE_DEFAULT_OUTPUT_TOKENS", DEFAULT_OUTPUT_TOKENS)
    return Limiter(
        store,
        lease_ttl_s=_positive(env, "STREAMGATE_LEASE_TTL_S", DEFAULT_LEASE_TTL_S),
        default_output_tokens=int(output),
    )
