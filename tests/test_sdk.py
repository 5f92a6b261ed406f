"""The real google-genai SDK, unchanged but for its base URL and key, against the gateway."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials

from tests.support.env import KEYS
from tests.support.fakes import Scenario, chunk
from tests.support.paths import FIXTURES

KEY = KEYS["team-a"]


def gemini_client(gw, version: str | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=gw.url("/"), api_version=version)
    return genai.Client(api_key=KEY, http_options=options)


def vertex_client(gw, *, express: bool = False) -> genai.Client:
    options = types.HttpOptions(base_url=gw.url("/"))
    if express:
        return genai.Client(vertexai=True, api_key=KEY, http_options=options)
    return genai.Client(
        vertexai=True,
        project="client-project",
        location="us-central1",
        credentials=Credentials(token=KEY),
        http_options=options,
    )


def clients(gemini_gateway, vertex_gateway):
    return {
        "gemini-v1": gemini_client(gemini_gateway),
        "gemini-v1beta": gemini_client(gemini_gateway, "v1beta"),
        "vertex-express": vertex_client(vertex_gateway, express=True),
        "vertex-project": vertex_client(vertex_gateway),
    }


@pytest.mark.parametrize(
    "mode", ["gemini-v1", "gemini-v1beta", "vertex-express", "vertex-project"]
)
def test_generate_content_stream_and_unary(
    mode, gemini_gateway, vertex_gateway, fake_upstream
):
    model = f"sdk-{mode}"
    chunks = [
        chunk("Hello", model=model),
        chunk(" from", model=model),
        chunk(" upstream", last=True, model=model),
    ]
    fake_upstream.script(model, Scenario(chunks=chunks))
    client = clients(gemini_gateway, vertex_gateway)[mode]
    stream = list(client.models.generate_content_stream(model=model, contents="hi"))
    assert "".join(r.text for r in stream) == "Hello from upstream"
    assert stream[-1].usage_metadata.total_token_count == 6
    assert stream[-1].candidates[0].finish_reason == types.FinishReason.STOP
    unary = client.models.generate_content(model=model, contents="hi")
    assert unary.text == " upstream" and unary.usage_metadata.total_token_count == 6
    seen = fake_upstream.last_request(model)
    assert KEY not in str(seen["headers"])


def test_thought_signatures_and_function_calls_survive(gemini_gateway, fake_upstream):
    raw = (FIXTURES / "gemini-api_sse_function-call-thought-signature.sse").read_bytes()
    fake_upstream.script("sdk-tools", Scenario(raw_body=raw))
    client = gemini_client(
        gemini_gateway
    )  # keep a reference: a collected client closes
    stream = list(
        client.models.generate_content_stream(model="sdk-tools", contents="hi")
    )
    parts = [p for r in stream for p in r.candidates[0].content.parts]
    assert [p.thought for p in parts[:2]] == [True, True]
    call = parts[-1]
    assert call.function_call.name == "now" and call.thought_signature
    assert stream[-1].usage_metadata.thoughts_token_count


def test_sdk_sees_errors_as_its_own_exceptions(gemini_gateway, fake_upstream):
    options = types.HttpOptions(base_url=gemini_gateway.url("/"))
    bad = genai.Client(api_key="sg_wrong", http_options=options)
    with pytest.raises(errors.ClientError) as info:
        list(bad.models.generate_content_stream(model="any", contents="hi"))
    assert info.value.code == 401
    fake_upstream.script(
        "sdk-drop", Scenario(chunks=[chunk("a"), chunk("b")], drop_after=1)
    )
    client = gemini_client(gemini_gateway)
    seen = []
    with pytest.raises(errors.ServerError) as info:
        for response in client.models.generate_content_stream(
            model="sdk-drop", contents="hi"
        ):
            seen.append(response.text)
    assert seen == ["a"] and info.value.code == 502
