"""Builds one instance (settings, key cache, upstream, gateway): the only place that picks implementations."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from lib.config import Settings
from lib.errors import ServiceUnavailable
from lib.exchange import GatewayRequest, GatewayResponse, render_error
from lib.framing import UNARY
from lib.gateway import Gateway
from lib.keys.cache import KeyCache
from lib.keys.chooser import open_key_reader
from lib.process import shared
from lib.requestlog import configure_logging
from lib.secretenv import resolve_secret_env
from lib.upstreams.base import Upstream


def make_upstream(settings: Settings) -> Upstream:
    """The upstream named by `STREAMGATE_UPSTREAM`; Google's modules load only when chosen."""
    if settings.upstream == "echo":
        from lib.upstreams.echo import EchoUpstream

        return EchoUpstream(settings.echo_delay_ms / 1000)
    from lib.upstreams.google import GeminiUpstream, VertexUpstream

    if settings.upstream == "vertex":
        return VertexUpstream(settings)
    return GeminiUpstream(settings)


def build_gateway(env: Mapping[str, str]) -> Gateway:
    """Settings from `env` (secrets resolved), then the key cache, the upstream and the gateway."""
    settings = Settings.from_env(resolve_secret_env(env))
    keys = KeyCache(open_key_reader(settings.keys_source), settings.keys_ttl_s)
    return Gateway(settings, keys, make_upstream(settings))


def handle_request(
    req: GatewayRequest, env: Mapping[str, str], families: frozenset[str] | None = None
) -> GatewayResponse:
    """Serve `req` with the process's gateway, built from `env` on first use (not at import)."""
    try:
        gateway = shared("gateway", lambda: build_gateway(env))
    except ValueError as exc:
        configure_logging().error("configuration error: %s", exc)
        error = ServiceUnavailable("The gateway is misconfigured; see its log.")
        return render_error(error, req.path, UNARY, uuid.uuid4().hex, {})
    return gateway.handle(req, families)
