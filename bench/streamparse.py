"""Incremental parsers for the load client: an HTTP/1.1 response and the two chunk framings."""

from __future__ import annotations

import re

_BRACE = re.compile(rb"[{}]")
_HEAD, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _LENGTH, _UNTIL_CLOSE, _DONE = (
    range(8)
)


class HttpResponseParser:
    """Feed raw socket bytes; get back the body bytes they carried (chunked, sized or close-delimited)."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.should_close = False
        self._state = _HEAD
        self._buf = b""
        self._left = 0

    @property
    def complete(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out: list[bytes] = []
        while self._buf and self._state != _DONE:
            if not self._step(out):
                break
        return b"".join(out)

    def feed_eof(self) -> None:
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE

    def _step(self, out: list[bytes]) -> bool:
        """Consume what the current state can; False when more bytes are needed."""
        state, buf = self._state, self._buf
        if state == _HEAD:
            return self._head()
        if state in (_CHUNK_DATA, _LENGTH, _UNTIL_CLOSE):
            take = buf if state == _UNTIL_CLOSE else buf[: self._left]
            out.append(take)
            self._buf = buf[len(take) :]
            self._left -= len(take)
            if self._left == 0 and state != _UNTIL_CLOSE:
                self._state = _CHUNK_END if state == _CHUNK_DATA else _DONE
            return True
        end = buf.find(b"\r\n")
        if end < 0:
            return False
        line, self._buf = buf[:end], buf[end + 2 :]
        if state == _CHUNK_END:
            self._state = _CHUNK_SIZE
        elif state == _TRAILER:
            self._state = _TRAILER if line else _DONE
        else:
            self._left = int(line.split(b";")[0], 16)
            self._state = _CHUNK_DATA if self._left else _TRAILER
        return True

    def _head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = self._buf[:end].split(b"\r\n")
        self._buf = self._buf[end + 4 :]
        version, code = lines[0].split(b" ", 2)[:2]
        self.status = int(code)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        self.should_close = (
            headers.get(b"connection") == b"close" or version == b"HTTP/1.0"
        )
        if headers.get(b"transfer-encoding") == b"chunked":
            self._state = _CHUNK_SIZE
        elif b"content-length" in headers:
            self._left = int(headers[b"content-length"])
            self._state = _LENGTH if self._left else _DONE
        else:
            self._state, self.should_close = _UNTIL_CLOSE, True
        return True


class ChunkScanner:
    """Splits a response body into complete chunks: SSE events, or the elements of a JSON array."""

    def __init__(self, framing: str) -> None:
        self.framing = framing
        self.closed = False
        self._carry = b""
        self._depth = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The chunks whose last byte is in `data` (bench chunks hold no braces inside strings)."""
        if self.framing == "sse":
            return self._sse(data)
        out, start = [], 0 if self._depth else None
        for match in _BRACE.finditer(data):
            if match.group() == b"{":
                if self._depth == 0:
                    start, self._carry = match.start(), b""
                self._depth += 1
                continue
            self._depth -= 1
            if self._depth == 0:
                out.append(self._carry + data[start : match.end()])
                self._carry, start = b"", None
        if self._depth:
            self._carry += data[start:]
        elif data.rstrip().endswith(b"]"):
            self.closed = True
        return out

    def _sse(self, data: bytes) -> list[bytes]:
        self.closed = True  # SSE just ends; completeness is the chunk count
        events = (self._carry + data).split(b"\r\n\r\n")
        self._carry = events.pop()
        return events
