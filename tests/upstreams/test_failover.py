"""STREAMGATE_UPSTREAMS behind the gateway as deployed: the next upstream on an early failure, never after a byte."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.env import (
    KEYS,
    PINNED_LOCATION,
    PINNED_PROJECT,
    SECRETS,
    start_gateway,
)
from tests.support.fakes import FakeUpstream, Scenario, chunk
from tests.support.gateway_process import GatewayProcess, free_port
from tests.support.paths import FIXTURES

S = ":streamGenerateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
CLIENT = {"x-goog-api-key": KEYS["team-a"]}
BACKUP_PROJECT = "backup-proj"
BACKUP_KEY = "AIzaSy-backup-upstream-EEEEEEEEEEEEEEEEEEEE"
SECRETS.add(BACKUP_KEY)
QUOTA = {
    "code": 429,
    "message": "Resource exhausted. Please try again later.",
    "status": "RESOURCE_EXHAUSTED",
}


@pytest.fixture(scope="module")
def primary() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def backup() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


def vertex(name: str, url: str, project: str = PINNED_PROJECT) -> dict[str, str]:
    return {
        "kind": "vertex",
        "name": name,
        "project": project,
        "location": PINNED_LOCATION,
        "baseUrl": url,
    }


def list_gateway(
    workdir: Path, keys_file: Path, credentials: Path, name: str, upstreams: list
) -> GatewayProcess:
    env = {
        "STREAMGATE_KEYS": str(keys_file),
        "STREAMGATE_UPSTREAMS": json.dumps(upstreams),
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        "BACKUP_GEMINI_KEY": BACKUP_KEY,
    }
    return start_gateway(workdir, name, env)


@pytest.fixture(scope="module")
def two_vertex(workdir, keys_file, service_account_file, primary, backup):
    """Vertex in our project, then Vertex in a second project."""
    upstreams = [
        vertex("primary", primary.url),
        vertex("backup", backup.url, BACKUP_PROJECT),
    ]
    gw = list_gateway(
        workdir, keys_file, service_account_file, "failover-vertex", upstreams
    )
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def refused_then_gemini(workdir, keys_file, service_account_file, backup):
    """Vertex at a port nobody listens on, then the Gemini API with a key named by a variable."""
    gemini = {
        "kind": "gemini",
        "name": "gemini-backup",
        "baseUrl": backup.url,
        "apiKeyEnv": "BACKUP_GEMINI_KEY",
    }
    refused = vertex("refused", f"http://127.0.0.1:{free_port()}")
    gw = list_gateway(
        workdir, keys_file, service_account_file, "failover-refused", [refused, gemini]
    )
    yield gw
    gw.stop()


def vertex_path(model: str) -> str:
    return f"/v1/projects/p/locations/l/publishers/google/models/{model}{S}"


def post(gw: GatewayProcess, path: str, sse: bool = True) -> requests.Response:
    url = gw.url(path + ("?alt=sse" if sse else ""))
    return requests.post(url, json=BODY, headers=CLIENT, timeout=30)


def log_line(gw: GatewayProcess, request_id: str) -> dict:
    """The request's log line (written as the stream ends, so it may trail the body a little)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in gw.log_text().splitlines():
            if request_id in line and line.startswith("{"):
                entry = json.loads(line)
                if entry.get("requestId") == request_id:
                    return entry
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


def direct(fake: FakeUpstream, model: str, sse: bool = True) -> bytes:
    """What the upstream itself sends for `model`, asked without the gateway."""
    path = f"/v1/projects/x/locations/y/publishers/google/models/{model}{S}"
    resp = requests.post(
        fake.url + path + ("?alt=sse" if sse else ""), json=BODY, timeout=10
    )
    assert resp.status_code == 200
    return resp.content


def first_request(fake: FakeUpstream, model: str) -> dict:
    """The first request `fake` got for `model` (the gateway's, before `direct` asked)."""
    return next(r for r in fake.requests if f"/{model}:" in r["path"])


def recorded(name: str) -> bytes:
    _, _, body = (FIXTURES / name).read_bytes().partition(b"\r\n\r\n")
    return body


def test_a_429_moves_the_call_to_the_next_upstream_byte_for_byte(
    two_vertex, primary, backup
):
    model = "fo-quota"
    refused = primary.script(model, Scenario(status=429, error=QUOTA))
    served = backup.script(
        model, Scenario(raw_body=recorded("gemini-api_sse_text.http"))
    )
    resp = post(two_vertex, vertex_path(model))
    assert resp.status_code == 200
    assert resp.content == direct(backup, model)
    assert refused.calls == 1  # asked once: the next upstream is the retry
    assert served.calls == 2  # the gateway's call, then ours
    sent = first_request(backup, model)
    assert sent["path"].startswith(f"/v1/projects/{BACKUP_PROJECT}/locations/")
    assert sent["headers"]["Authorization"].startswith("Bearer ya29.")
    entry = log_line(two_vertex, resp.headers["X-Request-Id"])
    assert entry["upstream"] == "backup"
    assert entry["upstreamTries"] == 2
    assert entry["upstreamsTried"] == ["primary", "backup"]


def test_a_refused_connection_moves_the_call_to_the_next_upstream(
    refused_then_gemini, backup
):
    model = "fo-refused"
    backup.script(model, Scenario(raw_body=recorded("gemini-api_sse_text.http")))
    resp = post(refused_then_gemini, f"/v1beta/models/{model}{S}")
    assert resp.status_code == 200
    assert resp.content == direct(backup, model)
    sent = first_request(backup, model)
    assert sent["path"] == f"/v1beta/models/{model}{S}"
    assert sent["headers"]["X-Goog-Api-Key"] == BACKUP_KEY
    entry = log_line(refused_then_gemini, resp.headers["X-Request-Id"])
    assert (entry["upstream"], entry["upstreamTries"]) == ("gemini-backup", 2)


@pytest.mark.parametrize("sse", [True, False], ids=["sse", "array"])
def test_a_5xx_before_the_first_byte_fails_over_in_either_framing(
    two_vertex, primary, backup, sse
):
    model = f"fo-500-{sse}"
    primary.script(model, Scenario(status=500))
    chunks = [chunk("Hello"), chunk(" again", last=True)]
    backup.script(model, Scenario(chunks=chunks))
    resp = post(two_vertex, vertex_path(model), sse=sse)
    assert resp.status_code == 200
    if sse:
        assert resp.content == b"".join(b"data: " + c + b"\r\n\r\n" for c in chunks)
    else:
        assert json.loads(resp.content) == [json.loads(c) for c in chunks]


def test_an_error_as_the_first_chunk_fails_over(two_vertex, primary, backup):
    model = "fo-first-chunk"
    overloaded = {"code": 503, "message": "Overloaded.", "status": "UNAVAILABLE"}
    raw = b"data: " + json.dumps({"error": overloaded}).encode() + b"\r\n\r\n"
    primary.script(model, Scenario(raw_body=raw))
    backup.script(model)
    resp = post(two_vertex, vertex_path(model))
    assert resp.status_code == 200
    assert b"Hello" in resp.content and b'"error"' not in resp.content


def test_nothing_is_tried_again_after_the_first_byte(two_vertex, primary, backup):
    model = "fo-mid-stream"
    primary.script(
        model, Scenario(chunks=[chunk("a"), chunk("b"), chunk("c")], drop_after=1)
    )
    untouched = backup.script(model)
    resp = post(two_vertex, vertex_path(model))
    assert resp.status_code == 200
    events = resp.content.split(b"\r\n\r\n")[:-1]
    assert events[0] == b"data: " + chunk("a")
    assert json.loads(events[-1][len(b"data: ") :])["error"]["code"] == 502
    assert untouched.calls == 0
    entry = log_line(two_vertex, resp.headers["X-Request-Id"])
    assert (entry["upstream"], entry["upstreamTries"]) == ("primary", 1)


def test_the_callers_own_error_is_final(two_vertex, primary, backup):
    model = "fo-bad-request"
    bad = {"code": 400, "message": "Bad field.", "status": "INVALID_ARGUMENT"}
    primary.script(model, Scenario(status=400, error=bad))
    untouched = backup.script(model)
    resp = post(two_vertex, vertex_path(model))
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "Bad field."
    assert untouched.calls == 0


def test_when_every_upstream_fails_the_last_answer_is_relayed(
    two_vertex, primary, backup
):
    model = "fo-all-down"
    primary.script(model, Scenario(status=503))
    backup.script(model, Scenario(status=429, error=QUOTA))
    resp = post(two_vertex, vertex_path(model))
    assert resp.status_code == 429
    assert resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    entry = log_line(two_vertex, resp.headers["X-Request-Id"])
    assert entry["upstream"] == "" and entry["upstreamTries"] == 2


def test_an_upstream_that_cannot_serve_the_call_is_passed_over_not_failed(
    refused_then_gemini, backup
):
    """A tuned endpoint is Vertex's alone: the Gemini API is not asked, and Vertex's failure shows."""
    path = f"/v1/projects/p/locations/l/endpoints/123{S}"
    before = len(backup.requests)
    resp = post(refused_then_gemini, path)
    assert resp.status_code == 502
    assert len(backup.requests) == before


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A port whose accept queue is full: a connection to it never completes (a blackholed region)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    yield port
    filler.close()
    server.close()


def test_a_connection_that_never_completes_leaves_time_for_the_next_upstream(
    workdir, keys_file, service_account_file, backup, blackhole
):
    """The default 10 s connect timeout is over the 8 s budget: in a list of two, each gets 4 s."""
    upstreams = [
        vertex("blackholed", f"http://127.0.0.1:{blackhole}"),
        vertex("backup", backup.url, BACKUP_PROJECT),
    ]
    gw = list_gateway(
        workdir, keys_file, service_account_file, "failover-hole", upstreams
    )
    try:
        backup.script("fo-blackhole")
        started = time.monotonic()
        resp = post(gw, vertex_path("fo-blackhole"))
        waited = time.monotonic() - started
        assert resp.status_code == 200
        assert waited > 3.5  # it did wait on the connection (4 s, its share)
        entry = log_line(gw, resp.headers["X-Request-Id"])
        assert (entry["upstream"], entry["upstreamTries"]) == ("backup", 2)
    finally:
        gw.stop()


def test_five_failures_in_a_row_pass_an_upstream_over(
    workdir, keys_file, service_account_file, primary, backup
):
    upstreams = [vertex("flaky", primary.url), vertex("steady", backup.url)]
    gw = list_gateway(
        workdir, keys_file, service_account_file, "failover-skip", upstreams
    )
    try:
        model = "fo-skip"
        flaky = primary.script(model, Scenario(status=503))
        steady = backup.script(model)
        for _ in range(5):
            assert post(gw, vertex_path(model)).status_code == 200
        assert flaky.calls == 5
        resp = post(gw, vertex_path(model))
        assert resp.status_code == 200
        assert flaky.calls == 5  # passed over: not asked
        assert steady.calls == 6
        entry = log_line(gw, resp.headers["X-Request-Id"])
        assert (entry["upstream"], entry["upstreamTries"]) == ("steady", 1)
        assert "upstream flaky failed 5 times in a row" in gw.log_text()
    finally:
        gw.stop()


def test_the_single_upstream_variables_are_a_list_of_one(vertex_gateway, fake_upstream):
    model = "fo-single"
    fake_upstream.script(model)
    resp = post(vertex_gateway, vertex_path(model))
    assert resp.status_code == 200
    entry = log_line(vertex_gateway, resp.headers["X-Request-Id"])
    assert (entry["upstream"], entry["upstreamTries"]) == ("vertex", 1)
