"""The embedded echo upstream: a realistic GenerateContentResponse stream built from the request."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from lib.framing import UNARY
from lib.upstreams.base import UpstreamCall

_WORDS = re.compile(r"\S+\s*")


def _texts(content: Any) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        # E.g. a `systemInstruction` that is not a Content.
        return []
    return [
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]


def _last_user_text(body: Mapping[str, Any]) -> str:
    for content in reversed(body.get("contents", [])):
        if content.get("role", "user") == "user" and _texts(content):
            return " ".join(_texts(content))
    return "(nothing to echo)"


def _prompt_tokens(body: Mapping[str, Any]) -> int:
    contents = [*body.get("contents", []), body.get("systemInstruction")]
    return sum(len(_WORDS.findall(t)) for c in contents for t in _texts(c))


def _dump(chunk: dict[str, Any]) -> bytes:
    return json.dumps(chunk, separators=(",", ": "), ensure_ascii=False).encode()


class EchoStream:
    """Echoes the last user text back, a word per chunk, `delay_s` apart."""

    headers: Mapping[str, str] = {}

    def __init__(self, call: UpstreamCall, delay_s: float) -> None:
        self._call = call
        self._delay = delay_s
        self._closed = False

    def _chunk(self, text: str, last: bool, prompt: int, words: int) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": [{"text": text}]}
        }
        usage: dict[str, Any] = {"trafficType": "ON_DEMAND"}
        if last:
            candidate["finishReason"] = "STOP"
            usage = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": words,
                "totalTokenCount": prompt + words,
                "trafficType": "ON_DEMAND",
            }
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self._call.model or self._call.target.model_name,
            "createTime": self._created,
            "responseId": self._id,
        }

    async def chunks(self) -> AsyncIterator[bytes]:
        self._created = (
            datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        )
        self._id = uuid.uuid4().hex[:24]
        words = _WORDS.findall(_last_user_text(self._call.body)) or [
            "(nothing to echo)"
        ]
        prompt = _prompt_tokens(self._call.body)
        verb = self._call.target.verb
        if verb == "countTokens":
            yield _dump({"totalTokens": prompt})
            return
        if verb == "computeTokens":
            tokens = [base64.b64encode(w.strip().encode()).decode() for w in words]
            yield _dump(
                {
                    "tokensInfo": [
                        {
                            "tokens": tokens,
                            "tokenIds": list(range(len(tokens))),
                            "role": "user",
                        }
                    ]
                }
            )
            return
        if self._call.framing == UNARY:
            yield _dump(self._chunk("".join(words), True, prompt, len(words)))
            return
        for i, word in enumerate(words):
            if i and self._delay:
                await asyncio.sleep(self._delay)
            if self._closed:
                return
            yield _dump(self._chunk(word, i == len(words) - 1, prompt, len(words)))

    async def close(self) -> None:
        self._closed = True


class EchoUpstream:
    """An upstream that needs no cloud: the same interface as Vertex and the Gemini API."""

    name = "echo"

    def __init__(self, delay_s: float) -> None:
        self._delay = delay_s

    async def open(self, call: UpstreamCall) -> EchoStream:
        return EchoStream(call, self._delay)
