"""The per-instance store: counters in this process's memory (the default, and the fallback's local half)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace

from lib.limits import state
from lib.limits.base import Adjustment, Check, UsageRecord, Verdict

# Usage rows older than this are dropped, so a long-lived instance holds a bounded ledger.
USAGE_DAYS_KEPT = 62


def clock_ms() -> int:
    return int(time.time() * 1000)


def _now(now_ms: int | None) -> int:
    return clock_ms() if now_ms is None else now_ms


class MemoryStore:
    """Counters in a dict per key id; every method runs to completion under one lock (atomic)."""

    def __init__(self) -> None:
        self._keys: dict[str, state.KeyState] = {}
        self._usage: dict[tuple[str, str, str], UsageRecord] = {}
        self._lock = threading.Lock()

    async def admit(
        self,
        key_id: str,
        admission_id: str,
        checks: Sequence[Check],
        now_ms: int | None,
    ) -> Verdict:
        with self._lock:
            keystate = self._keys.setdefault(key_id, state.new_state())
            return state.admit(keystate, checks, admission_id, _now(now_ms))

    async def renew(
        self, key_id: str, name: str, admission_id: str, ttl_ms: int, now_ms: int | None
    ) -> bool:
        with self._lock:
            keystate = self._keys.setdefault(key_id, state.new_state())
            return state.renew(keystate, name, admission_id, ttl_ms, _now(now_ms))

    async def settle(
        self,
        key_id: str,
        admission_id: str,
        adjustments: Sequence[Adjustment],
        release: str | None,
        record: UsageRecord | None,
        now_ms: int | None,
    ) -> None:
        with self._lock:
            keystate = self._keys.setdefault(key_id, state.new_state())
            state.settle(keystate, admission_id, adjustments, release, _now(now_ms))
            if record is not None:
                self._record(record)

    def _record(self, record: UsageRecord) -> None:
        slot = (record.day, record.key_id, record.model)
        old = self._usage.get(slot)
        if old is not None:
            sums = {n: v + getattr(old, n) for n, v in record.counts().items()}
            record = replace(old, **sums)
        self._usage[slot] = record
        days = sorted({d for d, _, _ in self._usage})
        for day in days[:-USAGE_DAYS_KEPT]:
            for stale in [s for s in self._usage if s[0] == day]:
                del self._usage[stale]

    async def usage(self, key_id: str | None, days: Sequence[str]) -> list[UsageRecord]:
        wanted = set(days)
        with self._lock:
            rows = [
                r
                for (day, kid, _), r in self._usage.items()
                if day in wanted and key_id in (None, kid)
            ]
        return sorted(rows, key=lambda r: (r.day, r.key_id, r.model))

    async def close(self) -> None:
        return None
