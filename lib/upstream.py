"""The upstream interface: one call in, a stream of chunks (JSON documents) out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lib.config import Settings
from lib.routes import Target

# Request headers a client may pass on to the upstream; everything else stays here.
FORWARD_REQUEST_HEADERS = ("x-goog-api-client", "x-server-timeout", "traceparent")
# Upstream response headers a client gets back.
FORWARD_RESPONSE_HEADERS = ("content-disposition", "server-timing")


@dataclass(frozen=True)
class UpstreamCall:
    """What to ask the upstream for: the target, the model after aliasing, the body, the framing."""

    target: Target
    model: str
    body: Mapping[str, Any]
    framing: str
    headers: Mapping[str, str] = field(default_factory=dict)


class UpstreamStream(Protocol):
    """An open 200 response: its chunks in order, then closed (also on early exit)."""

    headers: Mapping[str, str]

    def events(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class Upstream(Protocol):
    """Opens a stream, or raises GatewayError carrying the upstream's status and error."""

    def open(self, call: UpstreamCall) -> UpstreamStream: ...


def make_upstream(settings: Settings) -> Upstream:
    """The upstream named by `STREAMGATE_UPSTREAM`."""
    if settings.upstream == "echo":
        from lib.echo import EchoUpstream

        return EchoUpstream(settings.echo_delay_ms / 1000)
    from lib.google import GeminiUpstream, VertexUpstream

    if settings.upstream == "vertex":
        return VertexUpstream(settings)
    return GeminiUpstream(settings)
