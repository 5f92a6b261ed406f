"""Stream framing: SSE and Vertex's streamed JSON array, decoding upstream bytes and encoding for clients."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from lib.errors import BadRequest, UpstreamError

SSE = "sse"
ARRAY = "array"
UNARY = "unary"

CONTENT_TYPES = {
    SSE: "text/event-stream",
    ARRAY: "application/json; charset=UTF-8",
    UNARY: "application/json; charset=UTF-8",
}
_ERROR_EVENT = re.compile(rb'\s*\{\s*"error"\s*:')
_MAX_EVENT_BYTES = 32 * 1024 * 1024


def choose_framing(alt: str | None, dollar_alt: str | None, stream: bool) -> str:
    """SSE for `alt=sse`; the JSON array for no `alt` (or GAPIC's `$alt=json;...`)."""
    if not stream:
        return UNARY
    if alt == "sse":
        return SSE
    if alt in (None, "json") and (
        dollar_alt is None or dollar_alt.split(";")[0] == "json"
    ):
        return ARRAY
    raise BadRequest(
        "Unsupported 'alt': use 'alt=sse' for Server-Sent Events, or omit it."
    )


def is_error_chunk(event: bytes) -> bool:
    """True for a chunk that is Google's error object rather than a response."""
    return b'"error"' in event[:64] and _ERROR_EVENT.match(event) is not None


def one_line(event: bytes) -> bytes:
    """The event as single-line JSON (SSE `data:` must not contain a line break)."""
    if b"\n" not in event and b"\r" not in event:
        return event
    return json.dumps(
        json.loads(event), separators=(",", ": "), ensure_ascii=False
    ).encode()


def encode_chunk(framing: str, event: bytes, first: bool) -> bytes:
    """The bytes that carry one chunk to the client."""
    if framing == SSE:
        return b"data: " + one_line(event) + b"\r\n\r\n"
    if framing == ARRAY:
        return (b"[" if first else b"\n,\r\n") + event
    return event


def encode_end(framing: str, first: bool) -> bytes:
    """What closes the stream after the last chunk."""
    if framing == ARRAY:
        return b"[]" if first else b"\n]"
    return b""


def _whole_data_events(chunk: bytes) -> list[bytes] | None:
    """The common case in one pass: `chunk` is whole one-line `data: ` events and nothing else
    (what Google sends); None for anything else, which the line parser then reads."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        if chunk.endswith(separator):
            break
    else:
        return None
    events = chunk[: -len(separator)].split(separator)
    for event in events:
        if not event.startswith(b"data: ") or b"\n" in event or b"\r" in event:
            return None
    return [event[6:] for event in events]


class SseDecoder:
    """Incremental SSE parser: feed bytes, get each complete event's data (and raw error objects)."""

    def __init__(self) -> None:
        self._partial = b""
        self._skip_lf = False
        self._data: list[bytes] = []
        self._raw: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """The data of every event completed by `chunk`, in order."""
        if not (self._partial or self._data or self._raw or self._skip_lf):
            fast = _whole_data_events(chunk)
            if fast is not None:
                return fast
        return list(self._feed_lines(chunk))

    def _feed_lines(self, chunk: bytes) -> Iterator[bytes]:
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = chunk.endswith(b"\r")
        lines = (self._partial + chunk).splitlines(keepends=True)
        self._partial = b""
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            self._partial = lines.pop()
            if len(self._partial) > _MAX_EVENT_BYTES:
                raise UpstreamError("The upstream sent an oversized event.")
        for line in lines:
            yield from self._line(line.rstrip(b"\r\n"))

    def _line(self, line: bytes) -> Iterator[bytes]:
        if self._raw or (
            line and not line.startswith((b"data:", b":", b"event:", b"id:", b"retry:"))
        ):
            yield from self._raw_line(line)
        elif line.startswith(b"data:"):
            self._data.append(line[6:] if line.startswith(b"data: ") else line[5:])
        elif not line and self._data:
            yield b"\n".join(self._data)
            self._data = []

    def _raw_line(self, line: bytes) -> Iterator[bytes]:
        # Google reports a mid-stream error as a bare pretty-printed object, not an event.
        self._raw.append(line)
        text = b"\n".join(self._raw)
        try:
            json.loads(text)
        except ValueError:
            if len(text) > _MAX_EVENT_BYTES:
                raise UpstreamError("The upstream sent malformed data.") from None
            return
        self._raw = []
        yield text

    def close(self) -> Iterator[bytes]:
        """Flush an event the upstream ended without a blank line."""
        yield from self.feed(b"\n\n")
        if self._raw:
            raise UpstreamError("The upstream stream ended inside a JSON object.")


_BETWEEN_TEXT = re.compile(r"[\s,\[]*")
_DECODER = json.JSONDecoder()


class ArrayDecoder:
    """Incremental scanner of a streamed JSON array: yields each element's bytes as it completes."""

    _OUTSIDE = re.compile(rb'[{}"]')
    _INSIDE_STRING = re.compile(rb'["\\]')
    _BETWEEN = re.compile(rb"[\s,\[]*")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._size = 0
        self.closed = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Every element completed by `chunk`, in order."""
        if self._depth or self.closed or not chunk.isascii():
            return list(self._scan(chunk))
        return self._whole_elements(chunk)

    def _whole_elements(self, chunk: bytes) -> list[bytes]:
        """The common case at C speed: whole elements decoded with `raw_decode` (ASCII, so a
        character index is a byte index); the scanner takes over at the first partial one."""
        text, pos, elements = chunk.decode("ascii"), 0, []
        while True:
            pos = _BETWEEN_TEXT.match(text, pos).end()
            if pos >= len(text):
                return elements
            if text[pos] != "{":
                return elements + list(self._scan(chunk[pos:]))
            try:
                doc, end = _DECODER.raw_decode(text, pos)
            except (ValueError, RecursionError):
                return elements + list(self._scan(chunk[pos:]))
            if not isinstance(doc, dict):
                raise UpstreamError("The upstream sent malformed data.")
            elements.append(chunk[pos:end])
            pos = end

    def _scan(self, chunk: bytes) -> Iterator[bytes]:
        pos, start, end = 0, 0, len(chunk)
        while pos < end:
            if self._depth == 0:
                pos = self._BETWEEN.match(chunk, pos).end()
                if pos >= end:
                    break
                if chunk[pos : pos + 1] == b"]":
                    self.closed = True
                    return
                if chunk[pos : pos + 1] != b"{":
                    raise UpstreamError("The upstream sent malformed data.")
                start, self._depth = pos, 1
                pos += 1
                continue
            pos = self._advance(chunk, pos)
            if self._depth == 0:
                yield b"".join(self._parts) + chunk[start:pos]
                self._parts, self._size = [], 0
        if self._depth:
            self._parts.append(chunk[start:])
            self._size += end - start
            if self._size > _MAX_EVENT_BYTES:
                raise UpstreamError("The upstream sent an oversized element.")

    def _advance(self, chunk: bytes, pos: int) -> int:
        """Scan one token inside an element; returns the next position."""
        if self._escape:
            self._escape = False
            return pos + 1
        if self._in_string:
            match = self._INSIDE_STRING.search(chunk, pos)
            if match is None:
                return len(chunk)
            if match.group() == b"\\":
                self._escape = True
            else:
                self._in_string = False
            return match.end()
        match = self._OUTSIDE.search(chunk, pos)
        if match is None:
            return len(chunk)
        token = match.group()
        if token == b'"':
            self._in_string = True
        else:
            self._depth += 1 if token == b"{" else -1
        return match.end()

    def close(self) -> Iterator[bytes]:
        if self._depth or not self.closed:
            raise UpstreamError(
                "The upstream stream ended before the response was complete."
            )
        return iter(())


def _decoder(framing: str) -> SseDecoder | ArrayDecoder:
    return SseDecoder() if framing == SSE else ArrayDecoder()


def decode_stream(framing: str, pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Each chunk (a JSON document) in an upstream body, in order, as soon as it is complete."""
    if framing == UNARY:
        yield b"".join(pieces)
        return
    decoder = _decoder(framing)
    for piece in pieces:
        yield from decoder.feed(piece)
    yield from decoder.close()


async def decode_stream_async(
    framing: str, pieces: AsyncIterable[bytes]
) -> AsyncIterator[bytes]:
    """`decode_stream` over bytes that arrive asynchronously (an upstream response body)."""
    if framing == UNARY:
        yield b"".join([piece async for piece in pieces])
        return
    decoder = _decoder(framing)
    async for piece in pieces:
        for chunk in decoder.feed(piece):
            yield chunk
    for chunk in decoder.close():
        yield chunk
