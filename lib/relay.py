"""Relaying an open upstream stream to the client: one write per chunk, a well-formed end, always."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lib.errors import GatewayError
from lib.exchange import GatewayRequest, Write
from lib.framing import encode_chunk, encode_end, is_error_chunk
from lib.requestlog import RequestLog, usage_from
from lib.streams import OpenStreams, StreamControl
from lib.upstreams.base import UpstreamStream


@dataclass(frozen=True)
class Spend:
    """What the stream costs the key: settle it once at the end (the last usage, or None if it
    reported none), and keep its concurrency lease alive while it runs."""

    settle: Callable[[dict[str, Any] | None], Awaitable[None]]
    renew: Callable[[], Awaitable[bool]] | None = None
    renew_every_s: float = 10.0


@dataclass
class Relayed:
    """One open upstream stream on its way to the client: its first chunk, the rest, how to frame them."""

    stream: UpstreamStream
    first: bytes | None
    rest: AsyncIterator[bytes]
    framing: str
    log: RequestLog
    spend: Spend | None = None
    usage_chunk: bytes | None = None


async def relay_stream(
    relayed: Relayed,
    write: Write,
    req: GatewayRequest,
    streams: OpenStreams,
    logger: logging.Logger,
) -> bool:
    """Relay as one of the instance's open streams; False if the client left (end nothing more)."""
    control = streams.open()
    watcher = renewer = None
    if req.wait_disconnect is not None:
        watcher = asyncio.ensure_future(req.wait_disconnect())
        watcher.add_done_callback(lambda done: done.cancelled() or control.drop())
    spend = relayed.spend
    if spend is not None and spend.renew is not None:
        renewer = asyncio.ensure_future(_keep_renewing(spend))
    try:
        await _relay(relayed, write, control)
        return True
    except asyncio.CancelledError:
        relayed.log.outcome = "disconnected"
        if not control.gone:
            raise
        # Ours: the client left. The upstream is closed below; nothing is left to write to.
        asyncio.current_task().uncancel()
        return False
    finally:
        streams.close(control)
        for task in (watcher, renewer):
            if task is not None:
                task.cancel()
        await _finish(relayed, logger)


async def relay_unary(relayed: Relayed, logger: logging.Logger) -> bytes:
    """The one response of a unary call (generateContent), after which the upstream is closed."""
    pieces: list[bytes] = []

    async def collect(data: bytes) -> None:
        pieces.append(data)

    try:
        await _relay(relayed, collect, StreamControl(None))
    finally:
        await _finish(relayed, logger)
    return b"".join(pieces)


async def _relay(relayed: Relayed, write: Write, control: StreamControl) -> None:
    """Each chunk framed as it arrives; a failure, shutdown or time limit becomes a final error element."""
    framing, log = relayed.framing, relayed.log
    try:
        if relayed.first is not None and await _relay_chunk(
            relayed, relayed.first, write, control
        ):
            async for chunk in relayed.rest:
                if not await _relay_chunk(relayed, chunk, write, control):
                    break
    except GatewayError as exc:
        log.outcome, log.error = "error", exc.message
        await _write(
            write, control, encode_chunk(framing, exc.to_json(), not control.wrote)
        )
    except asyncio.CancelledError:
        if control.ending is None or control.gone:
            raise
        # Ours: shutdown or the time limit. Nothing was half-written: a write is one send.
        asyncio.current_task().uncancel()
        log.outcome, log.error = "error", control.ending.message
        error = control.ending.to_json()
        await _write(write, control, encode_chunk(framing, error, not control.wrote))
    await _write(write, control, encode_end(framing, not control.wrote))


async def _relay_chunk(
    relayed: Relayed, chunk: bytes, write: Write, control: StreamControl
) -> bool:
    """Write one chunk; False when it was the upstream's error and the stream ends with it."""
    framing, log = relayed.framing, relayed.log
    if is_error_chunk(chunk):
        log.outcome, log.error = "error", "upstream error mid-stream"
        await _write(write, control, encode_chunk(framing, chunk, not control.wrote))
        return False
    if b'"usageMetadata"' in chunk:
        relayed.usage_chunk = chunk
    if not control.wrote:
        log.first_byte = time.monotonic()
    await _write(write, control, encode_chunk(framing, chunk, not control.wrote))
    log.chunks += 1
    return True


async def _write(write: Write, control: StreamControl, data: bytes) -> None:
    if not data:
        return
    control.write_started = asyncio.get_running_loop().time()
    await write(data)
    control.write_started = 0.0
    control.wrote = True


async def _finish(relayed: Relayed, logger: logging.Logger) -> None:
    """Close the upstream, settle what the stream cost within the request, write its log line."""
    await relayed.stream.close()
    relayed.log.usage = usage_from(relayed.usage_chunk)
    if relayed.spend is not None:
        # A shield: a cancelled stream (client gone) is charged all the same.
        await asyncio.shield(relayed.spend.settle(relayed.log.usage or None))
    relayed.log.emit(logger)


async def _keep_renewing(spend: Spend) -> None:
    """Renew the stream's concurrency lease while it runs (it expires by itself if we die)."""
    while True:
        await asyncio.sleep(spend.renew_every_s)
        await spend.renew()
