"""The open streams of one instance: why one must end early (shutdown, time limit, a stalled client)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from lib.errors import GatewayError, ServiceUnavailable

log = logging.getLogger("streamgate")

# How often the watchdog looks for streams past their time limit or stuck on a client that stopped reading.
WATCH_INTERVAL_S = 1.0


@dataclass(eq=False)
class StreamControl:
    """One open stream: the task relaying it, and what the relay must know to end it."""

    task: asyncio.Task | None
    deadline: float = float("inf")
    # Set when the stream must end with a final error element (shutdown, time limit).
    ending: GatewayError | None = None
    # Set when the client is gone (disconnected, or stopped reading): end without writing.
    gone: bool = False
    # Loop time at which a write to the client began and has not finished (0 = none pending).
    write_started: float = 0.0
    # Whether a `write` already went out, so an ending error element is framed as a later element.
    wrote: bool = field(default=False)

    def end(self, error: GatewayError) -> None:
        """End the stream with `error` as its final element (the relay writes it, then ends the body)."""
        if self.ending is None and not self.gone and self.task is not None:
            self.ending = error
            self.task.cancel()

    def drop(self) -> None:
        """The client is gone: stop relaying at once, close the upstream, write nothing more."""
        if not self.gone and self.task is not None:
            self.gone = True
            self.task.cancel()


class OpenStreams:
    """Every stream this instance is relaying; a watchdog enforces time limits and client stalls."""

    def __init__(self, request_timeout_s: float, client_timeout_s: float) -> None:
        self._request_timeout = request_timeout_s
        self._client_timeout = client_timeout_s
        self._open: set[StreamControl] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self.shutting_down = False

    def open(self) -> StreamControl:
        """Register the current task's stream; its deadline is the platform's request timeout."""
        loop = asyncio.get_running_loop()
        control = StreamControl(asyncio.current_task())
        if self._request_timeout:
            control.deadline = loop.time() + self._request_timeout
        self._open.add(control)
        if self._watchdog is None:
            self._watchdog = loop.call_later(WATCH_INTERVAL_S, self._watch)
        return control

    def close(self, control: StreamControl) -> None:
        """The stream is over: nothing may cancel its task any more."""
        control.task = None
        self._open.discard(control)

    def __len__(self) -> int:
        return len(self._open)

    def begin_shutdown(self, grace_s: float) -> None:
        """Streams may go on for `grace_s`; then each still open ends with an UNAVAILABLE element."""
        if self.shutting_down:
            return
        self.shutting_down = True
        log.warning(
            "shutting down: %d open streams get %g s to finish", len(self), grace_s
        )
        asyncio.get_running_loop().call_later(grace_s, self._end_all)

    def _end_all(self) -> None:
        error = ServiceUnavailable(
            "The gateway instance is shutting down; retry the request."
        )
        for control in list(self._open):
            control.end(error)

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for control in list(self._open):
            if now >= control.deadline:
                control.end(
                    ServiceUnavailable(
                        f"The stream reached the gateway's time limit ({self._request_timeout:g} s); "
                        "retry to continue."
                    )
                )
            elif (
                self._client_timeout
                and control.write_started
                and now - control.write_started > self._client_timeout
            ):
                log.warning("dropping a client that stopped reading")
                control.drop()
        self._watchdog = (
            loop.call_later(WATCH_INTERVAL_S, self._watch) if self._open else None
        )
