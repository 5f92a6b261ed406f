"""A request and its response as plain values: the query, a bounded body, Google-shaped errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from lib.errors import BadRequest, GatewayError, PayloadTooLarge, RequestTimeout
from lib.framing import ARRAY

# Writes one piece of a streamed body to the client (one write per chunk).
Write = Callable[[bytes], Awaitable[None]]
# Relays a whole streamed body through `Write`, ending it well-formed whatever happens;
# False when the client is gone and nothing more may be sent.
Relay = Callable[[Write], Awaitable[bool]]


@dataclass(frozen=True)
class GatewayRequest:
    """A platform request as plain values; `headers` has lower-case names; `body` yields its pieces."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: AsyncIterator[bytes]
    content_length: int | None = None
    # Completes when the client is gone (the ASGI `http.disconnect`); None where that cannot be known.
    wait_disconnect: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class GatewayResponse:
    """Status and headers fixed before the first byte; then `body`, or a `relay` that streams it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    relay: Relay | None = None


def parse_query(raw: str) -> dict[str, str]:
    values = parse_qs(raw, keep_blank_values=True)
    for name in ("key", "alt", "$alt"):
        if len(set(values.get(name, []))) > 1:
            raise BadRequest(f"The query gives '{name}' more than once.")
    return {name: v[0] for name, v in values.items()}


async def read_body(req: GatewayRequest, limit: int, timeout_s: float) -> bytes:
    """The whole body, refused before reading when too large, and bounded in time (slow senders)."""
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    pieces, size = [], 0
    try:
        async with asyncio.timeout(timeout_s or None):
            async for piece in req.body:
                pieces.append(piece)
                size += len(piece)
                if size > limit:
                    raise PayloadTooLarge(
                        f"The request body is larger than {limit} bytes."
                    )
    except TimeoutError:
        raise RequestTimeout(
            f"The request body took longer than {timeout_s:g} s to arrive."
        ) from None
    return b"".join(pieces)


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
    return GatewayResponse(exc.status_code, list(headers.items()), body)
