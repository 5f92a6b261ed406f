"""The per-instance cache of the key set: TTL refresh, one fetch at a time, bounded grace, fail closed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from lib.errors import ServiceUnavailable
from lib.keys.document import KeySet, parse_key_document

log = logging.getLogger("streamgate.keys")

# After a failed load with nothing to serve, wait this long before asking the store again.
_RETRY_EMPTY_S = 1.0


class KeyCache:
    """Serves the last good KeySet; refreshes it every `ttl_s`; fails closed."""

    def __init__(
        self,
        read: Callable[[], bytes],
        ttl_s: float,
        *,
        grace_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = ttl_s
        self._grace = grace_s if grace_s is not None else max(10 * ttl_s, 10.0)
        self._clock = clock
        # Made on first use, inside the event loop that serves requests.
        self._lock: asyncio.Lock | None = None
        self._keyset: KeySet | None = None
        self._loaded_at = float("-inf")
        self._next_try = float("-inf")

    async def current(self) -> KeySet:
        """The key set to check against, or ServiceUnavailable when there is none.

        The store is read in a thread (its clients are blocking), one read at a time; while one
        runs, other requests keep using the set they have, within its grace.
        """
        now = self._clock()
        keyset = self._keyset
        if keyset is not None and now - self._loaded_at < self._ttl:
            return keyset
        if self._lock is None:
            self._lock = asyncio.Lock()
        if keyset is not None and self._lock.locked():
            # Another request is refreshing.
            return self._within_grace(keyset, now)
        async with self._lock:
            fresh = self._clock() - self._loaded_at < self._ttl
            if not fresh and self._clock() >= self._next_try:
                await self._refresh()
        if self._keyset is None:
            raise ServiceUnavailable(
                "API keys are unavailable; the gateway is refusing requests."
            )
        return self._within_grace(self._keyset, self._clock())

    def _within_grace(self, keyset: KeySet, now: float) -> KeySet:
        if now - self._loaded_at <= self._grace:
            return keyset
        raise ServiceUnavailable(
            "API keys are stale; the gateway is refusing requests."
        )

    async def _refresh(self) -> None:
        try:
            keyset = parse_key_document(await asyncio.to_thread(self._read))
        except Exception as exc:  # noqa: BLE001 - any store or parse failure keeps the last good set
            self._next_try = self._clock() + min(self._ttl, _RETRY_EMPTY_S)
            state = (
                "keeping the last good set"
                if self._keyset
                else "no keys loaded: failing closed"
            )
            log.warning(
                "key refresh failed (%s: %s); %s", type(exc).__name__, exc, state
            )
            return
        self._keyset = keyset
        self._loaded_at = self._clock()
        log.info("loaded %d API keys", len(keyset.keys))
