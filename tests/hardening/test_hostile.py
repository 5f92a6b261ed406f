"""Hostile requests over real HTTP: each gets a clear 4xx (Google's shape whenever the gateway itself
answers), nothing crashes, no thread stays stuck, and the gateway keeps serving normally."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from lib.body import MAX_DEPTH
from tests.support.env import KEYS, SECRETS, UPSTREAM_KEY, gemini_env, start_gateway
from tests.support.fakes import FakeUpstream, Scenario
from tests.support.hardening import error_problem, leaked, record
from tests.support.procstats import proc_stats, settle, worker_pid
from tests.support.rawhttp import http_request, read_response, send_raw

PROMPT = "hostile-prompt: the lighthouse keeper's ledger (never logged)"
SECRETS.add(PROMPT)
VERB = "streamGenerateContent"
PATH = f"/v1beta/models/gemini-2.5-flash:{VERB}"
BODY = json.dumps(
    {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
).encode()
KEY, OTHER = KEYS["team-a"], KEYS["limited"]
MAX_BODY = 256 * 1024


def _post(
    target: str | bytes = PATH,
    headers: list[tuple[str, str | bytes]] | None = None,
    body: bytes = BODY,
    **kwargs,
) -> bytes:
    raw = target.encode() if isinstance(target, str) else target
    auth = [("x-goog-api-key", KEY)] if headers is None else headers
    return http_request("POST", raw, [*auth, ("Connection", "close")], body, **kwargs)


def _body(extra: bytes) -> bytes:
    return b'{"contents": [{"parts": [{"text": "x"}]}]' + extra + b"}"


def _deep(depth: int, opener: bytes = b'{"a": ', closer: bytes = b"}") -> bytes:
    inline = opener * depth + b"1" + closer * depth
    return b'{"contents": [{"parts": [{"text": "x", "inlineData": ' + inline + b"}]}]}"


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)


CHUNKED = [("x-goog-api-key", KEY), ("Transfer-Encoding", "chunked")]
INJECT = "X-Injected:%201"
# Each of these gets a 400 in Google's shape from the gateway itself.
BAD_BODIES = {
    "deep JSON nesting (100 000 levels)": _deep(100_000, b"[", b"]"),
    "huge integer (5 000 digits)": _body(b', "x": ' + b"9" * 5000),
    "huge float (1e999)": _body(b', "generationConfig": {"temperature": 1e999}'),
    "huge negative float (-1e999)": _body(b', "x": -1e999'),
    "NaN literal": _body(b', "x": NaN'),
    "invalid UTF-8 (0xFF)": b'{"contents": [{"parts": [{"text": "\xff"}]}]}',
    "overlong UTF-8 (C0 AF)": b'{"contents": [{"parts": [{"text": "\xc0\xaf"}]}]}',
    "unpaired surrogate escape": b'{"contents": [{"parts": [{"text": "a\\ud800"}]}]}',
}
BAD_KEYS = {
    "two x-goog-api-key headers, different keys": [
        ("x-goog-api-key", KEY),
        ("x-goog-api-key", OTHER),
    ],
    "two x-goog-api-key headers, same key": [
        ("x-goog-api-key", KEY),
        ("x-goog-api-key", KEY),
    ],
    "two Authorization bearers": [
        ("Authorization", f"Bearer {KEY}"),
        ("Authorization", f"Bearer {OTHER}"),
    ],
    "bearer and x-goog-api-key disagree": [
        ("Authorization", f"Bearer {KEY}"),
        ("x-goog-api-key", OTHER),
    ],
}
BAD_TARGETS = {
    "key in header and query, different keys": f"{PATH}?key={OTHER}",
    "look-alike CR LF (U+560A U+560D) in model": f"/v1beta/models/a%E5%98%8A%E5%98%8D{INJECT}:{VERB}",
    "CR LF in ?alt=": f"{PATH}?alt=sse%0D%0A{INJECT}",
}
# name -> (raw request, status, whether the gateway answers; else the HTTP server (uvicorn with
# httptools, or functions-framework's router) refuses it itself)
CASES: dict[str, tuple[bytes, int, bool]] = {
    **{name: (_post(body=body), 400, True) for name, body in BAD_BODIES.items()},
    **{name: (_post(headers=h), 400, True) for name, h in BAD_KEYS.items()},
    **{name: (_post(target), 400, True) for name, target in BAD_TARGETS.items()},
    "two ?key= in the query": (_post(f"{PATH}?key={KEY}&key={OTHER}", []), 400, True),
    "key in header and query, same key": (_post(f"{PATH}?key={KEY}"), 200, True),
    "malformed chunked body": (
        _post(headers=CHUNKED, body=b"zz\r\nabc\r\n0\r\n\r\n", content_length=-1),
        400,
        False,
    ),
    # functions-framework's ASGI router (`/{path:path}`) cannot match a path with a line break:
    # it answers a plain 404 itself, so nothing is injected and nothing reaches the upstream.
    "CR LF in model, percent-encoded": (
        _post(f"/v1beta/models/a%0D%0A{INJECT}:{VERB}"),
        404,
        False,
    ),
    "LF in model, percent-encoded": (
        _post(f"/v1beta/models/a%0A{INJECT}:{VERB}"),
        404,
        False,
    ),
    "chunked body over the limit": (
        _post(headers=CHUNKED, body=_chunked(b" " * (MAX_BODY + 1)), content_length=-1),
        413,
        True,
    ),
    "GET instead of POST": (http_request("GET", PATH.encode()), 405, True),
    "no key at all": (_post(headers=[]), 401, True),
    # httptools reads `POST /v1beta/models/a` as the request line (no version: HTTP/0.9) and the
    # rest as a header: the gateway sees no method suffix and answers 404, with nothing injected.
    "CR LF in model, raw": (
        _post(b"/v1beta/models/a\r\nX-Injected: 1:" + VERB.encode()),
        404,
        True,
    ),
    "CR in a header value": (
        _post(headers=[("x-goog-api-client", b"a\rX-Injected: 1")]),
        400,
        False,
    ),
    "space in a header name": (_post(headers=[("x goog", "1")]), 400, False),
    # httptools sets no header size limit (gunicorn's was 8190 bytes): the request is served as
    # any other, here refused for its missing key.
    "20 kB header": (_post(headers=[("x-goog-api-client", "a" * 20000)]), 401, True),
    "Content-Length not a number": (
        _post(headers=[("Content-Length", "1e3")], content_length=-1),
        400,
        False,
    ),
}


@pytest.fixture(scope="module")
def fake():
    """This module's own upstream, so no other test's scripts or traffic mix in."""
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def gateway(workdir, keys_file, fake):
    env = gemini_env(
        keys_file,
        fake,
        STREAMGATE_MAX_BODY_BYTES=str(MAX_BODY),
        STREAMGATE_IDLE_TIMEOUT_S="2",
        THREADS="16",
    )
    gw = start_gateway(workdir, "hostile", env)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def baseline(gateway):
    """The worker's pid and its sockets/threads after one ordinary request."""
    assert _ordinary(gateway).status_code == 200
    pid = worker_pid(gateway.proc.pid)
    return pid, proc_stats(pid)


def _ordinary(gateway) -> requests.Response:
    return requests.post(
        gateway.url(PATH), data=BODY, headers={"x-goog-api-key": KEY}, timeout=10
    )


def _check(name: str, resp, allowed: set[int], path: str = PATH) -> None:
    outcome = "Google error" if resp.from_gateway else "refused by the HTTP server"
    if resp.status == 200:
        outcome = "served"
    record("hostile", name=name, status=resp.status, outcome=outcome)
    record("leaks", where=f"hostile: {name}", hits=len(leaked([resp.body], SECRETS)))
    assert resp.status in allowed, (name, resp.status, resp.body[:300])
    assert "x-injected" not in resp.headers
    assert leaked([resp.body], SECRETS) == []
    if resp.status >= 400 and resp.from_gateway:
        assert error_problem(resp.status, resp.body, path) is None, resp.body


@pytest.mark.parametrize("name", CASES)
def test_hostile_request_gets_a_clear_4xx(gateway, baseline, fake, name):
    raw, status, by_gateway = CASES[name]
    start = len(fake.requests)
    resp = send_raw(gateway.port, raw)
    _check(name, resp, {status})
    assert resp.from_gateway == by_gateway
    for call in fake.requests[start:]:
        assert "injected" not in json.dumps(call).lower()


def test_a_1_gb_content_length_is_refused_before_the_body_arrives(gateway, baseline):
    for headers, status in (([("x-goog-api-key", KEY)], 413), ([], 401)):
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
            sock.sendall(
                _post(headers=headers, body=b'{"contents": [', content_length=10**9)
            )
            resp = read_response(sock)  # without sending the other 999 999 986 bytes
        _check(
            f"Content-Length 1 GB, {len(headers)} key(s), 14 bytes sent", resp, {status}
        )


def test_json_nesting_around_the_recursion_limit_never_fails_with_5xx(
    gateway, baseline
):
    statuses = set()
    with requests.Session() as session:
        # Around the gateway's own limit (lib.body.MAX_DEPTH), then around Python's recursion limit.
        for depth in [*range(MAX_DEPTH - 10, MAX_DEPTH + 1), *range(930, 1001, 2)]:
            resp = session.post(
                gateway.url(PATH),
                data=_deep(depth),
                headers={"x-goog-api-key": KEY},
                timeout=10,
            )
            statuses.add(resp.status_code)
            assert resp.status_code in (200, 400), (depth, resp.text)
            if resp.status_code == 400:
                assert "nested too deeply" in resp.json()[0]["error"]["message"]
    record(
        "hostile",
        name=f"JSON nesting {MAX_DEPTH - 10}..{MAX_DEPTH} and 930..1000 levels",
        status=sorted(statuses),
        outcome="no 5xx",
    )
    assert statuses == {200, 400}


def test_a_body_ending_early_is_a_400(gateway, baseline, fake):
    """uvicorn closes a connection on the client's half-close, so the 400 the gateway answers is
    logged but cannot be read; nothing reaches the upstream and the connection does not hang."""
    start = len(fake.requests)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
        sock.sendall(_post(body=BODY[:20], content_length=len(BODY)))
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65536) == b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [
            e for e in gateway.request_logs() if "client left" in e.get("error", "")
        ]
        if lines:
            break
        time.sleep(0.05)
    assert lines and lines[-1]["httpRequest"]["status"] == 400
    assert fake.requests[start:] == []
    record(
        "hostile",
        name="body shorter than Content-Length, then half-close",
        status=400,
        outcome="closed by the HTTP server",
    )


def test_a_slow_client_is_served_and_blocks_nobody(gateway, baseline):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
        sock.sendall(_post(body=b"", content_length=len(BODY)))
        for i in range(len(BODY)):
            sock.sendall(BODY[i : i + 1])
            time.sleep(0.005)  # pacing the client, bounded: about half a second in all
            if i == len(BODY) // 2:
                assert (
                    _ordinary(gateway).status_code == 200
                )  # meanwhile, others are served
        resp = read_response(sock)
    _check(f"slow client, {len(BODY)} body bytes one at a time", resp, {200})
    assert b"world" in resp.body


def test_a_client_that_stalls_mid_body_then_vanishes_frees_its_thread(
    gateway, baseline
):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
        sock.sendall(_post(body=BODY[:10], content_length=len(BODY)))
        assert (
            _ordinary(gateway).status_code == 200
        )  # the stalled one holds one thread only
    record(
        "hostile",
        name="client stalls mid-body, then vanishes",
        status="-",
        outcome="thread freed (see below)",
    )


def test_upstream_error_messages_reach_the_client_scrubbed(gateway, fake):
    message = f"API key {UPSTREAM_KEY} rejected by https://internal.example/v1beta?key={UPSTREAM_KEY}"
    fake.script(
        "leaky-model",
        Scenario(
            status=403,
            error={"code": 403, "message": message, "status": "PERMISSION_DENIED"},
        ),
    )
    target = "/v1beta/models/leaky-model:streamGenerateContent?alt=sse"
    resp = send_raw(gateway.port, _post(target))
    _check("upstream error quoting our upstream key and URL", resp, {403})
    assert b"internal.example" not in resp.body


def test_the_gateway_is_healthy_and_nothing_is_left_open_after_the_suite(
    gateway, baseline
):
    pid, before = baseline
    assert _ordinary(gateway).status_code == 200
    after = settle(pid, before.sockets, before.threads)
    record(
        "hostile",
        name="after the suite",
        status=200,
        outcome=f"sockets {before.sockets}->{after.sockets}, threads {before.threads}->{after.threads}",
    )
    assert after.sockets <= before.sockets + 5
    assert after.threads <= before.threads + 5
