"""The hardening knobs and verdicts: scale, result records, the leak scan, and what a client must see.

`python -m tools.hardening` sets `HARDENING_SCALE` and `HARDENING_RESULTS` and reads what the tests
`record()`; in CI neither is set, so the tests run at scale 1 and record nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

SCALE_ENV = "HARDENING_SCALE"
RESULTS_ENV = "HARDENING_RESULTS"


def scaled(n: int) -> int:
    """`n` times `HARDENING_SCALE` (1 in CI), at least 1."""
    return max(1, round(n * float(os.environ.get(SCALE_ENV) or 1)))


def record(section: str, **values: Any) -> None:
    """Append one result line for the report; a no-op unless `HARDENING_RESULTS` names a file."""
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"section": section, **values}, default=str) + "\n")


def leaked(texts: Iterable[str | bytes], secrets: Iterable[str]) -> list[str]:
    """The secrets (first 12 characters only) found in any of `texts`."""
    blobs = [t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts]
    return sorted({s[:12] for s in secrets for blob in blobs if s and s in blob})


# --- what a client must see ---------------------------------------------------------------------


def error_problem(status: int, body: bytes, path: str) -> str | None:
    """Why `body` is not Google's error shape for `status` (platform fields on `/api/`), or None."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "body is not JSON"
    platform = path.startswith("/api/")
    if isinstance(doc, list) and len(doc) == 1 and not platform:
        doc = doc[0]  # JSON-array framing wraps a pre-stream error, as Google does
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return "no 'error' object"
    if type(error.get("code")) is not int or error["code"] != status:
        return f"error.code {error.get('code')!r} is not the HTTP status {status}"
    if not isinstance(error.get("message"), str) or not isinstance(
        error.get("status"), str
    ):
        return "error.message / error.status are not strings"
    if platform and (
        doc.get("success") is not False
        or doc.get("code") != str(status)
        or doc.get("message") != error["message"]
    ):
        return "platform fields (success, code, message) missing"
    return None


def parse_stream(content_type: str, body: bytes) -> list[Any]:
    """The chunks of a 200 body: SSE `data:` events or the JSON array; ValueError if malformed."""
    if content_type.startswith("text/event-stream"):
        if body and not body.endswith(b"\r\n\r\n"):
            raise ValueError("the last SSE event is cut off")
        events = []
        for block in body.split(b"\r\n\r\n")[:-1]:
            if not block.startswith(b"data: "):
                raise ValueError("an SSE block is not a data event")
            events.append(json.loads(block[6:]))
        return events
    doc = json.loads(body)
    if isinstance(doc, list):
        return doc
    raise ValueError("the stream is not a JSON array")


def _error_element(event: Any) -> bool:
    error = event.get("error") if isinstance(event, dict) else None
    return (
        isinstance(error, dict)
        and type(error.get("code")) is int
        and isinstance(error.get("message"), str)
        and isinstance(error.get("status"), str)
    )


def classify_stream(
    status: int, content_type: str, body: bytes, path: str, chunks: int | None = None
) -> tuple[str, str]:
    """('complete' | 'errored' | 'lost', detail): errored means a well-formed Google error."""
    if status != 200:
        problem = error_problem(status, body, path)
        return ("errored", f"HTTP {status}") if problem is None else ("lost", problem)
    try:
        events = parse_stream(content_type, body)
    except ValueError as exc:
        return "lost", f"malformed stream: {exc}"
    if events and _error_element(events[-1]):
        return "errored", f"mid-stream {events[-1]['error']['code']}"
    last = events[-1] if events and isinstance(events[-1], dict) else {}
    finish = (last.get("candidates") or [{}])[0].get("finishReason")
    if finish != "STOP" or any("error" in e for e in events):
        return "lost", "ended without a finishReason or a final error"
    if chunks is not None and len(events) != chunks:
        return "lost", f"{len(events)} chunks, expected {chunks}"
    return "complete", ""
