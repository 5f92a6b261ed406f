"""One request, one pass: route, key, body, upstream, relay. Platform-neutral values in and out."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from lib.auth import check_api_key, check_model_allowed, extract_api_key
from lib.body import build_request
from lib.config import Settings
from lib.errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
)
from lib.framing import ARRAY, CONTENT_TYPES, UNARY, choose_framing, is_error_event
from lib.keysource import open_key_reader
from lib.keystore import KeyStore
from lib.relay import relay_chunks
from lib.requestlog import RequestLog, configure_logging, trace_fields
from lib.routes import Target, normalize_path
from lib.secretenv import resolve_secret_env
from lib.upstream import FORWARD_REQUEST_HEADERS, Upstream, UpstreamCall, make_upstream

_CORS_ALLOW_HEADERS = (
    "authorization, content-type, x-goog-api-key, x-goog-api-client, x-server-timeout, "
    "x-goog-user-project, traceparent"
)


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


def _query(raw: str) -> dict[str, str]:
    values = parse_qs(raw, keep_blank_values=True)
    for name in ("key", "alt", "$alt"):
        if len(set(values.get(name, []))) > 1:
            raise BadRequest(f"The query gives '{name}' more than once.")
    return {name: v[0] for name, v in values.items()}


def _read_body(req: GatewayRequest, limit: int, timeout_s: float) -> bytes:
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


class Gateway:
    """The gateway for one process: settings, key store and upstream, built once."""

    def __init__(self, settings: Settings, keys: KeyStore, upstream: Upstream) -> None:
        self.settings = settings
        self.keys = keys
        self.upstream = upstream
        self.logger = configure_logging(settings.log_level)

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        keys = KeyStore(open_key_reader(settings.keys_source), settings.keys_ttl_s)
        return cls(settings, keys, make_upstream(settings))

    def handle(
        self, req: GatewayRequest, families: frozenset[str] | None = None
    ) -> GatewayResponse:
        """Serve one request; every failure is a Google-shaped error response."""
        log = RequestLog(uuid.uuid4().hex, req.method, req.path[:512])
        log.trace = trace_fields(req.headers, self.settings.vertex_project)
        framing = UNARY
        try:
            target = normalize_path(req.path, families)
            log.family, log.model = target.family, target.model_name
            cors = self._cors(req.headers)
            if req.method == "OPTIONS" and cors:
                return self._preflight(log, cors)
            if req.method != "POST":
                raise MethodNotAllowed("Use POST.", headers={"Allow": "POST"})
            query = _query(req.query)
            framing = choose_framing(query.get("alt"), query.get("$alt"), target.stream)
            return self._serve(req, target, query, framing, log, cors)
        except GatewayError as exc:
            return self._error(exc, req, framing, log)

    def _serve(
        self,
        req: GatewayRequest,
        target: Target,
        query: Mapping[str, str],
        framing: str,
        log: RequestLog,
        cors: dict[str, str],
    ) -> GatewayResponse:
        presented = extract_api_key(req.headers, query.get("key"))
        key = check_api_key(self.keys.current(), presented)
        log.key_id = key.id
        model = self.settings.model_aliases.get(target.model, target.model)
        log.model = model or target.model_name
        check_model_allowed(key, log.model)
        raw = _read_body(
            req, self.settings.max_body_bytes, self.settings.client_timeout_s
        )
        body = build_request(raw, req.headers.get("content-type", ""), target)
        forwarded = {
            h: req.headers[h] for h in FORWARD_REQUEST_HEADERS if h in req.headers
        }
        call = UpstreamCall(target, model, body, framing, forwarded)
        stream = self.upstream.open(call)
        events = stream.events()
        try:
            first = next(
                events, None
            )  # a failure before any chunk still gets its own status
            if first is not None and is_error_event(first):
                raise _error_from_event(first)
        except BaseException:
            stream.close()
            raise
        headers = [
            ("Content-Type", CONTENT_TYPES[framing]),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
            ("X-Request-Id", log.request_id),
            *stream.headers.items(),
            *cors.items(),
        ]
        log.status = 200
        chained = _chain(first, events)
        if framing == UNARY:
            return self._unary(stream, chained, headers, log)
        body = relay_chunks(stream, chained, framing, log, self.logger)
        return GatewayResponse(200, headers, body, streamed=True)

    def _unary(
        self,
        stream,
        events: Iterator[bytes],
        headers: list[tuple[str, str]],
        log: RequestLog,
    ) -> GatewayResponse:
        body = b"".join(relay_chunks(stream, events, UNARY, log, self.logger))
        return GatewayResponse(200, headers, [body])

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
        return GatewayResponse(204, list(headers.items()), [])

    def _error(
        self, exc: GatewayError, req: GatewayRequest, framing: str, log: RequestLog
    ) -> GatewayResponse:
        log.status, log.outcome, log.error = exc.status_code, "rejected", exc.message
        log.emit(self.logger)
        return render_error(
            exc, req.path, framing, log.request_id, self._cors(req.headers)
        )


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


def _chain(first: bytes | None, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first is not None:
        yield first
    yield from rest


def _error_from_event(event: bytes) -> GatewayError:
    error = json.loads(event)["error"]
    code = error.get("code") if isinstance(error.get("code"), int) else 502
    return GatewayError(str(error.get("message", "The upstream failed.")), code)


_gateway: Gateway | None = None
_lock = threading.Lock()


def handle_request(
    req: GatewayRequest, env: Mapping[str, str], families: frozenset[str] | None = None
) -> GatewayResponse:
    """Serve `req` with the process's gateway, built from `env` on first use (not at import)."""
    global _gateway
    if _gateway is None:
        with _lock:
            try:
                _gateway = _gateway or Gateway.from_settings(
                    Settings.from_env(resolve_secret_env(env))
                )
            except ValueError as exc:
                configure_logging().error("configuration error: %s", exc)
                error = ServiceUnavailable("The gateway is misconfigured; see its log.")
                return render_error(error, req.path, UNARY, uuid.uuid4().hex, {})
    return _gateway.handle(req, families)
