"""The limits store in Redis >= 6 (or Valkey, Memorystore, ElastiCache): one Lua script per step.

Every key of one API key carries the hash tag `{sg:<key id>}`, so each script touches one cluster slot
(ElastiCache Serverless and clustered Valkey refuse scripts across slots); the scripts and the data
they keep are in lib/limits/redis_lua.py. Usage rows are a hash per key and UTC day
(`{sg:<id>}:usage:<day>`, fields `<model>|<count>`), with the day's key ids in `sg:usage:<day>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from lib.limits.base import (
    STORED_COUNTS,
    USAGE_TTL_S,
    Adjustment,
    Check,
    Outcome,
    StoreUnavailable,
    UsageRecord,
    Verdict,
)
from lib.limits.redis_lua import ADMIT, RENEW, SETTLE
from lib.limits.state import COUNTER_GRACE_MS


def key_prefix(key_id: str) -> str:
    return "{sg:" + key_id + "}:"


def usage_index(day: str) -> str:
    """The set of key ids with usage on `day` (its own slot; written beside the settle script)."""
    return f"sg:usage:{day}"


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError)


# Calls one instance has in flight to the store, and so the connections it opens (redis-py's pool
# reuses a free connection before it opens one). Without it, a cold instance's first burst (up to 250
# requests at once on Cloud Run) opened a connection per request in the same instant (on Memorystore a
# TLS handshake each) and the late ones missed the connect timeout; and redis-py 8 fails every call
# beyond its default cap of 100 connections at once. Bounded, the burst queues for a few ms on
# connections already open. One connection carries an admission per round trip, so 16 carry more than
# one instance's event loop can send (bench/RESULTS.md "Limits store: a burst on a cold instance").
MAX_CONNECTIONS = 16


class RedisStore:
    """`redis://` or `rediss://` URL (AUTH, TLS and database number from the URL); asyncio client.

    At most `max_connections` calls in flight. A call that finds none free waits its turn, with no
    timeout of its own: it waits behind this instance's calls, not on the store, and each of those
    ends within its own connect and socket timeouts, so a slot always frees. The fallback bounds a
    whole call (lib/limits/fallback.py). Not redis-py's BlockingConnectionPool, which bounds the same
    way but schedules a timer for every call even when a connection is free (+37 us an admission,
    measured); a free slot of an `asyncio.Semaphore` is taken without suspending.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.5,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.client = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self.slots = asyncio.Semaphore(max_connections)
        self._admit = self.client.register_script(ADMIT)
        self._renew = self.client.register_script(RENEW)
        self._settle = self.client.register_script(SETTLE)
        self._errors = _redis_errors()

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        async with self.slots:
            try:
                return await script(keys=keys, args=args)
            except self._errors as exc:
                raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc

    async def admit(
        self,
        key_id: str,
        admission_id: str,
        checks: Sequence[Check],
        now_ms: int | None,
    ) -> Verdict:
        prefix = key_prefix(key_id)
        keys: list[str] = []
        args: list[Any] = [now_ms or 0, admission_id, COUNTER_GRACE_MS]
        for check in checks:
            keys += [prefix + check.name, prefix + check.name + ":sum"]
            args += [check.kind, check.limit, check.amount, check.window_ms]
        out = await self._run(self._admit, keys, args)
        outcomes = tuple(
            Outcome(int(out[i]), int(out[i + 1]), int(out[i + 2]))
            for i in range(1, len(out), 3)
        )
        return Verdict(out[0] == 1, outcomes)

    async def renew(
        self, key_id: str, name: str, admission_id: str, ttl_ms: int, now_ms: int | None
    ) -> bool:
        keys = [key_prefix(key_id) + name]
        return (
            await self._run(self._renew, keys, [now_ms or 0, admission_id, ttl_ms]) == 1
        )

    async def settle(
        self,
        key_id: str,
        admission_id: str,
        adjustments: Sequence[Adjustment],
        release: str | None,
        record: UsageRecord | None,
        now_ms: int | None,
    ) -> None:
        prefix = key_prefix(key_id)
        keys: list[str] = []
        args: list[Any] = [now_ms or 0, admission_id, len(adjustments)]
        for adj in adjustments:
            keys += [prefix + adj.name, prefix + adj.name + ":sum"]
            args += [adj.kind, adj.reserved, adj.actual]
        day = record.day if record else ""
        keys += [prefix + (release or "streams"), f"{prefix}usage:{day}"]
        args += ["1" if release else "0", record.model if record else "", USAGE_TTL_S]
        args += list(record.counts().values()) if record else [0] * 6
        async with self.slots:
            try:
                await self._settle_with_index(
                    keys, args, key_id, day if record else None
                )
            except self._errors as exc:
                raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc

    async def _settle_with_index(
        self, keys: list[str], args: list[Any], key_id: str, day: str | None
    ) -> None:
        """The settle script and the day's index in one round trip (a plain pipeline, two slots)."""
        import redis.exceptions

        for attempt in range(2):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.evalsha(self._settle.sha, len(keys), *keys, *args)
                if day is not None:
                    pipe.sadd(usage_index(day), key_id)
                    pipe.expire(usage_index(day), USAGE_TTL_S)
                try:
                    await pipe.execute()
                    return
                except redis.exceptions.NoScriptError:
                    # A new or restarted server: load the script once, then send again.
                    if attempt:
                        raise
                    await self.client.script_load(SETTLE)

    async def _day_rows(self, key_id: str | None, day: str) -> list[UsageRecord]:
        ids = (
            [key_id] if key_id else sorted(await self.client.smembers(usage_index(day)))
        )
        async with self.client.pipeline(transaction=False) as pipe:
            for kid in ids:
                pipe.hgetall(f"{key_prefix(kid)}usage:{day}")
            hashes = await pipe.execute()
        rows = []
        for kid, fields in zip(ids, hashes):
            models: dict[str, dict[str, int]] = {}
            for name, value in fields.items():
                model, _, field = name.rpartition("|")
                models.setdefault(model, {})[field] = int(value)
            for model, counts in sorted(models.items()):
                values = {attr: counts.get(f, 0) for attr, f in STORED_COUNTS.items()}
                rows.append(UsageRecord(kid, day, model, **values))
        return rows

    async def usage(self, key_id: str | None, days: Sequence[str]) -> list[UsageRecord]:
        async with self.slots:
            try:
                rows = [r for day in days for r in await self._day_rows(key_id, day)]
            except self._errors as exc:
                raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc
        return sorted(rows, key=lambda r: (r.day, r.key_id, r.model))

    async def close(self) -> None:
        await self.client.aclose()
