"""The ordered upstream list: a call goes to the first healthy upstream, and to the next on an early failure.

An early failure is one before the first chunk: a refused or broken connection, a 429, or a 5xx (as
the answer's status or as the stream's first chunk). The next upstream is tried at once, within the
retry budget; nothing is tried again once a chunk exists, since the client may have it. An upstream
that failed `FAILURES_TO_SKIP` times in a row is passed over for `SKIP_S`; then one call asks it again
while the others still pass it over (one more failure passes it over again, an answer ends it). When
every upstream is passed over, they are asked all the same: an answer beats a refusal made without
asking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from lib.errors import GatewayError, NotServedHere, ServiceUnavailable
from lib.framing import is_error_chunk
from lib.googleapis import error_message, parse_error_body
from lib.upstreams.base import (
    RETRY_BUDGET_S,
    Upstream,
    UpstreamCall,
    UpstreamStream,
)

FAILURES_TO_SKIP = 5
SKIP_S = 30.0

log = logging.getLogger("streamgate.upstreams")


@dataclass
class Opened:
    """An upstream stream that produced its first chunk (None when it had none): ready to relay."""

    stream: UpstreamStream
    first: bytes | None
    rest: AsyncIterator[bytes]
    upstream: str


@dataclass
class _Health:
    failures: int = 0
    skipped_until: float = 0.0
    # One call is asking it again after its time passed over; the others still pass it over.
    probing: bool = False

    def passed_over(self, now: float) -> bool:
        return self.skipped_until > now or self.probing

    def due_again(self, now: float) -> bool:
        """Passed over until now, and nobody has asked it since: this call is the one that asks."""
        return self.failures >= FAILURES_TO_SKIP and not self.passed_over(now)


def fails_over(error: GatewayError) -> bool:
    """Whether another upstream may do better: 429 and 5xx (connection failures are 502)."""
    return error.status_code == 429 or error.status_code >= 500


class UpstreamList:
    """The instance's upstreams in order, and how each has fared lately (per instance)."""

    def __init__(
        self,
        members: Sequence[Upstream],
        clock: Callable[[], float] = time.monotonic,
        budget_s: float = RETRY_BUDGET_S,
    ) -> None:
        if not members:
            raise ValueError("an upstream list needs an upstream")
        self.members = tuple(members)
        self._health = {m.name: _Health() for m in members}
        self._clock = clock
        self._budget_s = budget_s

    def _order(self) -> list[Upstream]:
        """Healthy upstreams first, in list order; then the passed-over ones, in list order."""
        now = self._clock()
        skipped = [m for m in self.members if self._health[m.name].passed_over(now)]
        return [m for m in self.members if m not in skipped] + skipped

    async def start(self, call: UpstreamCall, tried: list[str]) -> Opened:
        """The first upstream that answers with a chunk; `tried` gets the name of each one asked."""
        deadline = self._clock() + self._budget_s
        failure: GatewayError | None = None
        unserved: GatewayError | None = None
        for member in self._order():
            now = self._clock()
            if tried and now >= deadline:
                break
            health = self._health[member.name]
            probe = len(self.members) > 1 and health.due_again(now)
            health.probing = health.probing or probe
            try:
                opened = await _open_first(member, call, tried)
            except NotServedHere as exc:
                unserved = unserved or exc
                continue
            except GatewayError as exc:
                if not fails_over(exc):
                    # The call's own fault (400, 403, 404...): the upstream answered.
                    self._succeeded(member)
                    raise
                self._failed(member)
                failure = exc
                continue
            finally:
                if probe:
                    health.probing = False
            self._succeeded(member)
            return opened
        raise failure or unserved or ServiceUnavailable("No upstream is available.")

    def _failed(self, member: Upstream) -> None:
        health = self._health[member.name]
        health.failures += 1
        if health.failures >= FAILURES_TO_SKIP and len(self.members) > 1:
            health.skipped_until = self._clock() + SKIP_S
            log.warning(
                "upstream %s failed %d times in a row; passed over for %g s",
                member.name,
                health.failures,
                SKIP_S,
                extra={"fields": {"upstream": member.name}},
            )

    def _succeeded(self, member: Upstream) -> None:
        health = self._health[member.name]
        if health.failures >= FAILURES_TO_SKIP and len(self.members) > 1:
            log.info(
                "upstream %s answers again",
                member.name,
                extra={"fields": {"upstream": member.name}},
            )
        health.failures, health.skipped_until = 0, 0.0


async def _open_first(member: Upstream, call: UpstreamCall, tried: list[str]) -> Opened:
    """Open `member` and wait for its first chunk, so an early failure keeps its status."""
    stream = await _open(member, call, tried)
    chunks = stream.chunks()
    try:
        first = await anext(chunks, None)
        if first is not None and is_error_chunk(first):
            raise _error_from_chunk(first)
    except BaseException:
        await stream.close()
        raise
    return Opened(stream, first, chunks, member.name)


async def _open(
    member: Upstream, call: UpstreamCall, tried: list[str]
) -> UpstreamStream:
    """`member.open(call)`, noting in `tried` that it was asked (unless it refused the call itself)."""
    try:
        stream = await member.open(call)
    except NotServedHere:
        raise
    except BaseException:
        tried.append(member.name)
        raise
    tried.append(member.name)
    return stream


def _error_from_chunk(chunk: bytes) -> GatewayError:
    error = parse_error_body(chunk)
    code = error.get("code") if isinstance(error.get("code"), int) else 502
    return GatewayError(error_message(error) or "The upstream failed.", code)
