"""What both Lambda paths' tests send and read: the model and endpoint they script, a call per framing."""

from __future__ import annotations

import json
import re

from lib.routes import Route

# Model and endpoint names only these tests script on the shared fake upstream.
MODEL = "gemini-lambda-test"
ENDPOINT = "7770001"
PROMPT = "Tell me a story"
VALUES = {
    "publisher": "google",
    "model": MODEL,
    "project": "client-proj",
    "location": "europe-west4",
    "endpoint": ENDPOINT,
}
# (verb, query) -> the framing the client gets back.
CALLS = [
    ("streamGenerateContent", "alt=sse", "sse"),
    ("streamGenerateContent", "", "array"),
    ("generateContent", "", "unary"),
]


def route_path(route: Route, verb: str) -> str:
    """A concrete path for `route`, e.g. `/v1beta/models/gemini-lambda-test:generateContent`."""
    return (
        re.sub(r"\{(\w+)\}", lambda m: VALUES[m.group(1)], route.template) + f":{verb}"
    )


def texts(framing: str, body: bytes) -> tuple[str, int]:
    """The model text a client reads from `body` and the number of chunks, checking the framing."""
    if framing == "sse":
        assert body.endswith(b"\r\n\r\n")
        events = body.split(b"\r\n\r\n")[:-1]
        assert all(e.startswith(b"data: ") and b"\n" not in e for e in events)
        chunks = [json.loads(e[6:]) for e in events]
    elif framing == "array":
        assert body.startswith(b"[") and body.endswith(b"]")
        chunks = json.loads(body)
    else:
        chunks = [json.loads(body)]
    parts = (c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    return "".join(parts), len(chunks)
