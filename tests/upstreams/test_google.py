"""Vertex and the Gemini API behind the gateway: pinned URLs, our credentials, faithful and live relay."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sseclient

from tests.support.env import (
    KEYS,
    PINNED_LOCATION,
    PINNED_PROJECT,
    UPSTREAM_KEY,
    start_gateway,
    vertex_env,
    write_service_account,
)
from tests.support.fakes import FakeUpstream, Scenario, chunk, sse_events
from tests.support.gateway_process import free_port
from tests.support.paths import FIXTURES

S = ":streamGenerateContent"
BODY = {
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    "labels": {"team": "a"},
}
CLIENT = {"x-goog-api-key": KEYS["team-a"]}


def vertex_path(model: str, project: str = "attacker", location: str = "evil-1") -> str:
    return f"/v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}{S}"


def post(gw, path, body=BODY, sse=True, headers=None, **kwargs):
    url = gw.url(path + ("?alt=sse" if sse else ""))
    return requests.post(
        url, json=body, headers={**CLIENT, **(headers or {})}, timeout=15, **kwargs
    )


def sse_chunks(resp) -> list[dict]:
    return [
        json.loads(e.data) for e in sseclient.SSEClient(iter([resp.content])).events()
    ]


@pytest.fixture(params=["gemini", "vertex"])
def gateway(request, gemini_gateway, vertex_gateway):
    return gemini_gateway if request.param == "gemini" else vertex_gateway


def path_for(gw, model: str, vertex_gateway) -> str:
    return vertex_path(model) if gw is vertex_gateway else f"/v1beta/models/{model}{S}"


def test_vertex_calls_the_pinned_project_with_our_token(vertex_gateway, fake_upstream):
    fake_upstream.script("pin-1")
    resp = post(
        vertex_gateway,
        vertex_path("pin-1"),
        headers={"Cookie": "c=1", "x-goog-user-project": "x"},
    )
    assert resp.status_code == 200
    seen = fake_upstream.last_request("pin-1")
    assert seen["path"] == (
        f"/v1/projects/{PINNED_PROJECT}/locations/{PINNED_LOCATION}/publishers/google/models/pin-1{S}"
    )
    assert seen["query"] == "alt=sse"
    assert seen["headers"]["Authorization"].startswith("Bearer ya29.fake-")
    assert KEYS["team-a"] not in json.dumps(seen)
    assert (
        "Cookie" not in seen["headers"] and "X-Goog-User-Project" not in seen["headers"]
    )
    # The client's own labels, and the gateway key's id for Cloud Billing.
    assert seen["body"] == {**BODY, "labels": {"team": "a", "streamgate-key": "team-a"}}
    assert fake_upstream.token_requests >= 1


def test_vertex_bills_the_gateway_key_as_a_label_the_client_cannot_override(
    vertex_gateway, gemini_gateway, fake_upstream
):
    forged = {**BODY, "labels": {"team": "b", "streamgate-key": "someone-else"}}
    assert post(vertex_gateway, vertex_path("label-1"), forged).status_code == 200
    labels = fake_upstream.last_request("label-1")["body"]["labels"]
    assert labels == {"team": "b", "streamgate-key": "team-a"}
    # The Gemini API has no labels: dropped there, as before.
    assert post(gemini_gateway, f"/v1beta/models/label-2{S}", forged).status_code == 200
    assert "labels" not in fake_upstream.last_request("label-2")["body"]


@pytest.mark.parametrize(
    "key_id, label",
    [("team-a", "team-a"), ("Team.A@corp", "team_a_corp"), ("x" * 64, "x" * 63)],
)
def test_key_ids_become_valid_vertex_label_values(key_id, label):
    from lib.upstreams.google import label_value

    assert label_value(key_id) == label


def test_vertex_endpoints_and_aliases_stay_pinned(vertex_gateway, fake_upstream):
    post(vertex_gateway, f"/v1/projects/p/locations/l/endpoints/4242{S}")
    assert fake_upstream.requests[-1]["path"] == (
        f"/v1/projects/{PINNED_PROJECT}/locations/{PINNED_LOCATION}/endpoints/4242{S}"
    )
    post(
        vertex_gateway,
        f"/api/vertex-ai/v1/publishers/google/models/gemini-pro{S}",
        sse=False,
    )
    assert fake_upstream.requests[-1]["path"].endswith(
        "/publishers/google/models/gemini-2.5-flash" + S
    )
    assert fake_upstream.requests[-1]["query"] == ""


def test_gemini_uses_our_key_in_a_header_and_drops_vertex_only_fields(
    gemini_gateway, fake_upstream
):
    fake_upstream.script("gem-1")
    resp = requests.post(
        gemini_gateway.url(f"/v1/models/gem-1{S}?alt=sse&key={KEYS['team-a']}"),
        json=BODY,
        headers={"x-goog-api-client": "google-genai-sdk/3.4.0"},
        timeout=10,
    )
    assert resp.status_code == 200
    seen = fake_upstream.last_request("gem-1")
    assert seen["path"] == f"/v1beta/models/gem-1{S}" and seen["query"] == "alt=sse"
    assert seen["headers"]["X-Goog-Api-Key"] == UPSTREAM_KEY
    assert seen["headers"]["X-Goog-Api-Client"] == "google-genai-sdk/3.4.0"
    assert "Authorization" not in seen["headers"]
    assert seen["body"] == {"contents": BODY["contents"]}


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/models/anthropic/claude-3{S}",
        f"/v1/projects/p/locations/l/endpoints/42{S}",
    ],
)
def test_gemini_refuses_what_it_cannot_serve(gemini_gateway, path):
    resp = post(gemini_gateway, path)
    assert resp.status_code == 400
    assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("sse", [True, False])
def test_each_chunk_reaches_the_client_before_the_next_exists(
    gateway, fake_upstream, vertex_gateway, sse
):
    model = f"gated-{'sse' if sse else 'array'}-{id(gateway)}"
    gate = threading.Event()
    fake_upstream.script(
        model, Scenario(chunks=[chunk("first"), chunk("second", last=True)], gate=gate)
    )
    resp = post(gateway, path_for(gateway, model, vertex_gateway), sse=sse, stream=True)
    pieces = resp.iter_content(chunk_size=None)
    first = next(pieces)
    assert b'"first"' in first and b'"second"' not in first
    assert not gate.is_set()  # the upstream is still holding chunk 2
    gate.set()
    rest = b"".join(pieces)
    assert b'"second"' in rest
    whole = first + rest
    assert json.loads(whole) if not sse else whole.count(b"data: ") == 2


def test_gzip_is_undone_and_chunks_arrive_intact(
    gateway, fake_upstream, vertex_gateway
):
    chunks = [chunk(f"part {i}") for i in range(5)] + [chunk("end", last=True)]
    fake_upstream.script("gz", Scenario(chunks=chunks, gzip=True))
    resp = post(gateway, path_for(gateway, "gz", vertex_gateway))
    assert "Content-Encoding" not in resp.headers
    assert [
        json.dumps(c, separators=(",", ": ")).encode() for c in sse_chunks(resp)
    ] == chunks


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.sse")))
def test_recorded_streams_replay_byte_for_byte(
    gateway, fake_upstream, vertex_gateway, fixture
):
    raw = (FIXTURES / fixture).read_bytes()
    model = fixture.split(".")[0].replace("_", "-")
    fake_upstream.script(model, Scenario(raw_body=raw))
    resp = post(gateway, path_for(gateway, model, vertex_gateway))
    assert resp.status_code == 200
    events = resp.content.split(b"\r\n\r\n")[:-1]
    upstream = sse_events(raw)
    for sent, got in zip(upstream, events):
        if sent.lstrip().startswith(b'{\n  "error"'):
            assert json.loads(got[len(b"data: ") :]) == json.loads(
                sent
            )  # re-framed as one SSE event
        else:
            assert got == b"data: " + sent
    assert len(events) == len(upstream)


def test_recorded_gemini_response_replays_with_its_headers(
    gemini_gateway, fake_upstream
):
    _, _, body = (
        (FIXTURES / "gemini-api_sse_text.http").read_bytes().partition(b"\r\n\r\n")
    )
    fake_upstream.script("recorded", Scenario(raw_body=body))
    resp = post(gemini_gateway, f"/v1beta/models/recorded{S}")
    assert resp.content == body
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Server-Timing"] == "gfet4t7; dur=1"
    assert "X-Upstream-Secret" not in resp.headers


def test_json_array_replay_keeps_every_element(gateway, fake_upstream, vertex_gateway):
    events = sse_events((FIXTURES / "vertex_sse_text-thinking.sse").read_bytes())
    fake_upstream.script("array-replay", Scenario(chunks=events))
    resp = post(gateway, path_for(gateway, "array-replay", vertex_gateway), sse=False)
    assert json.loads(resp.content) == [json.loads(e) for e in events]
    assert resp.content.count(b"\n,\r\n") == len(events) - 1


def test_upstream_error_before_the_stream_keeps_status_and_retry_after(
    gateway, fake_upstream, vertex_gateway
):
    error = {
        "code": 429,
        "message": f"Quota exceeded for {fake_upstream.url}/v1/projects/{PINNED_PROJECT} key {UPSTREAM_KEY}",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}
        ],
    }
    scenario = fake_upstream.script(
        f"quota-{id(gateway)}", Scenario(status=429, error=error)
    )
    resp = post(gateway, path_for(gateway, f"quota-{id(gateway)}", vertex_gateway))
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "30"
    body = resp.json()["error"]
    assert body["code"] == 429 and body["status"] == "RESOURCE_EXHAUSTED"
    assert (
        fake_upstream.url not in body["message"] and UPSTREAM_KEY not in body["message"]
    )
    assert PINNED_PROJECT not in resp.text or gateway is not vertex_gateway
    assert body["details"][0]["retryDelay"] == "30s"
    assert scenario.calls == 1  # a long 429 is not retried


def test_recorded_401_is_relayed_with_its_status(vertex_gateway, fake_upstream):
    _, _, body = (
        (FIXTURES / "vertex_http-401-error.http").read_bytes().partition(b"\r\n\r\n")
    )
    fake_upstream.script(
        "denied", Scenario(status=401, error=json.loads(body)["error"])
    )
    resp = post(vertex_gateway, vertex_path("denied"), sse=False)
    assert resp.status_code == 401
    relayed = resp.json()[0]["error"]
    assert relayed["status"] == "UNAUTHENTICATED"
    assert relayed["message"].startswith("API keys are not supported by this API.")
    assert [d["@type"].rsplit(".", 1)[-1] for d in relayed["details"]] == ["ErrorInfo"]


@pytest.mark.parametrize(
    ("status", "error", "fail_times", "calls", "final"),
    [
        (503, None, 1, 2, 200),
        (503, None, 9, 3, 503),
        (
            429,
            {
                "code": 429,
                "message": "slow down",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": "0.1s",
                    }
                ],
            },
            2,
            3,
            200,
        ),
        (500, None, 1, 1, 500),
    ],
)
def test_retries_only_before_the_first_byte(
    gemini_gateway, fake_upstream, status, error, fail_times, calls, final
):
    model = f"retry-{status}-{fail_times}"
    scenario = fake_upstream.script(
        model, Scenario(status=status, error=error, fail_times=fail_times)
    )
    resp = post(gemini_gateway, f"/v1beta/models/{model}{S}")
    assert resp.status_code == final
    assert scenario.calls == calls


@pytest.mark.parametrize(
    ("fault", "code"),
    [({"drop_after": 1}, 502), ({"stall_after": 1}, 504), ({"error_after": 1}, 499)],
)
@pytest.mark.parametrize("sse", [True, False])
def test_failure_mid_stream_ends_with_an_error_element(
    gateway, fake_upstream, vertex_gateway, fault, code, sse
):
    model = f"mid-{next(iter(fault))}-{sse}-{id(gateway)}"
    fake_upstream.script(
        model, Scenario(chunks=[chunk("a"), chunk("b"), chunk("c", last=True)], **fault)
    )
    resp = post(gateway, path_for(gateway, model, vertex_gateway), sse=sse)
    assert resp.status_code == 200
    if sse:
        assert resp.content.endswith(b"\r\n\r\n")
        events = sse_chunks(resp)
    else:
        events = json.loads(resp.content)
    assert events[0]["candidates"][0]["content"]["parts"][0]["text"] == "a"
    assert list(events[-1]) == ["error"]
    assert events[-1]["error"]["code"] == code and events[-1]["error"]["status"]
    assert len(events) == 2


def test_client_disconnect_closes_the_upstream(gemini_gateway, fake_upstream):
    chunks = [chunk(f"tick {i}") for i in range(100)]
    scenario = fake_upstream.script("endless", Scenario(chunks=chunks, delay_s=0.05))
    request = (
        f"POST /v1beta/models/endless{S}?alt=sse HTTP/1.1\r\nHost: x\r\nx-goog-api-key: {KEYS['team-a']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(json.dumps(BODY))}\r\n\r\n{json.dumps(BODY)}"
    )
    with socket.create_connection(
        ("127.0.0.1", gemini_gateway.port), timeout=10
    ) as sock:
        sock.sendall(request.encode())
        received = b""
        while b"tick 0" not in received:
            piece = sock.recv(65536)
            assert piece, "the stream ended before its first chunk"
            received += piece
    assert scenario.closed.wait(5), (
        "the upstream connection stayed open after the client left"
    )
    assert wait_for(
        lambda: any(
            e["model"] == "endless" and e["outcome"] == "disconnected"
            for e in gemini_gateway.request_logs()
        )
    )


def wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_one_token_serves_every_thread_until_it_nears_expiry(workdir, keys_file):
    """Concurrent requests share one access token from one refresh (the real google-auth path)."""
    own = FakeUpstream().start()
    credentials = write_service_account(
        workdir / "sa-token-test.json", f"{own.url}/token"
    )
    gw = start_gateway(workdir, "vertex-token", vertex_env(keys_file, own, credentials))
    try:
        with ThreadPoolExecutor(16) as pool:
            statuses = list(
                pool.map(lambda _: post(gw, vertex_path("tok")).status_code, range(32))
            )
        assert statuses == [200] * 32
        bearers = {
            r["headers"]["Authorization"] for r in own.requests if r["path"] != "/token"
        }
        assert bearers == {"Bearer ya29.fake-1"}
        assert own.token_requests == 1
    finally:
        gw.stop()
        own.stop()


def test_credentials_that_cannot_be_refreshed_are_a_503(
    workdir, keys_file, fake_upstream
):
    nowhere = f"http://127.0.0.1:{free_port()}/token"  # nothing listens there
    credentials = write_service_account(workdir / "sa-broken.json", nowhere)
    gw = start_gateway(
        workdir, "vertex-broken-auth", vertex_env(keys_file, fake_upstream, credentials)
    )
    try:
        resp = post(gw, vertex_path("no-token"))
        assert resp.status_code == 503
        assert resp.json()["error"]["status"] == "UNAVAILABLE"
        assert not [r for r in fake_upstream.requests if "/no-token:" in r["path"]]
    finally:
        gw.stop()
