"""The upstream contract: one call in, a stream of chunks out.

Each chunk is one Google `GenerateContentResponse` as a complete JSON document (bytes); a failure the
upstream reports is Google's `{"error": {...}}` object, as a chunk or as a GatewayError raised by
`open` (before the first chunk) or by the iteration (after it). The gateway waits for the first chunk
to fix the response status, and the relay frames each chunk as one write; both depend on this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lib.routes import Target

# Request headers a client may pass on to the upstream; everything else stays here.
FORWARD_REQUEST_HEADERS = ("x-goog-api-client", "x-server-timeout", "traceparent")
# How long one call may spend on retries and on other upstreams before its first byte.
RETRY_BUDGET_S = 8.0
# Upstream response headers a client gets back.
FORWARD_RESPONSE_HEADERS = ("content-disposition", "server-timing")


@dataclass(frozen=True)
class UpstreamCall:
    """What to ask the upstream for: the target, the model after aliasing, the body, the framing,
    and the id of the gateway key it is for (Vertex bills it as a label)."""

    target: Target
    model: str
    body: Mapping[str, Any]
    framing: str
    headers: Mapping[str, str] = field(default_factory=dict)
    key_id: str = ""


class UpstreamStream(Protocol):
    """An open 200 response: its chunks in order, then closed (also on early exit).

    `close()` may be awaited at any point, more than once, from the relay's `finally`: it releases the
    upstream connection (dropping it if the stream was not read to its end) and never raises.
    """

    headers: Mapping[str, str]

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class Upstream(Protocol):
    """Opens a stream, or raises GatewayError carrying the upstream's status and error; NotServedHere
    when it cannot serve the call at all (before contacting anyone). `name` is how logs call it."""

    name: str

    async def open(self, call: UpstreamCall) -> UpstreamStream: ...
