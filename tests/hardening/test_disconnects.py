"""Client disconnects: a client that vanishes mid-stream makes the gateway close its upstream
connection (the fake's `Scenario.closed` fires long before the stream could have finished), and after
many such clients the gunicorn worker holds no more sockets than before."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.env import KEYS, SECRETS, gemini_env, start_gateway
from tests.support.fakes import FakeUpstream, Scenario, chunk
from tests.support.hardening import record, scaled
from tests.support.procstats import proc_stats, settle, worker_pid
from tests.support.rawhttp import http_request

PROMPT = "disconnect-prompt: a kite string frays at noon (never logged)"
SECRETS.add(PROMPT)
BODY = json.dumps(
    {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
).encode()
TICKS = 400  # one every 50 ms: 20 s of stream if nobody noticed the client had gone
CLIENTS = scaled(40)


def ticking() -> Scenario:
    chunks = [chunk(f"tick {i} ") for i in range(TICKS)] + [chunk("end", last=True)]
    return Scenario(chunks=chunks, delay_s=0.05)


@pytest.fixture(scope="module")
def fake():
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def gateway(workdir, keys_file, fake):
    env = gemini_env(
        keys_file, fake, STREAMGATE_IDLE_TIMEOUT_S="5", THREADS=str(CLIENTS + 16)
    )
    gw = start_gateway(workdir, "disconnects", env)
    yield gw
    gw.stop()


def vanish_midstream(port: int, model: str) -> None:
    """Open an SSE stream, wait for its first event, then close the socket and go."""
    target = f"/v1beta/models/{model}:streamGenerateContent?alt=sse".encode()
    request = http_request("POST", target, [("x-goog-api-key", KEYS["team-a"])], BODY)
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        received = b""
        while b"data: " not in received:
            piece = sock.recv(4096)
            assert piece, f"{model}: the stream ended before its first event"
            received += piece


def disconnected_logs(
    gateway, prefix: str, count: int, timeout_s: float = 10.0
) -> list:
    """The request log lines of streams to `prefix*` models, once `count` have been written."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [
            e for e in gateway.request_logs() if e.get("model", "").startswith(prefix)
        ]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_vanishing_client_closes_the_upstream_connection(gateway, fake):
    scenario = fake.script("vanish-one", ticking())
    vanish_midstream(gateway.port, "vanish-one")
    assert scenario.closed.wait(15), "the upstream response is still open"
    assert scenario.pieces_sent < TICKS  # closed early, not because the stream ended
    [line] = disconnected_logs(gateway, "vanish-one", 1)
    assert line["outcome"] == "disconnected"
    assert line["severity"] == "WARNING"


def test_many_vanishing_clients_leave_nothing_open(gateway, fake):
    pid = worker_pid(gateway.proc.pid)
    idle = proc_stats(pid)
    models = [f"vanish-many-{i}" for i in range(CLIENTS)]
    scenarios = [fake.script(model, ticking()) for model in models]
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(lambda m: vanish_midstream(gateway.port, m), models))
    closed = sum(s.closed.wait(15) and s.pieces_sent < TICKS for s in scenarios)
    after = settle(pid, idle.sockets, idle.threads + CLIENTS)
    logs = disconnected_logs(gateway, "vanish-many-", CLIENTS)
    record(
        "disconnects",
        clients=CLIENTS,
        upstream_closed=closed,
        sockets_before=idle.sockets,
        sockets_after=after.sockets,
        sockets_left=max(0, after.sockets - idle.sockets),
        threads_after=after.threads,
    )
    assert closed == CLIENTS
    assert after.sockets <= idle.sockets + 5, (idle, after)
    assert sorted(e["outcome"] for e in logs) == ["disconnected"] * CLIENTS
