"""Spec-driven fuzzing: schemathesis cases from the OpenAPI spec that `tools.openapi` generates from the
route table, sent to the gateway on 127.0.0.1. Never a 5xx, every 4xx in Google's error shape (with
the platform fields on `/api/` mounts), every 200 a well-formed stream, no hang, no secret echoed.

`HARDENING_SCALE=20` (or `python -m tools.hardening`) runs a larger campaign than CI's.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.support.env import (
    CORS_ORIGIN,
    KEYS,
    SECRETS,
    start_gateway,
    vertex_env,
)
from tests.support.fakes import FakeUpstream
from tests.support.hardening import (
    classify_stream,
    error_problem,
    leaked,
    record,
    scaled,
)
from tests.support.rawhttp import unroutable_target
from tools.openapi import build_spec

# Path values that route, so a share of the fuzz cases gets past routing into keys and bodies.
ROUTABLE: dict[str, tuple[str, ...]] = {
    "project": ("pinned-proj", "p-1"),
    "location": ("us-central1", "global"),
    "publisher": ("google", "anthropic"),
    "model_action": (
        "gemini-2.5-flash:streamGenerateContent",
        "gemini-pro:generateContent",
        "gemini-2.5-pro:streamGenerateContent",
    ),
    "endpoint_action": ("1234567890:streamGenerateContent",),
}


def fuzz_spec() -> dict[str, Any]:
    """`tools.openapi.build_spec()`, with free-form objects capped at 4 keys and arrays at 3 items.

    Every body that fits the capped spec also fits the real one; uncapped, hypothesis spends
    ~0.15 s building each random nested `generationConfig`, ten times the request itself.
    """
    spec = build_spec()
    spec["definitions"] = copy.deepcopy(spec["definitions"])
    _cap(spec["definitions"])
    return spec


def _cap(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object":
            node.setdefault("maxProperties", 4)
        if node.get("type") == "array":
            node.setdefault("maxItems", 3)
        for value in node.values():
            _cap(value)
    elif isinstance(node, list):
        for value in node:
            _cap(value)


PROMPT = "fuzz-prompt: seven otters audit the weir (never logged)"
SECRETS.update({PROMPT, "ya29.fake-"})  # our prompt; the fake's access tokens
SCHEMA = schemathesis.openapi.from_dict(fuzz_spec())
CASES = st.one_of(
    SCHEMA.as_strategy(GenerationMode.POSITIVE),
    SCHEMA.as_strategy(GenerationMode.NEGATIVE),
)
# Where the key goes (headers, query): valid, restricted, disabled, unknown, none.
AUTH = st.sampled_from(
    [
        ({"x-goog-api-key": KEYS["team-a"]}, {}),
        ({"Authorization": f"Bearer {KEYS['team-a']}"}, {}),
        ({}, {"key": KEYS["team-a"]}),
        ({"x-goog-api-key": KEYS["limited"]}, {}),
        ({"x-goog-api-key": KEYS["disabled"]}, {}),
        ({"x-goog-api-key": "sg_unknown-key-EEEEEEEEEEEEEEEEEEEEEEEE"}, {}),
        ({}, {}),
    ]
)


def fuzz_problem(resp) -> str | None:
    """What is wrong with one fuzz response (None if nothing)."""
    path = urlsplit(resp.request.url).path
    status, body = resp.status_code, resp.content
    if status >= 500:
        sent = (resp.request.body or b"")[:300]
        return f"{status} for {resp.request.method} {path} with body {sent!r}"
    if (
        status == 404
        and unroutable_target(path.encode("latin-1"))
        and body == b"Not Found"
    ):
        # functions-framework's ASGI router cannot match a path with a line break (see
        # tests/support/rawhttp.py): its own plain 404, with nothing injected or sent upstream.
        return None
    if status >= 400:
        problem = error_problem(status, body, path)
        if problem is None and leaked([body], SECRETS):
            problem = "a secret is echoed in the error body"
        return (
            None if problem is None else f"{status} {path}: {problem}: {body[:200]!r}"
        )
    if status == 204:
        return None if resp.request.method == "OPTIONS" else "204 for a POST"
    if status != 200:
        return f"unexpected status {status}"
    ctype = resp.headers.get("content-type", [""])[0]
    if path.endswith(":generateContent"):
        ok = isinstance(json.loads(body), dict)
        return None if ok else "generateContent did not answer one JSON object"
    outcome, detail = classify_stream(status, ctype, body, path)
    return None if outcome == "complete" else f"broken stream: {detail}"


def steer(case, data) -> None:
    """Make a share of the cases routable, and some bodies' `contents` valid, to fuzz deeper."""
    names = [n for n in case.path_parameters or {} if n in ROUTABLE]
    keep = data.draw(
        st.sampled_from(["", "", "", None, *names]), label="fuzzed parameter"
    )
    if keep is not None:  # all routable but `keep` ("" = all of them)
        for name in names:
            if name != keep:
                case.path_parameters[name] = data.draw(st.sampled_from(ROUTABLE[name]))
    if isinstance(case.body, dict) and data.draw(st.booleans(), label="valid contents"):
        case.body["contents"] = [{"role": "user", "parts": [{"text": PROMPT}]}]


@pytest.fixture(scope="module")
def vertex_fuzz_gateway(workdir, keys_file, service_account_file):
    """A Vertex gateway with its own fake upstream, so no other test's scripts answer for it."""
    fake = FakeUpstream().start()
    env = vertex_env(
        keys_file, fake, service_account_file, STREAMGATE_CORS_ORIGINS=CORS_ORIGIN
    )
    gw = start_gateway(workdir, "fuzz-vertex", env)
    yield gw
    gw.stop()
    fake.stop()


@pytest.mark.parametrize("upstream", ["echo", "vertex"])
def test_fuzzed_requests_never_get_5xx_or_a_malformed_error(request, upstream):
    gateway = request.getfixturevalue(
        "echo_gateway" if upstream == "echo" else "vertex_fuzz_gateway"
    )
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    @settings(
        max_examples=scaled(150),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=CASES, data=st.data())
    def check(case, data) -> None:
        steer(case, data)
        headers, params = data.draw(AUTH, label="auth")
        if data.draw(st.booleans(), label="cors"):
            headers = {**headers, "Origin": CORS_ORIGIN}
        resp = case.call(
            base_url=gateway.url(""), headers=headers, params=params, timeout=15
        )
        statuses[resp.status_code] += 1
        problem = fuzz_problem(resp)
        if problem:
            failures.append(problem)
        assert problem is None, problem

    try:
        check()
    finally:
        record(
            "fuzz",
            upstream=upstream,
            cases=sum(statuses.values()),
            failures=len(failures),
            statuses=dict(statuses),
        )
        record("leaks", where="fuzz", hits=sum("secret" in f for f in failures))
    assert statuses[200] > 0, "no fuzz case got past validation"


# Bodies the larger campaign (`HARDENING_SCALE=10`) found answering 500; kept as fixed cases.
FOUND_BY_FUZZING = [
    ({"contents": [{"parts": False, "role": []}]}, 400),
    ({"contents": [{"role": {"a": 1}, "parts": [{"text": "x"}]}]}, 400),
    (
        {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "systemInstruction": {"parts": False},
        },
        200,
    ),
    (
        {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "systemInstruction": {"parts": ["not an object"]},
        },
        200,
    ),
]


@pytest.mark.parametrize(("body", "status"), FOUND_BY_FUZZING)
def test_bodies_the_fuzzer_found_get_a_clean_answer(echo_gateway, body, status):
    path = "/api/vertex-ai/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    resp = requests.post(
        echo_gateway.url(path),
        json=body,
        headers={"x-goog-api-key": KEYS["team-a"]},
        timeout=10,
    )
    assert resp.status_code == status, resp.text
    ctype = resp.headers["content-type"]
    if status == 200:
        assert classify_stream(200, ctype, resp.content, path)[0] == "complete"
    else:
        assert error_problem(status, resp.content, path) is None
