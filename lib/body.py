"""Request bodies: parse once, validate, and translate the legacy platform body."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from lib.errors import BadRequest, UnsupportedMediaType
from lib.legacy import translate_legacy
from lib.routes import Target

ROLES = frozenset({"user", "model", "function"})
# Field -> JSON type it must have, for GenerateContentRequest (camelCase and proto snake_case).
_FIELD_TYPES: dict[str, type] = {
    "contents": list,
    "systemInstruction": dict,
    "generationConfig": dict,
    "safetySettings": list,
    "tools": list,
    "toolConfig": dict,
    "labels": dict,
    "cachedContent": str,
}
_SNAKE = {
    "system_instruction": "systemInstruction",
    "generation_config": "generationConfig",
    "safety_settings": "safetySettings",
    "tool_config": "toolConfig",
    "cached_content": "cachedContent",
}
LEGACY_FIELDS = ("model", "instances", "parameters", "voice")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_TYPE_NAMES = {list: "an array", dict: "an object", str: "a string"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # `1e999` would parse as inf and go upstream as `Infinity`, which is not JSON.
    value = float(text)
    if math.isinf(value):
        raise ValueError("number too large")
    return value


def _check_encodable(text: str, body: Any) -> None:
    # A lone `\ud800` escape parses to a str that cannot be sent upstream as UTF-8.
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise BadRequest("The request body has an unpaired surrogate.") from None
        except RecursionError:
            raise BadRequest("The request body is nested too deeply.") from None


# Protobuf's JSON parser refuses deeper nesting anyway.
MAX_DEPTH = 100


def _check_depth(body: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH, walking iteratively (no recursion to exhaust)."""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(
                f"The request body is nested too deeply (over {MAX_DEPTH} levels)."
            )
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, (dict, list)):
            stack.extend(
                (child, depth + 1)
                for child in children
                if isinstance(child, (dict, list))
            )


def parse_json(raw: bytes, content_type: str) -> dict[str, Any]:
    """The body as a JSON object, or a 4xx that says what is wrong with it."""
    media = content_type.split(";")[0].strip().lower()
    is_json = media in ("", "application/json") or media.endswith("+json")
    try:
        text = raw.decode("utf-8")
        body = json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError:
        raise BadRequest("The request body is not valid UTF-8.") from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None
    except ValueError as exc:
        if not is_json and media not in (
            "application/x-www-form-urlencoded",
            "text/plain",
        ):
            raise UnsupportedMediaType(
                "Send the body as 'Content-Type: application/json'."
            ) from None
        reason = (
            str(exc).split(":")[0] if "digits" not in str(exc) else "number too large"
        )
        raise BadRequest(f"The request body is not valid JSON ({reason}).") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    _check_depth(body)
    _check_encodable(text, body)
    return body


def _check_contents(contents: Any, field: str = "contents") -> None:
    if not isinstance(contents, list) or not contents:
        raise BadRequest(f"'{field}' must be a non-empty array.")
    for i, content in enumerate(contents):
        where = f"{field}[{i}]"
        if not isinstance(content, dict):
            raise BadRequest(f"'{where}' must be an object.")
        role = content.get("role")
        if role is not None and (not isinstance(role, str) or role not in ROLES):
            raise BadRequest(f"'{where}.role' must be one of user, model, function.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise BadRequest(f"'{where}.parts' must be a non-empty array.")
        if not all(isinstance(p, dict) for p in parts):
            raise BadRequest(f"'{where}.parts' must hold objects.")


def validate_request(body: dict[str, Any]) -> dict[str, Any]:
    """Check a GenerateContentRequest's known fields; valid bodies pass through untouched."""
    for snake, camel in _SNAKE.items():
        if snake in body and camel in body:
            raise BadRequest(f"Give '{camel}' or '{snake}', not both.")
    for name, value in body.items():
        expected = _FIELD_TYPES.get(_SNAKE.get(name, name))
        if expected is not None and not isinstance(value, expected):
            raise BadRequest(f"'{name}' must be {_JSON_TYPE_NAMES[expected]}.")
    if "contents" not in body:
        inner = body.get("generateContentRequest")
        if isinstance(inner, dict) and "contents" in inner:
            # countTokens on the Gemini API may wrap a whole GenerateContentRequest.
            _check_contents(inner["contents"], "generateContentRequest.contents")
            return body
        raise BadRequest("The request needs 'contents' (or the legacy 'instances').")
    _check_contents(body["contents"])
    labels = body.get("labels", {})
    if not all(isinstance(v, str) for v in labels.values()):
        raise BadRequest("'labels' must map strings to strings.")
    return body


def build_request(raw: bytes, content_type: str, target: Target) -> dict[str, Any]:
    """Parse, translate a legacy body if needed, and validate: the one body sent upstream."""
    body = parse_json(raw, content_type)
    if any(field in body for field in LEGACY_FIELDS):
        body = translate_legacy(body, target)
    return validate_request(body)
