"""Trace context: `X-Cloud-Trace-Context` and W3C `traceparent` reach the request's log line as Cloud
Logging's trace fields, and every response names its log line with an `X-Request-Id` header."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.support.env import (
    CORS_ORIGIN,
    KEYS,
    PINNED_LOCATION,
    PINNED_PROJECT,
    SECRETS,
)
from tests.support.hardening import record

PROMPT = "trace-prompt: the owl files its expense report (never logged)"
SECRETS.add(PROMPT)
BODY = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
GEMINI_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
VERTEX_PATH = (
    f"/v1/projects/{PINNED_PROJECT}/locations/{PINNED_LOCATION}"
    "/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
)
TRACE = "105445aa7843bc8bf206b12000100000"
W3C_TRACE, W3C_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{W3C_TRACE}-{W3C_SPAN}-01"
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def post(gw, path: str, headers: dict[str, str], **kwargs) -> requests.Response:
    headers = {"x-goog-api-key": KEYS["team-a"], **headers}
    return requests.post(gw.url(path), json=BODY, headers=headers, timeout=10, **kwargs)


def log_line(gw, request_id: str, timeout_s: float = 10.0) -> dict:
    """The request's log line, once written (a stream's line follows its last byte)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in gw.request_logs():
            if entry.get("requestId") == request_id:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no log line has requestId {request_id}")


@pytest.mark.parametrize(
    ("headers", "trace", "span"),
    [
        ({"X-Cloud-Trace-Context": f"{TRACE}/1;o=1"}, TRACE, "1"),
        ({"X-Cloud-Trace-Context": TRACE}, TRACE, None),
        ({"traceparent": TRACEPARENT}, W3C_TRACE, W3C_SPAN),
        (
            {"X-Cloud-Trace-Context": f"{TRACE}/7", "traceparent": TRACEPARENT},
            TRACE,
            "7",
        ),
    ],
    ids=["cloud-trace", "cloud-trace-no-span", "traceparent", "cloud-trace-wins"],
)
def test_trace_headers_reach_the_log_line(vertex_gateway, headers, trace, span):
    resp = post(vertex_gateway, VERTEX_PATH, headers)
    assert resp.status_code == 200
    line = log_line(vertex_gateway, resp.headers["X-Request-Id"])
    expected = f"projects/{PINNED_PROJECT}/traces/{trace}"
    assert line["logging.googleapis.com/trace"] == expected
    assert line.get("logging.googleapis.com/spanId") == span
    record("trace", checks=1)


def test_without_a_configured_project_the_trace_is_the_bare_id(echo_gateway):
    resp = post(echo_gateway, GEMINI_PATH, {"X-Cloud-Trace-Context": f"{TRACE}/3"})
    line = log_line(echo_gateway, resp.headers["X-Request-Id"])
    assert line["logging.googleapis.com/trace"] == TRACE
    assert line["logging.googleapis.com/spanId"] == "3"
    record("trace", checks=1)


def test_traceparent_is_passed_on_to_the_upstream(vertex_gateway, fake_upstream):
    start = len(fake_upstream.requests)
    assert post(vertex_gateway, VERTEX_PATH, {"traceparent": TRACEPARENT}).ok
    [call] = fake_upstream.requests[start:]
    assert call["headers"]["Traceparent"] == TRACEPARENT
    record("trace", checks=1)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Cloud-Trace-Context": "not-a-trace"},
        {"X-Cloud-Trace-Context": "105445aa"},
        {"traceparent": "00-zzzz-00f067aa0ba902b7-01"},
        {"traceparent": f"00-{W3C_TRACE.upper()}-{W3C_SPAN}-01"},
        {"traceparent": f"{TRACEPARENT}-extra"},
    ],
)
def test_malformed_trace_headers_are_ignored(echo_gateway, headers):
    resp = post(echo_gateway, GEMINI_PATH, headers)
    assert resp.status_code == 200
    line = log_line(echo_gateway, resp.headers["X-Request-Id"])
    assert "logging.googleapis.com/trace" not in line
    record("trace", checks=1)


def test_error_responses_carry_the_trace_too(echo_gateway):
    resp = requests.post(
        echo_gateway.url(GEMINI_PATH),
        json=BODY,
        headers={"X-Cloud-Trace-Context": f"{TRACE}/9"},
        timeout=10,
    )
    assert resp.status_code == 401
    line = log_line(echo_gateway, resp.headers["X-Request-Id"])
    assert line["httpRequest"]["status"] == 401
    assert line["logging.googleapis.com/trace"] == TRACE
    record("trace", checks=1)


def test_every_response_names_its_log_line_with_a_fresh_request_id(echo_gateway):
    preflight = {"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST"}
    responses = [
        post(echo_gateway, GEMINI_PATH, {}),
        post(echo_gateway, GEMINI_PATH, {}, params={"alt": "sse"}),
        post(echo_gateway, GEMINI_PATH, {"x-goog-api-key": "sg_wrong"}),
        post(echo_gateway, "/v1beta/models/gemini-2.5-flash:embedContent", {}),
        post(echo_gateway, "/v1beta/models/bad%2Fmodel:streamGenerateContent", {}),
        requests.options(echo_gateway.url(GEMINI_PATH), headers=preflight, timeout=10),
    ]
    ids = [r.headers["X-Request-Id"] for r in responses]
    assert [r.status_code for r in responses] == [200, 200, 401, 404, 400, 204]
    assert all(REQUEST_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    for resp, request_id in zip(responses, ids):
        line = log_line(echo_gateway, request_id)
        assert line["httpRequest"]["status"] == resp.status_code
    record("trace", checks=len(ids))
