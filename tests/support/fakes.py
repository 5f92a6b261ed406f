"""Real HTTP fakes on 127.0.0.1: a scriptable Google upstream (both framings, gzip, faults) and its token endpoint."""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def chunk(text: str, *, last: bool = False, model: str = "gemini-2.5-flash") -> bytes:
    """One GenerateContentResponse chunk, serialised the way Google's front end does."""
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]}
    }
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
    if last:
        candidate["finishReason"] = "STOP"
        body["usageMetadata"] = {
            "promptTokenCount": 4,
            "candidatesTokenCount": 2,
            "totalTokenCount": 6,
        }
    return json.dumps(body, separators=(",", ": ")).encode()


def sse_events(raw: bytes) -> list[bytes]:
    """The `data:` payloads (and bare error objects) of a recorded SSE body."""
    from lib.framing import SSE, decode_stream

    return list(decode_stream(SSE, [raw]))


@dataclass
class Scenario:
    """How the fake answers one model: chunks, faults, gates. Set `gate` to hold after chunk 1."""

    chunks: list[bytes] = field(
        default_factory=lambda: [chunk("Hello"), chunk(" world", last=True)]
    )
    status: int = 200
    error: dict[str, Any] | None = None
    fail_times: int = 0
    raw_body: bytes | None = None
    gzip: bool = False
    delay_s: float = 0.0
    gate: threading.Event | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    error_after: int | None = None
    closed: threading.Event = field(default_factory=threading.Event)
    calls: int = 0
    # Hardening knobs: wait before the first byte (headers included); pieces actually written.
    first_byte_delay_s: float = 0.0
    pieces_sent: int = 0


def _array(chunks: list[bytes]) -> Iterator[bytes]:
    for i, c in enumerate(chunks):
        pretty = json.dumps(json.loads(c), indent=2).encode()
        yield (b"[" if i == 0 else b"\n,\r\n") + pretty
    yield b"\n]" if chunks else b"[]"


class FakeUpstream:
    """Speaks Vertex and the Gemini API on 127.0.0.1; records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.scenarios: dict[str, Scenario] = {}
        self.token_requests = 0
        self.release = threading.Event()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()

    def script(self, model: str, scenario: Scenario | None = None) -> Scenario:
        self.scenarios[model] = scenario or Scenario()
        return self.scenarios[model]

    def last_request(self, model: str) -> dict[str, Any]:
        return [r for r in self.requests if f"/{model}:" in r["path"]][-1]

    @Request.application
    def _app(self, request: Request) -> Response:
        if request.path == "/token":
            self.token_requests += 1
            token = {
                "access_token": f"ya29.fake-{self.token_requests}",
                "expires_in": 3600,
                "token_type": "Bearer",
            }
            return Response(json.dumps(token), content_type="application/json")
        body = request.get_data()
        self.requests.append(
            {
                "path": request.path,
                "query": request.query_string.decode(),
                "headers": dict(request.headers),
                "body": json.loads(body) if body else None,
            }
        )
        model = request.path.rsplit("/", 1)[-1].split(":")[0]
        scenario = self.scenarios.get(model) or Scenario()
        scenario.calls += 1
        sse = request.args.get("alt") == "sse"
        if scenario.status != 200 and (
            not scenario.fail_times or scenario.calls <= scenario.fail_times
        ):
            return self._error(scenario, sse)
        if request.path.endswith((":countTokens", ":computeTokens")):
            return Response(
                json.dumps({"totalTokens": 7}), content_type="application/json"
            )
        return self._stream(scenario, sse, request.path.endswith(":generateContent"))

    def _error(self, scenario: Scenario, sse: bool) -> Response:
        error = scenario.error or {
            "code": scenario.status,
            "message": "fake failure",
            "status": "INTERNAL",
        }
        payload: Any = {"error": error}
        if not sse:
            payload = [payload]
        return Response(
            json.dumps(payload, indent=2) + "\n",
            status=scenario.status,
            content_type="application/json; charset=UTF-8",
        )

    def _stream(self, scenario: Scenario, sse: bool, unary: bool) -> Response:
        if unary:
            return Response(
                scenario.chunks[-1], content_type="application/json; charset=UTF-8"
            )
        if scenario.raw_body is not None:
            pieces: list[bytes] = [scenario.raw_body]
        elif sse:
            pieces = [b"data: " + c + b"\r\n\r\n" for c in scenario.chunks]
        else:
            pieces = list(_array(scenario.chunks))
        headers = {
            "Content-Type": "text/event-stream"
            if sse
            else "application/json; charset=UTF-8",
            "Server-Timing": "gfet4t7; dur=1",
            "X-Upstream-Secret": "must-not-pass",
        }
        if scenario.gzip:
            headers["Content-Encoding"] = "gzip"
        return Response(self._pieces(scenario, pieces), headers=headers)

    def _pieces(self, scenario: Scenario, pieces: list[bytes]) -> Iterator[bytes]:
        compressor = zlib.compressobj(wbits=31) if scenario.gzip else None
        try:
            for i, piece in enumerate(pieces):
                if i and scenario.delay_s:
                    time.sleep(scenario.delay_s)
                if i == 0 and scenario.first_byte_delay_s:
                    time.sleep(scenario.first_byte_delay_s)
                if i == scenario.error_after:
                    piece = b'{\n  "error": {\n    "code": 499,\n    "message": "cancelled",\n    "status": "CANCELLED"\n  }\n}\n'
                if i == scenario.drop_after:
                    raise RuntimeError("fake upstream drops the connection mid-stream")
                if i == scenario.stall_after:
                    self.release.wait(30)
                if compressor is not None:
                    piece = compressor.compress(piece) + compressor.flush(
                        zlib.Z_SYNC_FLUSH
                    )
                yield piece
                scenario.pieces_sent += 1
                if i == 0 and scenario.gate is not None:
                    scenario.gate.wait(10)
            if compressor is not None:
                yield compressor.flush()
        finally:
            scenario.closed.set()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)
