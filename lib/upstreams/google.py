"""Google's upstreams: Vertex AI (pinned project and location, our ADC) and the Gemini API (our key)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import quote

from google.auth.exceptions import GoogleAuthError

from lib.config import Settings, UpstreamSpec
from lib.errors import NotServedHere, ServiceUnavailable
from lib.framing import SSE
from lib.googleapis import CLOUD_PLATFORM_SCOPE, USER_AGENT
from lib.process import shared
from lib.routes import COUNTING_VERBS, VERTEX_ONLY_VERBS
from lib.upstreams.base import UpstreamCall
from lib.upstreams.google_http import (
    MAX_ATTEMPTS,
    HttpStream,
    make_pool,
    post_with_retries,
)


class _VertexAuth:
    """Our Application Default Credentials, refreshed in a thread, one refresh for all waiting requests."""

    def __init__(self) -> None:
        self._credentials: Any = None
        self._request: Any = None
        # Made on first use, inside the serving event loop.
        self._lock: asyncio.Lock | None = None

    async def headers(self) -> dict[str, str]:
        """`Authorization` (and any quota project) with a valid token; google-auth deems a token
        invalid ~4 min before it expires, so a refresh happens before any request sees it expire."""
        credentials = self._credentials
        if credentials is None or not credentials.valid:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                try:
                    await asyncio.to_thread(self._refresh)
                except GoogleAuthError as exc:
                    raise ServiceUnavailable(
                        "The gateway could not obtain its credentials."
                    ) from exc
            credentials = self._credentials
        headers: dict[str, str] = {}
        credentials.apply(headers)
        return headers

    def _refresh(self) -> None:
        """Blocking: load ADC once, then refresh the token if it is (still) invalid."""
        if self._credentials is None:
            import google.auth
            import urllib3
            from google.auth.transport.urllib3 import Request

            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            self._request = Request(urllib3.PoolManager(retries=False))
            self._credentials = credentials
        if not self._credentials.valid:
            self._credentials.refresh(self._request)


def _seg(value: str) -> str:
    return quote(value, safe="")


# The label Cloud Billing's export splits Vertex spend by: the gateway key's id.
KEY_LABEL = "streamgate-key"
_NOT_IN_LABELS = re.compile(r"[^a-z0-9_-]")


def label_value(key_id: str) -> str:
    """A key id as a Vertex label value: lowercase letters, digits, `_` and `-`, at most 63."""
    return _NOT_IN_LABELS.sub("_", key_id.lower())[:63]


def _labelled(call: UpstreamCall) -> dict:
    """The body with the key's label merged over the client's own (which cannot override it)."""
    body = dict(call.body)
    if call.key_id:
        body["labels"] = {**body.get("labels", {}), KEY_LABEL: label_value(call.key_id)}
    return body


class _GoogleUpstream:
    """Shared request building: body once as JSON, allow-listed headers, pinned timeouts.

    `attempts` is how many times one call may be sent here: a list of upstreams sends each once and
    moves on to the next instead (lib/upstreams/failover.py).
    """

    def __init__(
        self, spec: UpstreamSpec, settings: Settings, attempts: int = MAX_ATTEMPTS
    ) -> None:
        self.name = spec.name
        self._spec = spec
        self._settings = settings
        self._attempts = attempts

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": USER_AGENT,
        }
        headers.update(call.headers)
        return headers

    async def _open(
        self,
        url: str,
        call: UpstreamCall,
        secrets: tuple[str, ...],
        headers: dict[str, str],
        body: dict,
    ) -> HttpStream:
        if call.framing == SSE:
            url += "?alt=sse"
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        s = self._settings
        pool = shared(
            "upstream-http",
            lambda: make_pool(s.connect_timeout_s, s.idle_timeout_s),
        )
        resp = await post_with_retries(
            pool, url, data, headers, s.idle_timeout_s, secrets, self._attempts
        )
        return HttpStream(resp, call.framing, self._settings.idle_timeout_s)


class VertexUpstream(_GoogleUpstream):
    """Vertex AI with our own credentials; project and location always from configuration."""

    def url(self, call: UpstreamCall) -> str:
        spec = self._spec
        if not spec.project:
            raise ServiceUnavailable(
                "The gateway's Vertex AI project is not configured."
            )
        base = f"{spec.base}/v1/projects/{_seg(spec.project)}/locations/{_seg(spec.location)}"
        target = call.target
        if target.endpoint:
            return f"{base}/endpoints/{_seg(target.endpoint)}:{target.verb}"
        return f"{base}/publishers/{_seg(target.publisher)}/models/{_seg(call.model)}:{target.verb}"

    async def open(self, call: UpstreamCall) -> HttpStream:
        url = self.url(call)
        auth = await shared("vertex-credentials", _VertexAuth).headers()
        headers = {**self._headers(call), **auth}
        secrets = (self._spec.project,)
        body = (
            dict(call.body) if call.target.verb in COUNTING_VERBS else _labelled(call)
        )
        return await self._open(url, call, secrets, headers, body)


class GeminiUpstream(_GoogleUpstream):
    """The Gemini API with our API key in a header (never in the URL)."""

    def __init__(
        self,
        spec: UpstreamSpec,
        settings: Settings,
        key: str,
        attempts: int = MAX_ATTEMPTS,
    ) -> None:
        super().__init__(spec, settings, attempts)
        self._key = key

    def url(self, call: UpstreamCall) -> str:
        target = call.target
        if target.endpoint:
            raise NotServedHere(
                "Tuned-model endpoints are served only by the Vertex AI upstream."
            )
        if target.verb in VERTEX_ONLY_VERBS:
            raise NotServedHere(
                f"':{target.verb}' is served only by the Vertex AI upstream."
            )
        if target.publisher != "google":
            raise NotServedHere(
                f"Publisher '{target.publisher}' is not available on the Gemini API; only 'google' is."
            )
        return f"{self._spec.base}/v1beta/models/{_seg(call.model)}:{target.verb}"

    async def open(self, call: UpstreamCall) -> HttpStream:
        url = self.url(call)
        key = self._key
        if not key:
            raise ServiceUnavailable("The gateway's Gemini API key is not configured.")
        headers = {**self._headers(call), "x-goog-api-key": key}
        # Vertex-only fields the Gemini API rejects as unknown.
        body = {k: v for k, v in call.body.items() if k != "labels"}
        return await self._open(url, call, (key,), headers, body)
