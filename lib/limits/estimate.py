"""How many tokens to reserve for a request before it is sent: its prompt estimate plus its output cap."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from lib.limits.policy import Limits

DEFAULT_OUTPUT_TOKENS = 4096
# Gemini counts an image, a video frame or an audio second as a few hundred tokens; a file part is not read.
MEDIA_PART_TOKENS = 258
BYTES_PER_TOKEN = 4
_CONFIGS = ("generationConfig", "generation_config")
_CAPS = ("maxOutputTokens", "max_output_tokens")
_CANDIDATES = ("candidateCount", "candidate_count")
_MEDIA = ("inlineData", "inline_data", "fileData", "file_data")


@dataclass(frozen=True)
class TokenEstimate:
    """The tokens a request may use: `prompt` (estimated) + `output` (its declared cap or the default)."""

    prompt: int
    output: int

    @property
    def total(self) -> int:
        return self.prompt + self.output


def _text_bytes(value: Any) -> int:
    return len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else 0


def _part_tokens(part: Any) -> float:
    if not isinstance(part, dict):
        return 0
    if any(name in part for name in _MEDIA):
        return MEDIA_PART_TOKENS
    size = _text_bytes(part.get("text"))
    for name in ("functionCall", "functionResponse", "function_call"):
        if name in part:
            size += len(json.dumps(part[name], default=str))
    return size / BYTES_PER_TOKEN


def _content_tokens(content: Any) -> float:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return 0
    return sum(_part_tokens(p) for p in content["parts"])


def prompt_tokens(body: dict[str, Any]) -> int:
    """Text bytes / 4 over contents and the system instruction, a fixed cost per media part, tools as JSON."""
    contents = body.get("contents")
    total = (
        sum(_content_tokens(c) for c in contents) if isinstance(contents, list) else 0
    )
    for name in ("systemInstruction", "system_instruction"):
        total += _content_tokens(body.get(name))
    if body.get("tools"):
        total += len(json.dumps(body["tools"], default=str)) / BYTES_PER_TOKEN
    return math.ceil(total)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) and value > 0 else None


def output_cap(body: dict[str, Any]) -> int | None:
    """The largest output cap the body declares (camelCase or snake_case), times its candidate count."""
    caps: list[int] = []
    candidates = 1
    for config in (body.get(name) for name in _CONFIGS):
        if not isinstance(config, dict):
            continue
        caps += [c for name in _CAPS if (c := _whole(config.get(name)))]
        counts = [c for name in _CANDIDATES if (c := _whole(config.get(name)))]
        candidates = max([candidates, *counts])
    return max(caps) * candidates if caps else None


def estimate_tokens(
    body: dict[str, Any],
    limits: Limits,
    default_output: int = DEFAULT_OUTPUT_TOKENS,
) -> TokenEstimate:
    """The reservation for `body`; without a declared cap, `default_output` capped by the smallest token limit."""
    output = output_cap(body)
    if output is None:
        smallest = limits.smallest_token_limit()
        output = default_output if smallest is None else min(default_output, smallest)
    return TokenEstimate(prompt_tokens(body), output)
