"""A request and its response as plain values: the query, a bounded body, Google-shaped errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from lib.errors import BadRequest, GatewayError, PayloadTooLarge, RequestTimeout
from lib.framing import ARRAY


@dataclass(frozen=True)
class GatewayRequest:
    """A platform request as plain values; `headers` has lower-case names."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    read_body: Callable[[int], bytes]
    content_length: int | None = None


@dataclass(frozen=True)
class GatewayResponse:
    """Status and headers fixed before the first byte; `body` may stream."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    streamed: bool = False


def parse_query(raw: str) -> dict[str, str]:
    values = parse_qs(raw, keep_blank_values=True)
    for name in ("key", "alt", "$alt"):
        if len(set(values.get(name, []))) > 1:
            raise BadRequest(f"The query gives '{name}' more than once.")
    return {name: v[0] for name, v in values.items()}


def read_body(req: GatewayRequest, limit: int, timeout_s: float) -> bytes:
    """The whole body, refused early when too large, and bounded in time (slow senders)."""
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    chunks, size = [], 0
    deadline = time.monotonic() + timeout_s
    while size <= limit:
        chunk = req.read_body(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() > deadline:
            raise RequestTimeout(
                f"The request body took longer than {timeout_s:g} s to arrive."
            )
    if size > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    return b"".join(chunks)


def render_error(
    exc: GatewayError, path: str, framing: str, request_id: str, cors: Mapping[str, str]
) -> GatewayResponse:
    """Google's error shape; array-wrapped in JSON-array mode; platform fields on `/api/` mounts."""
    payload: object = exc.to_dict()
    if path.startswith("/api/"):
        payload = {
            **exc.to_dict(),
            "success": False,
            "code": str(exc.status_code),
            "message": exc.message,
        }
    elif framing == ARRAY:
        payload = [payload]
    body = json.dumps(payload, indent=2, ensure_ascii=False).encode() + b"\n"
    headers = {
        "Content-Type": "application/json; charset=UTF-8",
        "X-Request-Id": request_id,
        **exc.headers,
        **cors,
    }
    return GatewayResponse(exc.status_code, list(headers.items()), [body])
