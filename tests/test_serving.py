"""The event-loop server as deployed: backpressure, SIGTERM with a grace, the platform's time limit."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.env import KEYS, gemini_env, start_gateway
from tests.support.fakes import FakeUpstream, Scenario, chunk, sse_events
from tests.support.procstats import proc_stats, worker_pid

BODY = {"contents": [{"parts": [{"text": "hi"}]}]}
HEADERS = {"x-goog-api-key": KEYS["team-a"]}


def _stream_path(model: str, sse: bool) -> str:
    suffix = "?alt=sse" if sse else ""
    return f"/v1beta/models/{model}:streamGenerateContent{suffix}"


def _post(gw, model: str, sse: bool) -> requests.Response:
    return requests.post(
        gw.url(_stream_path(model, sse)),
        json=BODY,
        headers=HEADERS,
        stream=True,
        timeout=30,
    )


@pytest.fixture(scope="module")
def upstream() -> FakeUpstream:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


def test_a_client_that_stops_reading_pauses_the_upstream_not_the_memory(
    workdir: Path, keys_file: Path, upstream: FakeUpstream
):
    """40 MB from the upstream while the client reads nothing for 10 s: the instance holds under 64 MiB
    more, the upstream's writes stop, and the whole stream arrives intact once the client reads again."""
    piece = chunk("x" * 100_000)
    scenario = upstream.script(
        "backpressure", Scenario(chunks=[piece] * 399 + [chunk("end", last=True)])
    )
    gw = start_gateway(workdir, "backpressure", gemini_env(keys_file, upstream))
    try:
        worker = worker_pid(gw.proc.pid)
        requests.post(gw.url(_stream_path("warm", True)), json=BODY, headers=HEADERS)
        before = proc_stats(worker).rss_mb
        sock = socket.create_connection(("127.0.0.1", gw.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        body = json.dumps(BODY).encode()
        sock.sendall(
            f"POST {_stream_path('backpressure', True)} HTTP/1.1\r\nHost: x\r\n"
            f"x-goog-api-key: {KEYS['team-a']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(10)
        during = proc_stats(worker).rss_mb
        sent_while_paused = scenario.pieces_sent
        time.sleep(1)
        assert scenario.pieces_sent == sent_while_paused, "the upstream kept sending"
        assert sent_while_paused < 200, "most of the 40 MB should still be upstream"
        assert during - before < 64, f"RSS grew {during - before:.0f} MiB"
        received = bytearray()
        sock.settimeout(30)
        while not received.endswith(b"0\r\n\r\n"):
            data = sock.recv(1 << 20)
            assert data, "the gateway closed the stream early"
            received += data
        sock.close()
        assert received.count(b"data: {") == 400
        assert scenario.pieces_sent == 400
    finally:
        gw.stop()


def _read_all(resp: requests.Response) -> bytes:
    """The whole body; urllib3 raises if the chunked body does not end properly."""
    return b"".join(resp.iter_content(chunk_size=None))


def test_sigterm_lets_streams_run_their_grace_then_ends_each_with_unavailable(
    workdir: Path, keys_file: Path, upstream: FakeUpstream
):
    """Open streams keep going for STREAMGATE_SHUTDOWN_GRACE_S, then end with one final well-formed
    UNAVAILABLE element and a proper end of the chunked body; the instance then exits."""
    gates = {name: threading.Event() for name in ("term-sse", "term-array")}
    for name, gate in gates.items():
        upstream.script(name, Scenario(chunks=[chunk("one"), chunk("two")], gate=gate))
    env = gemini_env(keys_file, upstream, STREAMGATE_SHUTDOWN_GRACE_S="1")
    gw = start_gateway(workdir, "sigterm", env)
    try:
        sse = _post(gw, "term-sse", True).iter_content(chunk_size=None)
        array = _post(gw, "term-array", False).iter_content(chunk_size=None)
        first_sse, first_array = next(sse), next(array)
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        # urllib3 raises if a chunked body does not end properly.
        rest_sse, rest_array = b"".join(sse), b"".join(array)
        waited = time.monotonic() - started
        assert 0.9 <= waited < 8, waited
        events = sse_events(first_sse + rest_sse)
        assert json.loads(events[0])["candidates"]
        error = json.loads(events[-1])["error"]
        assert (error["code"], error["status"]) == (503, "UNAVAILABLE")
        assert (first_sse + rest_sse).endswith(b"}\r\n\r\n")
        elements = json.loads(first_array + rest_array)
        assert (
            elements[0]["candidates"]
            and elements[-1]["error"]["status"] == "UNAVAILABLE"
        )
        assert gw.proc.wait(10) is not None
        logs = [e for e in gw.request_logs() if e["model"].startswith("term-")]
        assert {e["outcome"] for e in logs} == {"error"}
    finally:
        for gate in gates.values():
            gate.set()
        gw.stop()


@pytest.mark.parametrize("sse", [True, False], ids=["sse", "array"])
def test_a_stream_at_the_platform_time_limit_ends_with_an_error_element(
    workdir: Path, keys_file: Path, upstream: FakeUpstream, sse: bool
):
    """STREAMGATE_REQUEST_TIMEOUT_S (Terraform: the platform's timeout less a margin) ends a stream
    that is still going with the same final UNAVAILABLE element, before the platform cuts it."""
    gate = threading.Event()
    model = f"limit-{'sse' if sse else 'array'}"
    upstream.script(model, Scenario(chunks=[chunk("one"), chunk("two")], gate=gate))
    env = gemini_env(keys_file, upstream, STREAMGATE_REQUEST_TIMEOUT_S="1")
    gw = start_gateway(workdir, f"time-limit-{model}", env)
    try:
        resp = _post(gw, model, sse)
        body = _read_all(resp)
        if sse:
            error = json.loads(sse_events(body)[-1])["error"]
        else:
            error = json.loads(body)[-1]["error"]
        assert error["status"] == "UNAVAILABLE" and "time limit" in error["message"]
        assert not gate.is_set()
    finally:
        gate.set()
        gw.stop()
