"""The per-request pass: route, key, body, upstream, relay. Platform-neutral values in and out."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from lib.auth import (
    check_api_key,
    check_model_allowed,
    check_not_expired,
    extract_api_key,
)
from lib.body import build_request
from lib.config import Settings
from lib.errors import GatewayError, MethodNotAllowed
from lib.exchange import (
    GatewayRequest,
    GatewayResponse,
    Write,
    parse_query,
    read_body,
    render_error,
)
from lib.framing import CONTENT_TYPES, UNARY, choose_framing
from lib.keys.cache import KeyCache
from lib.keys.document import ApiKey
from lib.limits.limiter import Limiter
from lib.relay import Relayed, Spend, relay_stream, relay_unary
from lib.requestlog import RequestLog, configure_logging, trace_fields
from lib.routes import COUNTING_VERBS, Target, normalize_path
from lib.streams import OpenStreams
from lib.upstreams.base import FORWARD_REQUEST_HEADERS, UpstreamCall
from lib.upstreams.failover import UpstreamList

# What a call that failed before its first byte is charged: nothing was generated.
NOTHING_GENERATED = {"promptTokenCount": 0, "candidatesTokenCount": 0}
_CORS_ALLOW_HEADERS = (
    "authorization, content-type, x-goog-api-key, x-goog-api-client, x-server-timeout, "
    "x-goog-user-project, traceparent"
)


class Gateway:
    """One instance's gateway: its settings, key cache, upstreams and limiter, given by `lib.instance`."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyCache,
        upstreams: UpstreamList,
        limiter: Limiter,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.upstreams = upstreams
        self.limiter = limiter
        self.streams = OpenStreams(
            settings.request_timeout_s, settings.client_timeout_s
        )
        self.logger = configure_logging(settings.log_level)

    async def handle(
        self, req: GatewayRequest, families: frozenset[str] | None = None
    ) -> GatewayResponse:
        """Serve one request; every failure is a Google-shaped error response."""
        log = RequestLog(uuid.uuid4().hex, req.method, req.path[:512])
        log.trace = trace_fields(req.headers, self.settings.trace_project)
        framing = UNARY
        try:
            target = normalize_path(req.path, families)
            log.family, log.model = target.family, target.model_name
            cors = self._cors(req.headers)
            if req.method == "OPTIONS" and cors:
                return self._preflight(log, cors)
            if req.method != "POST":
                raise MethodNotAllowed("Use POST.", headers={"Allow": "POST"})
            query = parse_query(req.query)
            framing = choose_framing(query.get("alt"), query.get("$alt"), target.stream)
            return await self._serve(req, target, query, framing, log, cors)
        except GatewayError as exc:
            return self._error(exc, req, framing, log)

    async def _serve(
        self,
        req: GatewayRequest,
        target: Target,
        query: Mapping[str, str],
        framing: str,
        log: RequestLog,
        cors: dict[str, str],
    ) -> GatewayResponse:
        key, model = await self._authorize(req, target, query, log)
        raw = await read_body(
            req, self.settings.max_body_bytes, self.settings.client_timeout_s
        )
        body = build_request(raw, req.headers.get("content-type", ""), target)
        forwarded = {
            h: req.headers[h] for h in FORWARD_REQUEST_HEADERS if h in req.headers
        }
        limiter = self.limiter
        if target.verb in COUNTING_VERBS:
            admission = await limiter.admit_count(key.id, key.limits, log.model)
        else:
            estimate = limiter.estimate(body, key.limits)
            admission = await limiter.admit(key.id, key.limits, log.model, estimate)
        call = UpstreamCall(target, model, body, framing, forwarded, key.id)
        try:
            opened = await self.upstreams.start(call, log.upstreams)
        except BaseException:
            # Refused or failed before a byte: the upstream generated nothing to charge.
            await limiter.settle(admission, NOTHING_GENERATED)
            raise
        stream = opened.stream
        headers = [
            ("Content-Type", CONTENT_TYPES[framing]),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
            ("X-Request-Id", log.request_id),
            *stream.headers.items(),
            *admission.headers().items(),
            *cors.items(),
        ]
        log.status = 200
        spend = Spend(
            settle=lambda usage: limiter.settle(admission, usage),
            renew=(lambda: limiter.renew(admission)) if admission.lease() else None,
            renew_every_s=limiter.lease_ttl_ms / 3000,
        )
        relayed = Relayed(stream, opened.first, opened.rest, framing, log, spend)
        if framing == UNARY:
            body = await relay_unary(relayed, self.logger)
            return GatewayResponse(200, headers, body)

        async def relay(write: Write) -> bool:
            return await relay_stream(relayed, write, req, self.streams, self.logger)

        return GatewayResponse(200, headers, relay=relay)

    async def _authorize(
        self,
        req: GatewayRequest,
        target: Target,
        query: Mapping[str, str],
        log: RequestLog,
    ) -> tuple[ApiKey, str]:
        """The key and the model to call (after aliasing), once the key may call it."""
        presented = extract_api_key(req.headers, query.get("key"))
        key = check_api_key(await self.keys.current(), presented)
        log.key_id = key.id
        check_not_expired(key, datetime.now(UTC))
        model = self.settings.model_aliases.get(target.model, target.model)
        log.model = model or target.model_name
        check_model_allowed(key, log.model)
        return key, model

    def _cors(self, headers: Mapping[str, str]) -> dict[str, str]:
        origin = headers.get("origin", "")
        allowed = self.settings.cors_origins
        if not origin or not (origin in allowed or "*" in allowed):
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": "X-Request-Id, Retry-After",
            "Vary": "Origin",
        }

    def _preflight(self, log: RequestLog, cors: dict[str, str]) -> GatewayResponse:
        log.status = 204
        log.emit(self.logger)
        headers = {
            **cors,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": _CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": "3600",
            "X-Request-Id": log.request_id,
        }
        return GatewayResponse(204, list(headers.items()))

    def _error(
        self, exc: GatewayError, req: GatewayRequest, framing: str, log: RequestLog
    ) -> GatewayResponse:
        log.status, log.outcome, log.error = exc.status_code, "rejected", exc.message
        log.emit(self.logger)
        return render_error(
            exc, req.path, framing, log.request_id, self._cors(req.headers)
        )
