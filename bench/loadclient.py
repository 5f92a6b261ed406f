"""An asyncio load client on raw sockets: C keep-alive connections streaming, timing every chunk."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field

from bench.streamparse import ChunkScanner, HttpResponseParser

_STAMP = re.compile(rb"ts=(\d+) seq=(\d+)")


@dataclass
class Plan:
    """One load run against one target."""

    port: int
    path: str
    key: str
    framing: str
    chunks: int
    interval_ms: float
    concurrency: int
    requests: int
    ramp_s: float = 0.0
    timeout_s: float = 60.0

    def body(self) -> bytes:
        text = f"bench chunks={self.chunks} interval_ms={self.interval_ms:g}"
        doc = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        return json.dumps(doc).encode()


@dataclass
class StreamResult:
    """What one request saw: times in ms from sending the request, latencies in ms."""

    error: str = ""
    ttfb_ms: float | None = None
    first_chunk_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    merged: int = 0


@dataclass
class Gauge:
    """Streams open right now (first chunk seen, end not yet) and the peak."""

    open: int = 0
    peak: int = 0

    def up(self) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)


class _Exchange:
    """One request/response on a connection: parses bytes, times chunks, resolves `done`."""

    def __init__(self, plan: Plan, gauge: Gauge, sent_ns: int) -> None:
        self.plan, self.gauge, self.sent_ns = plan, gauge, sent_ns
        self.result = StreamResult()
        self.http = HttpResponseParser()
        self.scanner = ChunkScanner(plan.framing)
        self.next_seq = 0
        self.done: asyncio.Future[StreamResult] = (
            asyncio.get_running_loop().create_future()
        )

    def feed(self, data: bytes, now_ns: int) -> None:
        res = self.result
        if res.ttfb_ms is None:
            res.ttfb_ms = (now_ns - self.sent_ns) / 1e6
        body = self.http.feed(data)
        if self.http.status not in (None, 200):
            if self.http.complete:
                self.finish(f"HTTP {self.http.status}")
            return
        ends = self.scanner.feed(body) if body else []
        for chunk in ends:
            self._chunk(chunk, now_ns)
        if len(ends) > 1:
            res.merged += len(ends) - 1
        if self.http.complete:
            self.finish(self.check_end())

    def _chunk(self, chunk: bytes, now_ns: int) -> None:
        res = self.result
        stamp = _STAMP.search(chunk)
        if stamp is None or int(stamp.group(2)) != self.next_seq:
            res.error = res.error or "unexpected chunk"
            return
        if self.next_seq == 0:
            res.first_chunk_ms = (now_ns - self.sent_ns) / 1e6
            self.gauge.up()
        self.next_seq += 1
        res.latencies_ms.append((now_ns - int(stamp.group(1))) / 1e6)

    def check_end(self) -> str:
        if self.result.error:
            return self.result.error
        if self.next_seq != self.plan.chunks:
            return f"{self.next_seq} of {self.plan.chunks} chunks"
        return "" if self.scanner.closed else "stream not closed"

    def finish(self, error: str) -> None:
        if self.done.done():
            return
        if self.next_seq:
            self.gauge.open -= 1
        self.result.error = error
        self.done.set_result(self.result)


class Connection(asyncio.Protocol):
    """One keep-alive client connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        if self.exchange is not None:
            self.exchange.feed(data, now)

    def eof_received(self) -> bool:
        self.closed = True
        exchange = self.exchange
        if exchange is not None:
            exchange.http.feed_eof()
            complete = exchange.http.complete
            exchange.finish(exchange.check_end() if complete else "connection closed")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.exchange is not None:
            self.exchange.finish(
                f"connection lost: {exc}" if exc else "connection closed"
            )

    async def request(
        self, plan: Plan, gauge: Gauge, head: bytes, body: bytes
    ) -> StreamResult:
        self.exchange = _Exchange(plan, gauge, time.time_ns())
        self.transport.write(head + body)
        try:
            return await asyncio.wait_for(
                asyncio.shield(self.exchange.done), plan.timeout_s
            )
        except TimeoutError:
            self.exchange.finish("timeout")
            self.transport.close()
            self.closed = True
            return self.exchange.result
        finally:
            if self.exchange.http.should_close:
                self.transport.close()
                self.closed = True
            self.exchange = None


def _request_head(plan: Plan, body_len: int) -> bytes:
    query = "?alt=sse" if plan.framing == "sse" else ""
    return (
        f"POST {plan.path}{query} HTTP/1.1\r\nHost: 127.0.0.1:{plan.port}\r\n"
        f"Content-Type: application/json\r\nx-goog-api-key: {plan.key}\r\n"
        f"Content-Length: {body_len}\r\n\r\n"
    ).encode()


async def _worker(
    plan: Plan, index: int, todo: list[int], gauge: Gauge, out: list[StreamResult]
) -> None:
    if plan.ramp_s:
        await asyncio.sleep(plan.ramp_s * index / plan.concurrency)
    loop = asyncio.get_running_loop()
    body = plan.body()
    head = _request_head(plan, len(body))
    conn: Connection | None = None
    while todo:
        todo.pop()
        if conn is None or conn.closed:
            try:
                _, conn = await loop.create_connection(
                    Connection, "127.0.0.1", plan.port
                )
            except OSError as exc:
                out.append(StreamResult(error=f"connect: {exc.strerror}"))
                conn = None
                continue
        out.append(await conn.request(plan, gauge, head, body))
    if conn is not None and not conn.closed:
        conn.transport.close()


@dataclass
class RunResult:
    """All the requests of one run and its wall time."""

    results: list[StreamResult]
    wall_s: float
    peak_open: int


async def run_load(plan: Plan) -> RunResult:
    """Send `plan.requests` streaming requests over `plan.concurrency` connections."""
    todo = list(range(plan.requests))
    gauge = Gauge()
    out: list[StreamResult] = []
    started = time.perf_counter()
    workers = [_worker(plan, i, todo, gauge, out) for i in range(plan.concurrency)]
    await asyncio.gather(*workers)
    return RunResult(out, time.perf_counter() - started, gauge.peak)
