"""Relaying an open upstream stream to the client: one write per chunk, a clean end, always."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from lib.errors import GatewayError
from lib.framing import encode_chunk, encode_end, is_error_chunk
from lib.requestlog import RequestLog, usage_from
from lib.upstreams.base import UpstreamStream


def relay_chunks(
    stream: UpstreamStream,
    events: Iterator[bytes],
    framing: str,
    log: RequestLog,
    logger: logging.Logger,
) -> Iterator[bytes]:
    """Each upstream chunk framed for the client as it arrives; a failure becomes a final error element."""
    first = True
    usage_event = None
    try:
        try:
            for event in events:
                if is_error_chunk(event):
                    log.outcome, log.error = "error", "upstream error mid-stream"
                    yield encode_chunk(framing, event, first)
                    first = False
                    break
                if b'"usageMetadata"' in event:
                    usage_event = event
                if first:
                    log.first_byte = time.monotonic()
                yield encode_chunk(framing, event, first)
                first = False
                log.chunks += 1
        except GatewayError as exc:
            log.outcome, log.error = "error", exc.message
            yield encode_chunk(framing, exc.to_json(), first)
            first = False
        yield encode_end(framing, first)
    except GeneratorExit:
        log.outcome = "disconnected"
        raise
    finally:
        stream.close()
        log.usage = usage_from(usage_event)
        log.emit(logger)
