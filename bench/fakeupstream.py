"""A lean asyncio Gemini upstream for benchmarks: N chunks D ms apart, each stamped with its send time.

Run `python -m bench.fakeupstream --port 0`; it prints `listening <port>` and serves until SIGTERM.
The prompt text carries the cadence (`chunks=20 interval_ms=5`), so every target forwards it unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import signal
import time

_PATH = re.compile(rb"^/v1(?:beta)?/models/[^/:?]+:streamGenerateContent(?:\?(.*))?$")
_CADENCE = re.compile(rb"chunks=(\d+) interval_ms=(\d+(?:\.\d+)?)")
_MAX_HEAD = 64 * 1024
_FILLER = "The quick brown fox jumps over the lazy dog again"
_END = {"sse": b"0\r\n\r\n", "array": b"2\r\n\n]\r\n0\r\n\r\n"}
_CONTENT_TYPES = {
    "sse": "text/event-stream",
    "array": "application/json; charset=UTF-8",
}


def _template(framing: str, last: bool) -> bytes:
    """One Gemini chunk with `%d` slots for stamp, sequence and token counts (the bytes Google sends)."""
    candidate: dict = {
        "content": {"parts": [{"text": "@TEXT@"}], "role": "model"},
        "index": 0,
    }
    if last:
        candidate["finishReason"] = "STOP"
    usage = {"promptTokenCount": 11, "candidatesTokenCount": -7, "totalTokenCount": -8}
    doc = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": "bench",
        "responseId": "bench",
    }
    if framing == "sse":
        text = json.dumps(doc, separators=(",", ": "))
    else:
        text = json.dumps(doc, indent=2)
    text = text.replace("%", "%%").replace("@TEXT@", f"ts=%d seq=%d {_FILLER}")
    return text.replace("-7", "%d").replace("-8", "%d").encode()


TEMPLATES = {
    (f, last): _template(f, last) for f in ("sse", "array") for last in (False, True)
}


def frame(framing: str, seq: int, total: int, stamp_ns: int) -> bytes:
    """Chunk `seq` of `total` in the body framing, wrapped as one HTTP/1.1 chunk."""
    body = TEMPLATES[framing, seq == total - 1] % (stamp_ns, seq, seq + 1, seq + 12)
    if framing == "sse":
        body = b"data: " + body + b"\r\n\r\n"
    else:
        body = (b"[" if seq == 0 else b"\n,\r\n") + body
    return b"%x\r\n%s\r\n" % (len(body), body)


def _head(status: str, content_type: str, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Server-Timing: gfet4t7; dur=1\r\n{extra}\r\n"
    ).encode()


def _error(status: int, text: str, reason: str) -> bytes:
    body = json.dumps({"error": {"code": status, "message": text, "status": reason}})
    return (
        _head(
            f"{status} {reason}",
            "application/json; charset=UTF-8",
            f"Content-Length: {len(body)}\r\n",
        )
        + body.encode()
    )


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: requests in order (keep-alive), each answered by a stamped stream."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.task: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.task is None:
            self._next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    def _next_request(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > _MAX_HEAD:
                self.transport.close()
            return
        lines = self.buf[:end].split(b"\r\n")
        headers = dict(_header(line) for line in lines[1:])
        length = int(headers.get(b"content-length", b"0"))
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4 : end + 4 + length]
        self.buf = self.buf[end + 4 + length :]
        close = headers.get(b"connection", b"").lower() == b"close"
        self.task = asyncio.ensure_future(self._answer(lines[0], headers, body, close))

    async def _answer(
        self, line: bytes, headers: dict, body: bytes, close: bool
    ) -> None:
        parts = line.split(b" ")
        match = _PATH.match(parts[1]) if len(parts) == 3 else None
        cadence = _CADENCE.search(body)
        if b"transfer-encoding" in headers:
            self.transport.write(
                _error(411, "Send a Content-Length.", "LENGTH_REQUIRED")
            )
        elif parts[0] != b"POST" or match is None:
            self.transport.write(_error(404, "Not found.", "NOT_FOUND"))
        elif not headers.get(b"x-goog-api-key"):
            self.transport.write(_error(401, "API key missing.", "UNAUTHENTICATED"))
        elif cadence is None:
            self.transport.write(
                _error(400, "Say 'chunks=N interval_ms=D'.", "INVALID_ARGUMENT")
            )
        else:
            framing = "sse" if b"alt=sse" in (match.group(1) or b"") else "array"
            chunks = max(1, int(cadence.group(1)))
            await self._stream(framing, chunks, float(cadence.group(2)) / 1000)
        self.task = None
        if close:
            self.transport.close()
        elif not self.transport.is_closing():
            self._next_request()

    async def _stream(self, framing: str, chunks: int, interval_s: float) -> None:
        out = _head("200 OK", _CONTENT_TYPES[framing], "Transfer-Encoding: chunked\r\n")
        for seq in range(chunks):
            if seq:
                # A gap of at least `interval_s` after each write, even when the loop lags.
                await asyncio.sleep(interval_s)
            if self.transport.is_closing():
                return
            self.transport.write(out + frame(framing, seq, chunks, time.time_ns()))
            out = b""
        self.transport.write(out + _END[framing])


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, _, value = line.partition(b":")
    return name.strip().lower(), value.strip()


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (1,000+ streams need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; print the bound port first."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    raise_fd_limit()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
