"""The gateway as deployed, with the echo upstream: every route, every key location, every error."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
import sseclient

from tests.support.env import CORS_ORIGIN, KEYS, start_gateway

S = ":streamGenerateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]}
ROUTE_FORMS = [
    f"/api/vertex-ai/v1/publishers/google/models/gemini-2.5-flash{S}",
    f"/api/v1/publishers/google/models/gemini-2.5-flash{S}",
    f"/api/vertex-ai/v1beta/publishers/google/models/gemini-2.5-flash{S}",
    f"/api/v1/models/google/gemini-2.5-flash{S}",
    f"/api/vertex-ai/v1/models/gemini-2.5-flash{S}",
    f"/v1/projects/any/locations/us-east5/publishers/google/models/gemini-2.5-flash{S}",
    f"/v1beta1/projects/any/locations/global/publishers/google/models/gemini-2.5-flash{S}",
    f"/v1/projects/any/locations/us-east5/endpoints/4242{S}",
    f"/v1beta1/projects/any/locations/us-east5/endpoints/4242{S}",
    f"/v1/publishers/google/models/gemini-2.5-flash{S}",
    f"/v1beta1/publishers/google/models/gemini-2.5-flash{S}",
    f"/v1/models/gemini-2.5-flash{S}",
    f"/v1beta/models/gemini-2.5-flash{S}",
]


def key_location(where: str, key: str) -> tuple[dict, dict]:
    if where == "bearer":
        return {"Authorization": f"Bearer {key}"}, {}
    if where == "header":
        return {"x-goog-api-key": key}, {}
    return {}, {"key": key}


def post(
    gw, path, body=BODY, key=KEYS["team-a"], where="bearer", params=None, **kwargs
):
    headers, query = key_location(where, key) if key else ({}, {})
    headers = {**headers, **kwargs.pop("headers", {})}
    return requests.post(
        gw.url(path),
        json=body,
        headers=headers,
        params={**query, **(params or {})},
        timeout=10,
        **kwargs,
    )


def texts(chunks):
    return "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)


@pytest.mark.parametrize("where", ["bearer", "header", "query"])
@pytest.mark.parametrize("path", ROUTE_FORMS)
def test_every_route_streams_with_every_key_location(echo_gateway, path, where):
    resp = post(echo_gateway, path, where=where)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "application/json; charset=UTF-8"
    chunks = json.loads(resp.content)
    assert texts(chunks) == "one two three"
    assert len(chunks) == 3
    model = "endpoints/4242" if "endpoints" in path else "gemini-2.5-flash"
    assert {c["modelVersion"] for c in chunks} == {model}


def test_sse_framing_is_exactly_googles(echo_gateway):
    resp = post(echo_gateway, ROUTE_FORMS[-1], params={"alt": "sse"}, stream=True)
    raw = resp.raw.read()
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Accel-Buffering"] == "no"
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b""
    assert all(
        e.startswith(b"data: {") and b"\n" not in e and b"\r" not in e
        for e in events[:-1]
    )
    parsed = [json.loads(e.data) for e in sseclient.SSEClient(iter([raw])).events()]
    assert texts(parsed) == "one two three"
    last = parsed[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"] == {
        "promptTokenCount": 3,
        "candidatesTokenCount": 3,
        "totalTokenCount": 6,
        "trafficType": "ON_DEMAND",
    }
    assert last["responseId"] and last["createTime"].endswith("Z")


def test_json_array_framing_matches_vertex_bytes(echo_gateway):
    resp = post(echo_gateway, ROUTE_FORMS[0])
    raw = resp.content
    assert raw.startswith(b"[{") and raw.endswith(b"}\n]")
    assert raw.count(b"}\n,\r\n{") == 2
    gapic = post(
        echo_gateway, ROUTE_FORMS[5], params={"$alt": "json;enum-encoding=int"}
    )
    assert texts(json.loads(gapic.content)) == "one two three"


def test_unary_generate_content_returns_one_response(echo_gateway):
    resp = post(echo_gateway, "/v1beta/models/gemini-2.5-flash:generateContent")
    assert resp.status_code == 200
    body = resp.json()
    assert body["candidates"][0]["content"]["parts"][0]["text"] == "one two three"
    assert body["usageMetadata"]["totalTokenCount"] == 6


def test_legacy_seed_body_on_the_platform_route(echo_gateway):
    body = {
        "model": "gemini-pro",
        "instances": [{"prompt": "legacy prompt"}],
        "parameters": {"temperature": 0.7, "maxOutputTokens": 256},
        "voice": "Kore",
    }
    resp = post(
        echo_gateway,
        "/api/vertex-ai/v1/publishers/google/models/gemini-pro" + S,
        body=body,
    )
    assert resp.status_code == 200
    assert texts(json.loads(resp.content)) == "legacy prompt"


def assert_google_error(resp, code, status, *, platform=False, wrapped=False):
    assert resp.status_code == code
    assert resp.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert resp.headers["X-Request-Id"]
    body = json.loads(resp.content)
    if wrapped:
        assert isinstance(body, list) and len(body) == 1
        body = body[0]
    assert next(iter(body)) == "error"
    error = body["error"]
    assert error["code"] == code and error["status"] == status and error["message"]
    if platform:
        assert (
            body["success"] is False
            and body["code"] == str(code)
            and body["message"] == error["message"]
        )
    return error


@pytest.mark.parametrize("path", [ROUTE_FORMS[0], ROUTE_FORMS[-1]])
def test_missing_unknown_and_disabled_keys_are_401_alike(echo_gateway, path):
    platform, sse = path.startswith("/api/"), {"alt": "sse"}
    missing = assert_google_error(
        post(echo_gateway, path, key=None, params=sse),
        401,
        "UNAUTHENTICATED",
        platform=platform,
    )
    assert "Missing API key" in missing["message"]
    unknown = post(echo_gateway, path, key="sg_nope", params=sse)
    disabled = post(echo_gateway, path, key=KEYS["disabled"], params=sse)
    one = assert_google_error(unknown, 401, "UNAUTHENTICATED", platform=platform)
    two = assert_google_error(disabled, 401, "UNAUTHENTICATED", platform=platform)
    assert one["message"] == two["message"]
    assert "sg_nope" not in unknown.text


def test_errors_are_wrapped_in_json_array_mode_on_google_paths(echo_gateway):
    assert_google_error(
        post(echo_gateway, ROUTE_FORMS[-1], key=None),
        401,
        "UNAUTHENTICATED",
        wrapped=True,
    )
    assert_google_error(
        post(echo_gateway, ROUTE_FORMS[0], key=None),
        401,
        "UNAUTHENTICATED",
        platform=True,
    )


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (f"/v1beta/models/gemini-2.5-pro{S}", True),
        (f"/v1beta/models/gemini-3-pro{S}", False),
        (f"/api/v1/models/anthropic/claude-3{S}", False),
        (f"/v1/projects/p/locations/l/endpoints/42{S}", False),
        # gemini-pro is an alias of gemini-2.5-flash: the key is checked against what is called.
        (f"/api/vertex-ai/v1/publishers/google/models/gemini-pro{S}", True),
    ],
)
def test_model_allowlist_is_checked_on_the_model_called(echo_gateway, path, allowed):
    resp = post(echo_gateway, path, key=KEYS["limited"], where="header")
    if allowed:
        assert resp.status_code == 200, resp.text
    else:
        assert_google_error(
            resp,
            403,
            "PERMISSION_DENIED",
            platform=path.startswith("/api/"),
            wrapped=not path.startswith("/api/"),
        )


@pytest.mark.parametrize(
    ("body", "content_type", "code", "needle"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"contents": []}', "application/json", 400, "'contents'"),
        (
            b'{"instances": [{"prompt": 1}]}',
            "application/json",
            400,
            "'instances[0].prompt'",
        ),
        (b"<a/>", "application/xml", 415, "application/json"),
    ],
)
def test_bad_bodies_are_clear_4xx(echo_gateway, body, content_type, code, needle):
    resp = requests.post(
        echo_gateway.url(ROUTE_FORMS[-1] + "?alt=sse"),
        data=body,
        headers={"x-goog-api-key": KEYS["team-a"], "Content-Type": content_type},
        timeout=10,
    )
    error = assert_google_error(resp, code, "INVALID_ARGUMENT")
    assert needle in error["message"]


def test_oversized_body_is_413(echo_gateway):
    big = b'{"contents": [{"parts": [{"text": "' + b"a" * (10 * 1024 * 1024) + b'"}]}]}'
    resp = requests.post(
        echo_gateway.url(ROUTE_FORMS[-1] + "?alt=sse"),
        data=big,
        headers={"x-goog-api-key": KEYS["team-a"]},
        timeout=30,
    )
    assert_google_error(resp, 413, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/v1beta/models/a%2Fb{S}", 400),
        (f"/v1beta/models/..{S}", 400),
        (f"/v1beta//models/m{S}", 400),
        ("/v1beta/models/m:explode", 404),
        (f"/nowhere{S}", 404),
        ("/", 404),
    ],
)
def test_bad_paths_are_4xx_in_google_shape(echo_gateway, path, code):
    resp = requests.post(
        echo_gateway.url(path),
        json=BODY,
        headers={"x-goog-api-key": KEYS["team-a"]},
        timeout=10,
    )
    assert resp.status_code == code
    assert resp.json()["error"]["code"] == code


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow_post(echo_gateway, method):
    resp = requests.request(method, echo_gateway.url(ROUTE_FORMS[-1]), timeout=10)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
    assert resp.json()["error"]["code"] == 405


def test_cors_preflight_from_a_listed_origin(echo_gateway):
    resp = requests.options(
        echo_gateway.url(ROUTE_FORMS[-1]),
        headers={"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "x-goog-api-key" in resp.headers["Access-Control-Allow-Headers"]
    other = requests.options(
        echo_gateway.url(ROUTE_FORMS[-1]),
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert (
        other.status_code == 405 and "Access-Control-Allow-Origin" not in other.headers
    )
    streamed = post(
        echo_gateway,
        ROUTE_FORMS[-1],
        params={"alt": "sse"},
        headers={"Origin": CORS_ORIGIN},
    )
    assert streamed.status_code == 200
    assert streamed.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN


def test_one_log_line_per_request_without_keys_or_text(echo_gateway):
    resp = post(
        echo_gateway,
        ROUTE_FORMS[-1],
        params={"alt": "sse"},
        headers={"X-Cloud-Trace-Context": "a" * 32 + "/7;o=1"},
    )
    request_id = resp.headers["X-Request-Id"]
    entries = [e for e in echo_gateway.request_logs() if e["requestId"] == request_id]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["severity"] == "INFO"
    assert entry["keyId"] == "team-a" and entry["routeFamily"] == "gemini"
    assert (
        entry["model"] == "gemini-2.5-flash" and entry["httpRequest"]["status"] == 200
    )
    assert (
        entry["chunks"] == 3
        and entry["ttfbMs"] >= 0
        and entry["durationMs"] >= entry["ttfbMs"]
    )
    assert entry["usage"] == {
        "promptTokenCount": 3,
        "candidatesTokenCount": 3,
        "totalTokenCount": 6,
    }
    assert entry["logging.googleapis.com/trace"] == "a" * 32
    assert "one two three" not in json.dumps(entry)


def test_unreadable_keys_file_fails_closed(workdir):
    gw = start_gateway(
        workdir, "nokeys", {"STREAMGATE_KEYS": str(workdir / "missing.json")}
    )
    try:
        resp = post(gw, ROUTE_FORMS[-1], params={"alt": "sse"})
        assert_google_error(resp, 503, "UNAVAILABLE")
        assert any("failing closed" in e["message"] for e in gw.log_entries())
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def impatient_gateway(workdir, keys_file):
    env = {"STREAMGATE_KEYS": str(keys_file), "STREAMGATE_CLIENT_TIMEOUT_S": "1"}
    gw = start_gateway(workdir, "impatient", env)
    yield gw
    gw.stop()


def _send_slowly(
    gw, body: bytes, pause_s: float, stop_after: int | None = None
) -> bytes:
    head = (
        f"POST {ROUTE_FORMS[-1]}?alt=sse HTTP/1.1\r\nHost: x\r\nx-goog-api-key: {KEYS['team-a']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            for i in range(len(body) if stop_after is None else stop_after):
                sock.sendall(body[i : i + 1])
                time.sleep(pause_s)  # the client's own pace, not a synchronisation
        except OSError:
            pass  # the gateway answered and closed before the client was done
        reply = b""
        while not reply.endswith(b"}\n"):
            piece = sock.recv(65536)
            if not piece:
                break
            reply += piece
        return reply


@pytest.mark.parametrize(
    ("pause_s", "stop_after"),
    [(0.0, 5), (0.2, None)],
    ids=["body-stops-arriving", "body-trickles-past-the-deadline"],
)
def test_a_stalled_or_trickling_body_is_408_and_frees_the_thread(
    impatient_gateway, pause_s, stop_after
):
    reply = _send_slowly(
        impatient_gateway, json.dumps(BODY).encode(), pause_s, stop_after
    )
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408")
    assert b'"status": "DEADLINE_EXCEEDED"' in rest
    assert post(impatient_gateway, ROUTE_FORMS[-1]).status_code == 200
