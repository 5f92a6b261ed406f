"""Redis stopped mid-run: rate limits go on per instance with one warning; budgets answer 503; then back."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from lib.errors import ServiceUnavailable
from lib.limits.base import QuotaExceeded
from lib.limits.chooser import open_limiter
from lib.limits.estimate import TokenEstimate
from lib.limits.fallback import FallbackStore
from lib.limits.limiter import Limiter
from lib.limits.policy import parse_limits
from lib.limits.redis import RedisStore
from tests.support.redis_server import RedisServer

EST = TokenEstimate(10, 90)
RATES = parse_limits({"requestsPerMinute": 3, "concurrentStreams": 5})
BUDGET = parse_limits({"requestsPerMinute": 100, "tokensPerDay": 10_000})
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def redis(tmp_path) -> RedisServer:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "streamgate.limits" and r.levelno == logging.WARNING
    ]


async def outcome(limiter: Limiter, key: str, limits, when: datetime) -> str:
    try:
        await limiter.admit(key, limits, "gemini-2.5-flash", EST, now=when)
    except QuotaExceeded:
        return "429"
    except ServiceUnavailable as exc:
        assert exc.status_code == 503 and exc.headers["Retry-After"]
        return "503"
    return "ok"


def test_an_outage_falls_back_per_limit_class_and_recovers(redis, caplog):
    caplog.set_level(logging.INFO, logger="streamgate.limits")
    store = FallbackStore(RedisStore(redis.url), timeout_s=0.3, retry_after_s=0.2)

    async def scenario() -> list[str]:
        limiter = Limiter(store)
        seen = [await outcome(limiter, "rates", RATES, NOW)]
        seen.append(await outcome(limiter, "budget", BUDGET, NOW))
        redis.stop()
        # Per instance now: the three of this minute are counted afresh, so three more, then 429.
        seen += [await outcome(limiter, "rates", RATES, NOW) for _ in range(4)]
        seen += [await outcome(limiter, "budget", BUDGET, NOW) for _ in range(2)]
        redis.start()
        await asyncio.sleep(0.3)
        later = NOW + timedelta(seconds=1)
        seen.append(await outcome(limiter, "rates", RATES, later))
        seen.append(await outcome(limiter, "budget", BUDGET, later))
        await limiter.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen == ["ok", "ok", "ok", "ok", "ok", "429", "503", "503", "ok", "ok"]
    messages = warnings(caplog)
    assert len(messages) == 2, messages
    assert "unreachable" in messages[0] and "counted per instance" in messages[0]
    assert "reachable again" in messages[1]


def test_a_lease_taken_during_an_outage_is_renewed_and_released_where_it_was_counted(
    redis,
):
    store = FallbackStore(RedisStore(redis.url), timeout_s=0.3, retry_after_s=0.2)
    limits = parse_limits({"concurrentStreams": 1})

    async def scenario() -> list[object]:
        limiter = Limiter(store)
        redis.stop()
        lease = await limiter.admit("streams", limits, "m", EST, now=NOW)
        seen: list[object] = [await outcome(limiter, "streams", limits, NOW)]
        seen.append(await limiter.renew(lease, now=NOW))
        await limiter.settle(lease, None, now=NOW)
        seen.append(await outcome(limiter, "streams", limits, NOW))
        await limiter.close()
        return seen

    assert asyncio.run(scenario()) == ["429", True, "ok"]


def test_a_store_that_never_answered_still_serves_keys_without_budgets(caplog):
    limiter = open_limiter(
        {
            "STREAMGATE_LIMITS": "redis://127.0.0.1:1/0",
            "STREAMGATE_LIMITS_TIMEOUT_S": "0.2",
        }
    )

    async def scenario() -> list[str]:
        seen = [await outcome(limiter, "a", RATES, NOW) for _ in range(2)]
        seen.append(await outcome(limiter, "b", BUDGET, NOW))
        admission = await limiter.admit("c", parse_limits({}), "m", EST)
        await limiter.settle(admission, {"promptTokenCount": 1})
        await limiter.close()
        return seen

    assert asyncio.run(scenario()) == ["ok", "ok", "503"]
    assert isinstance(limiter.store, FallbackStore)
    assert limiter.store.lost_records == 1
    assert len(warnings(caplog)) == 1
