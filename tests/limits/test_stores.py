"""Every store (memory, Redis, DynamoDB) holds the same semantics: exact sliding windows, all-or-nothing,
reserve then settle, leases that expire, UTC day and month budgets, usage read back."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis as redis_client

from lib.limits.base import Admission, QuotaExceeded, StoreUnavailable
from lib.limits.estimate import TokenEstimate
from lib.limits.limiter import Limiter
from lib.limits.policy import parse_limits
from lib.limits.redis import MAX_CONNECTIONS, RedisStore, key_prefix
from tests.support.redis_server import RedisServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EST = TokenEstimate(10, 90)
FLASH = "gemini-2.5-flash"


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def new_key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


def run(step: Awaitable[Any]) -> Any:
    return asyncio.run(step)


async def attempt(
    limiter: Limiter,
    key_id: str,
    limits: dict[str, Any],
    when: datetime | None,
    est: TokenEstimate = EST,
    model: str = FLASH,
) -> Admission | QuotaExceeded:
    try:
        return await limiter.admit(key_id, parse_limits(limits), model, est, now=when)
    except QuotaExceeded as refused:
        return refused


def admitted(results: list[Any]) -> list[Admission]:
    return [r for r in results if isinstance(r, Admission)]


async def all_at_once(store: Any, limits: dict[str, Any], n: int) -> list[Any]:
    """`n` admissions of one new key at once through a limiter over `store`, which it then closes."""
    limiter = Limiter(store)
    key = new_key()
    try:
        return await asyncio.gather(
            *(attempt(limiter, key, limits, None) for _ in range(n))
        )
    finally:
        await limiter.close()


def test_rpm_admits_exactly_n_of_100_concurrent_requests(open_store):
    results = run(all_at_once(open_store(), {"requestsPerMinute": 50}, 100))
    assert len(admitted(results)) == 50
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(refused) == 50
    assert {r.quota_ids[0] for r in refused} == {"RequestsPerMinutePerKey"}


@pytest.mark.parametrize("open_store", ["redis", "dynamodb"], indirect=True)
def test_two_instances_share_one_limit(open_store):
    async def scenario() -> list[Any]:
        one, two = Limiter(open_store()), Limiter(open_store())
        key, limits = new_key(), {"requestsPerMinute": 30, "concurrentStreams": 25}
        try:
            return await asyncio.gather(
                *(attempt(lim, key, limits, None) for lim in [one, two] * 30)
            )
        finally:
            await one.close()
            await two.close()

    assert len(admitted(run(scenario()))) == 25


def test_the_minute_is_any_60_s_window_not_a_fixed_one(open_store):
    async def scenario() -> list[Any]:
        limiter, key, limits = (
            Limiter(open_store()),
            new_key(),
            {"requestsPerMinute": 3},
        )
        seen = []
        for when in [50, 50, 50, 61, 109.9, 110, 110, 110, 111]:
            result = await attempt(limiter, key, limits, at(when))
            seen.append(result if isinstance(result, QuotaExceeded) else "ok")
        await limiter.close()
        return seen

    seen = run(scenario())
    assert seen[:3] == ["ok"] * 3
    # 61 s is past a fixed minute boundary, but the three from 50 s are still inside the last 60 s.
    assert isinstance(seen[3], QuotaExceeded) and seen[3].retry_after_s == 49
    assert isinstance(seen[4], QuotaExceeded) and seen[4].headers["Retry-After"] == "1"
    assert seen[5:8] == ["ok"] * 3
    assert isinstance(seen[8], QuotaExceeded)


def test_a_refused_request_charges_no_other_limit(open_store):
    async def scenario() -> tuple[list[Any], dict[str, str]]:
        limiter, key = Limiter(open_store()), new_key()
        limits = {"requestsPerMinute": 10, "concurrentStreams": 1, "tokensPerDay": 1000}
        first = await attempt(limiter, key, limits, at(0))
        refused = [await attempt(limiter, key, limits, at(1)) for _ in range(5)]
        await limiter.settle(first, None, now=at(2))
        second = await attempt(limiter, key, limits, at(3))
        await limiter.close()
        return refused, second.headers()

    refused, headers = run(scenario())
    assert all(r.quota_ids == ["ConcurrentStreamsPerKey"] for r in refused)
    # Two admitted requests only: the five refusals took no RPM unit and no tokens.
    assert '"rpm";r=8;t=57' in headers["RateLimit"]
    assert '"tpd";r=800;' in headers["RateLimit"]


def test_tokens_are_reserved_then_settled(open_store):
    async def scenario() -> list[str]:
        limiter, key = Limiter(open_store()), new_key()
        limits, big = {"tokensPerMinute": 1000}, TokenEstimate(100, 500)
        seen = []
        first = await attempt(limiter, key, limits, at(0), big)
        seen.append(type(await attempt(limiter, key, limits, at(1), big)).__name__)
        usage = {
            "promptTokenCount": 60,
            "candidatesTokenCount": 30,
            "thoughtsTokenCount": 10,
        }
        await limiter.settle(first, usage, now=at(2))
        second = await attempt(limiter, key, limits, at(3), big)
        seen.append(second.headers()["RateLimit"])
        # A stream that ends without usage keeps its whole reservation.
        await limiter.settle(second, None, now=at(4))
        seen.append(type(await attempt(limiter, key, limits, at(5), big)).__name__)
        seen.append(type(await attempt(limiter, key, limits, at(63), big)).__name__)
        await limiter.close()
        return seen

    assert run(scenario()) == [
        "QuotaExceeded",
        '"tpm";r=300;t=57',
        "QuotaExceeded",
        "Admission",
    ]


def test_a_reservation_larger_than_the_limit_is_capped_so_the_key_stays_usable(
    open_store,
):
    async def scenario() -> tuple[Any, Any]:
        limiter, key, limits = (
            Limiter(open_store()),
            new_key(),
            {"tokensPerMinute": 100},
        )
        first = await attempt(limiter, key, limits, at(0), TokenEstimate(10, 65536))
        second = await attempt(limiter, key, limits, at(1), TokenEstimate(1, 1))
        await limiter.close()
        return first, second

    first, second = run(scenario())
    assert isinstance(first, Admission) and first.tokens == 100
    assert isinstance(second, QuotaExceeded)


def test_a_lease_is_released_at_once_renewed_while_streaming_and_expires_after_its_ttl(
    open_store,
):
    async def scenario() -> list[str]:
        limiter, key = Limiter(open_store(), lease_ttl_s=2), new_key()
        limits = {"concurrentStreams": 1}
        seen = []

        async def step(when: float) -> Any:
            result = await attempt(limiter, key, limits, at(when))
            seen.append("ok" if isinstance(result, Admission) else "refused")
            return result

        first = await step(0)
        await step(0.5)
        await limiter.settle(first, None, now=at(1))
        lease = await step(1)
        assert await limiter.renew(lease, now=at(2.5))
        await step(4)  # renewed at 2.5, so held until 4.5
        await step(4.6)  # its instance died: nobody renewed or released it
        await limiter.close()
        return seen

    assert run(scenario()) == ["ok", "refused", "ok", "refused", "ok"]


def test_a_usd_budget_refuses_until_the_next_utc_day(open_store):
    async def scenario() -> list[Any]:
        limiter, key, limits = Limiter(open_store()), new_key(), {"usdPerDay": 0.01}
        # 1000 tokens in at $0.30/M and 1000 out at $2.50/M: $0.0028 reserved each.
        est = TokenEstimate(1000, 1000)
        seen = [await attempt(limiter, key, limits, at(0), est) for _ in range(4)]
        seen.append(await attempt(limiter, key, limits, at(12 * 3600), est))
        await limiter.close()
        return seen

    seen = run(scenario())
    assert [type(s).__name__ for s in seen] == ["Admission"] * 3 + [
        "QuotaExceeded",
        "Admission",
    ]
    assert seen[0].micro_usd == 2800
    refused = seen[3]
    assert refused.quota_ids == ["UsdPerDayPerKey"]
    assert refused.headers["Retry-After"] == str(12 * 3600)
    assert refused.details[0]["violations"][0]["quotaValue"] == "10000"


def test_token_budgets_follow_the_utc_day_and_month(open_store):
    async def scenario() -> list[str]:
        limiter, key = Limiter(open_store()), new_key()
        limits = {"tokensPerDay": 250, "tokensPerMonth": 400}
        eve = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
        moments = [
            eve,
            eve,
            eve,
            eve + timedelta(minutes=2),
            eve + timedelta(minutes=3),
        ]
        seen = []
        for when in moments:
            result = await attempt(limiter, key, limits, when)
            seen.append(
                result.quota_ids[0] if isinstance(result, QuotaExceeded) else "ok"
            )
        await limiter.close()
        return seen

    assert run(scenario()) == ["ok", "ok", "TokensPerDayPerKey", "ok", "ok"]


def test_the_month_budget_holds_across_days(open_store):
    async def scenario() -> Any:
        limiter, key = Limiter(open_store()), new_key()
        limits = {"tokensPerMonth": 250}
        for day in (1, 2):
            await attempt(limiter, key, limits, datetime(2026, 12, day, tzinfo=UTC))
        refused = await attempt(limiter, key, limits, datetime(2026, 12, 3, tzinfo=UTC))
        await limiter.close()
        return refused

    refused = run(scenario())
    assert refused.quota_ids == ["TokensPerMonthPerKey"]
    assert refused.retry_after_s == 29 * 86_400


def test_usage_is_recorded_per_key_model_and_day_and_read_back(open_store):
    day = datetime(2026, 3, 4, 10, tzinfo=UTC)
    usage = {
        "promptTokenCount": 1000,
        "candidatesTokenCount": 200,
        "thoughtsTokenCount": 300,
        "cachedContentTokenCount": 400,
        "toolUsePromptTokenCount": 50,
        "totalTokenCount": 1550,
    }

    async def scenario(key: str, other: str) -> tuple[list[Any], list[Any]]:
        limiter = Limiter(open_store())
        for key_id, model, limits in [
            (key, FLASH, {"requestsPerMinute": 100}),
            (key, FLASH, {}),
            (key, "gemini-2.5-pro", {}),
            (other, FLASH, {}),
        ]:
            admission = await attempt(limiter, key_id, limits, day, model=model)
            await limiter.settle(admission, usage, now=day)
        mine = await limiter.usage(key, days=3, now=day + timedelta(days=1))
        every = await limiter.usage(None, days=1, now=day)
        await limiter.close()
        return mine, every

    key, other = sorted([new_key(), new_key()])
    mine, every = run(scenario(key, other))
    assert [r.to_json() for r in mine] == [
        {
            "id": key,
            "day": "2026-03-04",
            "model": model,
            "requests": requests,
            "promptTokens": 1050 * requests,
            "outputTokens": 200 * requests,
            "thoughtsTokens": 300 * requests,
            "cachedTokens": 400 * requests,
            "usd": usd,
        }
        # 650 input at $0.30/M, 400 cached at $0.03/M, 500 out at $2.50/M = $0.001457 (flash).
        for model, requests, usd in [
            (FLASH, 2, 0.002914),
            ("gemini-2.5-pro", 1, 0.005863),
        ]
    ]
    assert {(r.key_id, r.model) for r in every} >= {
        (key, FLASH),
        (key, "gemini-2.5-pro"),
        (other, FLASH),
    }


def test_a_lease_expires_on_the_stores_own_clock(open_store):
    """No clock passed: Redis uses its server's TIME, the others this process's clock."""

    async def scenario() -> list[str]:
        # A TTL well above one store round trip, even on a loaded machine (moto is a Python server).
        limiter, key = Limiter(open_store(), lease_ttl_s=2.0), new_key()
        limits = {"concurrentStreams": 1}
        seen = [type(await attempt(limiter, key, limits, None)).__name__]
        seen.append(type(await attempt(limiter, key, limits, None)).__name__)
        await asyncio.sleep(2.2)
        seen.append(type(await attempt(limiter, key, limits, None)).__name__)
        await limiter.close()
        return seen

    assert run(scenario()) == ["Admission", "QuotaExceeded", "Admission"]


def test_redis_counts_a_window_again_when_its_running_total_was_evicted(redis_server):
    async def scenario(key: str) -> list[str]:
        limiter, limits = (
            Limiter(RedisStore(redis_server.url)),
            {"tokensPerMinute": 250},
        )
        seen = [type(await attempt(limiter, key, limits, at(0))).__name__]
        redis_client.Redis.from_url(redis_server.url).delete(
            key_prefix(key) + "tpm:sum"
        )
        seen.append(type(await attempt(limiter, key, limits, at(1))).__name__)
        seen.append(type(await attempt(limiter, key, limits, at(2))).__name__)
        await limiter.close()
        return seen

    assert run(scenario(new_key())) == ["Admission", "Admission", "QuotaExceeded"]


def test_a_burst_on_a_cold_instance_shares_a_few_redis_connections(redis_server):
    """200 first requests at once on a new instance: each answered exactly, over at most 16 connections.

    Without the bound each opened its own connection in the same instant (a TLS handshake each on
    Memorystore): on a busy machine the late ones missed the connect timeout, and redis-py 8 fails
    every call beyond its default cap of 100 connections.
    """
    stats = redis_client.Redis.from_url(redis_server.url)
    opened_before = stats.info("stats")["total_connections_received"]

    store = RedisStore(redis_server.url)
    results = run(all_at_once(store, {"requestsPerMinute": 120}, 200))
    opened = stats.info("stats")["total_connections_received"]
    assert len(admitted(results)) == 120
    assert sum(isinstance(r, QuotaExceeded) for r in results) == 80
    assert 1 <= opened - opened_before <= MAX_CONNECTIONS == 16


def test_calls_queued_behind_a_stalled_server_are_each_answered_within_their_turns(
    tmp_path,
):
    """A stalled server holds every connection: each call queued behind them gets its turn as they time
    out and is answered as unavailable (none is held); once the server answers again, so does the store."""
    server = RedisServer(tmp_path).start()
    store = RedisStore(server.url, timeout_s=0.3, max_connections=2)

    async def scenario() -> tuple[list[str], float, str]:
        limiter = Limiter(store)
        limits = {"requestsPerMinute": 100}
        assert await attempt_or_error(limiter, limits) == "answered"
        os.kill(server.proc.pid, signal.SIGSTOP)
        start = time.monotonic()
        try:
            stalled = await asyncio.gather(
                *(attempt_or_error(limiter, limits) for _ in range(6))
            )
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        waited = time.monotonic() - start
        after = await attempt_or_error(limiter, limits)
        await limiter.close()
        return stalled, waited, after

    try:
        stalled, waited, after = run(scenario())
    finally:
        server.stop()
    assert stalled == ["redis: TimeoutError"] * 6
    # Three turns of two calls, each ending on its 0.3 s socket timeout (a new connection's own
    # handshake with the stalled server may add one more timeout).
    assert 0.9 <= waited < 3.0
    assert after == "answered"


async def attempt_or_error(limiter: Limiter, limits: dict[str, Any]) -> str:
    try:
        await attempt(limiter, new_key(), limits, None)
    except StoreUnavailable as exc:
        return str(exc)
    return "answered"
