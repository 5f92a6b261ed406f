"""Builds one instance (settings, key cache, upstream, limiter, gateway): the only place that picks implementations."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping

from lib.config import Settings, UpstreamSpec
from lib.errors import ServiceUnavailable
from lib.exchange import GatewayRequest, GatewayResponse, render_error
from lib.framing import UNARY
from lib.gateway import Gateway
from lib.keys.cache import KeyCache
from lib.keys.chooser import open_key_reader
from lib.limits.chooser import open_limiter
from lib.process import peek, shared
from lib.requestlog import configure_logging
from lib.secretenv import resolve_secret_env, upstream_key
from lib.upstreams.base import RETRY_BUDGET_S, Upstream
from lib.upstreams.failover import UpstreamList


def make_upstream(
    spec: UpstreamSpec, settings: Settings, env: Mapping[str, str], lone: bool
) -> Upstream:
    """One upstream of the list; Google's modules load only when one is listed."""
    if spec.kind == "echo":
        from lib.upstreams.echo import EchoUpstream

        return EchoUpstream(settings.echo_delay_ms / 1000)
    from lib.upstreams.google import GeminiUpstream, VertexUpstream
    from lib.upstreams.google_http import MAX_ATTEMPTS

    attempts = MAX_ATTEMPTS if lone else 1
    if spec.kind == "vertex":
        return VertexUpstream(spec, settings, attempts)
    return GeminiUpstream(spec, settings, upstream_key(spec, env), attempts)


def make_upstreams(settings: Settings, env: Mapping[str, str]) -> UpstreamList:
    """`STREAMGATE_UPSTREAMS` in order. A lone upstream retries a call itself (MAX_ATTEMPTS); in a
    list of several, each is asked once, the next is the retry, and each may connect for at most
    its share of the retry budget."""
    specs, lone = settings.upstreams, len(settings.upstreams) == 1
    if not lone:
        # A connection that never completes (a blackholed region) may not spend the whole budget:
        # each upstream gets its share, so the next is still asked.
        share = RETRY_BUDGET_S / len(specs)
        connect_s = min(settings.connect_timeout_s or share, share)
        settings = dataclasses.replace(settings, connect_timeout_s=connect_s)
    return UpstreamList([make_upstream(s, settings, env, lone) for s in specs])


def build_gateway(env: Mapping[str, str]) -> Gateway:
    """Settings from `env` (secrets resolved), then the key cache, the upstreams and the gateway."""
    env = resolve_secret_env(env)
    settings = Settings.from_env(env)
    keys = KeyCache(open_key_reader(settings.keys_source), settings.keys_ttl_s)
    return Gateway(settings, keys, make_upstreams(settings, env), open_limiter(env))


_building: asyncio.Lock | None = None


async def current_gateway(env: Mapping[str, str]) -> Gateway:
    """The process's gateway, built from `env` on first use (not at import), in a thread: building may
    read secrets, which must not block the event loop. Raises ValueError when misconfigured."""
    global _building
    gateway = peek("gateway")
    if gateway is not None:
        return gateway
    if _building is None:
        _building = asyncio.Lock()
    async with _building:
        gateway = peek("gateway")
        if gateway is None:
            built = await asyncio.to_thread(build_gateway, env)
            gateway = shared("gateway", lambda: built)
    return gateway


async def handle_request(
    req: GatewayRequest, env: Mapping[str, str], families: frozenset[str] | None = None
) -> GatewayResponse:
    """Serve `req` with the process's gateway; a misconfiguration is a 503 that names no secret."""
    try:
        gateway = await current_gateway(env)
    except ValueError as exc:
        configure_logging().error("configuration error: %s", exc)
        error = ServiceUnavailable("The gateway is misconfigured; see its log.")
        return render_error(error, req.path, UNARY, uuid.uuid4().hex, {})
    return await gateway.handle(req, families)


def begin_shutdown() -> None:
    """SIGTERM: open streams get `STREAMGATE_SHUTDOWN_GRACE_S`, then end with an UNAVAILABLE element."""
    gateway = peek("gateway")
    if gateway is not None:
        gateway.streams.begin_shutdown(gateway.settings.shutdown_grace_s)
