"""A per-instance cache of the key ring: TTL refresh, one fetch at a time, bounded grace."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from lib.errors import ServiceUnavailable
from lib.keyring import KeyRing, parse_key_document

log = logging.getLogger("streamgate.keys")

# After a failed load with nothing to serve, wait this long before asking the store again.
_RETRY_EMPTY_S = 1.0


class KeyStore:
    """Serves the last good KeyRing; refreshes it every `ttl_s`; fails closed."""

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
        self._lock = threading.Lock()
        self._ring: KeyRing | None = None
        self._loaded_at = float("-inf")
        self._next_try = float("-inf")

    def current(self) -> KeyRing:
        """The key ring to check against, or ServiceUnavailable when there is none."""
        now = self._clock()
        ring = self._ring
        if ring is not None and now - self._loaded_at < self._ttl:
            return ring
        if ring is not None and not self._lock.acquire(blocking=False):
            return self._within_grace(ring, now)  # another request is refreshing
        if ring is None:
            self._lock.acquire()
        try:
            if self._ring is not None and self._clock() - self._loaded_at < self._ttl:
                return self._ring
            if self._clock() >= self._next_try:
                self._refresh()
        finally:
            self._lock.release()
        if self._ring is None:
            raise ServiceUnavailable(
                "API keys are unavailable; the gateway is refusing requests."
            )
        return self._within_grace(self._ring, self._clock())

    def _within_grace(self, ring: KeyRing, now: float) -> KeyRing:
        if now - self._loaded_at <= self._grace:
            return ring
        raise ServiceUnavailable(
            "API keys are stale; the gateway is refusing requests."
        )

    def _refresh(self) -> None:
        try:
            ring = parse_key_document(self._read())
        except Exception as exc:  # noqa: BLE001 - any store or parse failure keeps the last good set
            self._next_try = self._clock() + min(self._ttl, _RETRY_EMPTY_S)
            state = (
                "keeping the last good set"
                if self._ring
                else "no keys loaded: failing closed"
            )
            log.warning(
                "key refresh failed (%s: %s); %s", type(exc).__name__, exc, state
            )
            return
        self._ring = ring
        self._loaded_at = self._clock()
        log.info("loaded %d API keys", len(ring.keys))
