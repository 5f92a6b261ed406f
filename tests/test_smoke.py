"""The first thing a new user does: stream from the echo upstream with the seed curl body."""

from __future__ import annotations

import json

import requests

from tests.support.env import KEYS

SEED_PATH = (
    "/api/vertex-ai/v1/publishers/google/models/gemini-pro:streamGenerateContent"
)
SEED_BODY = {
    "model": "gemini-pro",
    "contents": [{"role": "user", "parts": [{"text": "Tell me a story"}]}],
    "parameters": {"temperature": 0.7, "maxOutputTokens": 256},
}


def test_seed_example_streams_a_json_array(echo_gateway):
    resp = requests.post(
        echo_gateway.url(SEED_PATH),
        json=SEED_BODY,
        headers={"Authorization": f"Bearer {KEYS['team-a']}"},
        timeout=10,
    )
    assert resp.status_code == 200
    assert resp.headers["Transfer-Encoding"] == "chunked"
    chunks = json.loads(resp.content)
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "Tell me a story"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 4
