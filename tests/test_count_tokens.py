"""countTokens on every route form and computeTokens on Vertex's: keys, allowlists, what reaches the upstream."""

from __future__ import annotations

import json
import zlib

import pytest
import requests
from google import genai
from google.genai import types
from google.oauth2.credentials import Credentials

from tests.support.env import KEYS, PINNED_LOCATION, PINNED_PROJECT, UPSTREAM_KEY

MODEL = "gemini-2.5-flash"
FORMS = {
    "platform": f"/api/vertex-ai/v1/publishers/google/models/{MODEL}",
    "platform alias": f"/api/v1/models/google/{MODEL}",
    "vertex project": f"/v1/projects/any/locations/us-east5/publishers/google/models/{MODEL}",
    "vertex endpoint": "/v1beta1/projects/any/locations/us-east5/endpoints/4242",
    "vertex express": f"/v1/publishers/google/models/{MODEL}",
    "gemini v1": f"/v1/models/{MODEL}",
    "gemini v1beta": f"/v1beta/models/{MODEL}",
}
BODY = {"contents": [{"role": "user", "parts": [{"text": "three little words"}]}]}


def _post(gw, path: str, key: str = KEYS["team-a"], body: dict = BODY):
    return requests.post(
        gw.url(path), json=body, headers={"x-goog-api-key": key}, timeout=15
    )


@pytest.mark.parametrize("form", FORMS)
def test_count_tokens_answers_on_every_form(echo_gateway, form):
    resp = _post(echo_gateway, FORMS[form] + ":countTokens")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"totalTokens": 3}


@pytest.mark.parametrize("form", [f for f in FORMS if not f.startswith("gemini")])
def test_compute_tokens_answers_on_the_vertex_forms(echo_gateway, form):
    resp = _post(echo_gateway, FORMS[form] + ":computeTokens")
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["tokensInfo"][0]["tokens"]) == 3


@pytest.mark.parametrize("form", ["gemini v1", "gemini v1beta"])
def test_compute_tokens_is_not_a_gemini_api_method(echo_gateway, form):
    assert _post(echo_gateway, FORMS[form] + ":computeTokens").status_code == 404


@pytest.mark.parametrize("verb", ["countTokens", "computeTokens"])
def test_counting_needs_a_key_and_keeps_the_allowlist(echo_gateway, verb):
    path = FORMS["vertex project"].replace(MODEL, "gemini-3-pro") + f":{verb}"
    assert _post(echo_gateway, path, key="sg_wrong").status_code == 401
    assert _post(echo_gateway, path, key=KEYS["limited"]).status_code == 403
    assert _post(echo_gateway, path, key=KEYS["disabled"]).status_code == 401


def _counting_cases() -> list[tuple[str, str]]:
    return [
        (form, verb)
        for form in FORMS
        for verb in ("countTokens", "computeTokens")
        if verb == "countTokens" or not form.startswith("gemini")
    ]


@pytest.mark.parametrize(("form", "verb"), _counting_cases())
def test_every_form_counts_through_fake_vertex_pinned_and_without_the_key(
    vertex_gateway, fake_upstream, form, verb
):
    model = f"c-{verb[:5]}-{form.replace(' ', '-')}"
    endpoint = str(zlib.crc32(model.encode()))
    path = FORMS[form].replace(MODEL, model).replace("4242", endpoint)
    resp = _post(vertex_gateway, f"{path}:{verb}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"totalTokens": 7}  # the fake's answer, relayed
    name = endpoint if "endpoints" in path else model
    seen = fake_upstream.last_request(name)
    pinned = f"/v1/projects/{PINNED_PROJECT}/locations/{PINNED_LOCATION}"
    target = (
        f"endpoints/{endpoint}"
        if name == endpoint
        else f"publishers/google/models/{model}"
    )
    assert seen["path"] == f"{pinned}/{target}:{verb}"
    assert KEYS["team-a"] not in json.dumps(seen)
    assert seen["headers"]["Authorization"].startswith("Bearer ya29.")


@pytest.mark.parametrize("form", [f for f in FORMS if f != "vertex endpoint"])
def test_every_form_counts_through_the_fake_gemini_api_with_our_key(
    gemini_gateway, fake_upstream, form
):
    model = f"c-gemini-{form.replace(' ', '-')}"
    resp = _post(gemini_gateway, FORMS[form].replace(MODEL, model) + ":countTokens")
    assert resp.status_code == 200, resp.text
    seen = fake_upstream.last_request(model)
    assert seen["path"] == f"/v1beta/models/{model}:countTokens"
    assert seen["headers"]["X-Goog-Api-Key"] == UPSTREAM_KEY
    assert KEYS["team-a"] not in json.dumps(seen)


@pytest.mark.parametrize(("form", "verb"), _counting_cases())
def test_the_allowlist_holds_before_the_fake_upstream_is_asked(
    vertex_gateway, fake_upstream, form, verb
):
    model = f"denied-{verb[:5]}-{form.replace(' ', '-')}"
    before = len(fake_upstream.requests)
    path = FORMS[form].replace(MODEL, model)
    assert (
        _post(vertex_gateway, f"{path}:{verb}", key=KEYS["limited"]).status_code == 403
    )
    assert len(fake_upstream.requests) == before


def test_count_tokens_reaches_vertex_pinned_without_the_key_or_labels(
    vertex_gateway, fake_upstream
):
    body = {**BODY, "labels": {"team": "a"}}
    path = FORMS["vertex project"].replace(MODEL, "count-1") + ":countTokens"
    resp = _post(vertex_gateway, path, body=body)
    assert resp.status_code == 200 and resp.json() == {"totalTokens": 7}
    seen = fake_upstream.last_request("count-1")
    assert seen["path"] == (
        f"/v1/projects/{PINNED_PROJECT}/locations/{PINNED_LOCATION}"
        "/publishers/google/models/count-1:countTokens"
    )
    assert KEYS["team-a"] not in json.dumps(seen)
    # countTokens takes no labels on Vertex: the body goes as the client sent it.
    assert seen["body"] == body


def test_count_tokens_reaches_the_gemini_api_with_our_key(
    gemini_gateway, fake_upstream
):
    resp = _post(gemini_gateway, "/v1beta/models/count-2:countTokens")
    assert resp.status_code == 200
    seen = fake_upstream.last_request("count-2")
    assert seen["path"] == "/v1beta/models/count-2:countTokens"
    assert seen["headers"]["X-Goog-Api-Key"] == UPSTREAM_KEY
    assert KEYS["team-a"] not in json.dumps(seen)


def test_the_sdk_counts_tokens_in_gemini_and_vertex_mode(echo_gateway):
    options = types.HttpOptions(base_url=echo_gateway.url("/"))
    gemini = genai.Client(api_key=KEYS["team-a"], http_options=options)
    vertex = genai.Client(
        vertexai=True,
        project="client-project",
        location="us-central1",
        credentials=Credentials(token=KEYS["team-a"]),
        http_options=options,
    )
    for client in (gemini, vertex):
        counted = client.models.count_tokens(model=MODEL, contents="three little words")
        assert counted.total_tokens == 3
