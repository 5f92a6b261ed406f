"""When the shared store is unreachable: rate limits counted per instance (with one warning), budgets 503."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from lib.errors import ServiceUnavailable
from lib.limits.base import (
    Adjustment,
    Check,
    LimitStore,
    StoreUnavailable,
    UsageRecord,
    Verdict,
)
from lib.limits.memory import MemoryStore

log = logging.getLogger("streamgate.limits")
T = TypeVar("T")
DEFAULT_TIMEOUT_S = 0.5
# After a failure the store is not asked again for this long: requests don't each wait for a timeout.
RETRY_AFTER_S = 5.0
_LOCAL_IDS_KEPT = 100_000


class FallbackStore:
    """A shared store, and this instance's memory store for the rate limits while the shared one is down."""

    def __init__(
        self,
        shared: LimitStore,
        local: MemoryStore | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_after_s: float = RETRY_AFTER_S,
        label: str = "shared",
    ) -> None:
        self.shared = shared
        self.local = local or MemoryStore()
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.label = label
        self.outage = False
        self.lost_records = 0
        self._skip_until = 0.0
        # Admissions counted locally, so their renew and settle go to the same place.
        self._local_ids: dict[str, None] = {}

    async def _call(self, step: Callable[[], Awaitable[T]]) -> T:
        if time.monotonic() < self._skip_until:
            raise StoreUnavailable(f"limits store {self.label} is down")
        try:
            # The stores time out their own I/O after `timeout_s`; this only bounds a call that
            # hangs. (`asyncio.timeout`, not `wait_for`: no task and no extra loop turn per call.)
            async with asyncio.timeout(2 * self.timeout_s + 1):
                result = await step()
        except (StoreUnavailable, TimeoutError, OSError) as exc:
            self._down(exc)
            raise StoreUnavailable(
                f"limits store {self.label}: {type(exc).__name__}"
            ) from exc
        if self.outage:
            self.outage = False
            log.warning(
                "limits store %s is reachable again (%d usage records lost so far)",
                self.label,
                self.lost_records,
            )
        return result

    def _down(self, exc: BaseException) -> None:
        self._skip_until = time.monotonic() + self.retry_after_s
        if not self.outage:
            self.outage = True
            log.warning(
                "limits store %s is unreachable (%s): rate limits are counted per instance "
                "budgets are refused with 503 and usage is not recorded until it answers",
                self.label,
                type(exc).__name__,
            )

    def _unavailable(self) -> ServiceUnavailable:
        wait = str(max(1, round(self.retry_after_s)))
        return ServiceUnavailable(
            "Usage budgets can't be checked right now (the limits store is unreachable).",
            headers={"Retry-After": wait},
        )

    async def admit(
        self,
        key_id: str,
        admission_id: str,
        checks: Sequence[Check],
        now_ms: int | None,
    ) -> Verdict:
        try:
            return await self._call(
                lambda: self.shared.admit(key_id, admission_id, checks, now_ms)
            )
        except StoreUnavailable:
            if any(c.quota.budget for c in checks):
                raise self._unavailable() from None
        verdict = await self.local.admit(key_id, admission_id, checks, now_ms)
        if verdict.admitted:
            if len(self._local_ids) >= _LOCAL_IDS_KEPT:
                self._local_ids.pop(next(iter(self._local_ids)))
            self._local_ids[admission_id] = None
        return replace(verdict, local=True)

    async def renew(
        self, key_id: str, name: str, admission_id: str, ttl_ms: int, now_ms: int | None
    ) -> bool:
        if admission_id in self._local_ids:
            return await self.local.renew(key_id, name, admission_id, ttl_ms, now_ms)
        return await self._call(
            lambda: self.shared.renew(key_id, name, admission_id, ttl_ms, now_ms)
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
        if admission_id in self._local_ids:
            del self._local_ids[admission_id]
            await self.local.settle(
                key_id, admission_id, adjustments, release, None, now_ms
            )
            adjustments, release = (), None
        try:
            await self._call(
                lambda: self.shared.settle(
                    key_id, admission_id, adjustments, release, record, now_ms
                )
            )
        except StoreUnavailable:
            # A budget's reservation stays charged (never less); the usage row is lost, and counted.
            self.lost_records += record is not None

    async def usage(self, key_id: str | None, days: Sequence[str]) -> list[UsageRecord]:
        return await self.shared.usage(key_id, days)

    async def close(self) -> None:
        await self.shared.close()
