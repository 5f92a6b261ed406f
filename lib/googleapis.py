"""What every Google API client here shares: the OAuth scope, our user agent, and Google's error body."""

from __future__ import annotations

import json
from typing import Any

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
USER_AGENT = "streamgate/0.1"


def parse_error_body(raw: bytes | str) -> dict[str, Any]:
    """The `error` object of a Google error body (`{"error": {...}}` or `[{"error": {...}}]`); {} if none."""
    try:
        doc = json.loads(raw)
        doc = doc[0] if isinstance(doc, list) and doc else doc
        error = doc["error"]
    except (ValueError, KeyError, TypeError, IndexError):
        return {}
    return error if isinstance(error, dict) else {}


def error_message(error: dict[str, Any]) -> str:
    """The error's `message` when it is a string, else ''."""
    message = error.get("message")
    return message if isinstance(message, str) else ""
