"""Google's upstreams: Vertex AI (pinned project and location, our ADC) and the Gemini API (our key)."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

import urllib3

from lib.config import Settings
from lib.errors import BadRequest, ServiceUnavailable
from lib.framing import SSE
from lib.googleapis import CLOUD_PLATFORM_SCOPE, USER_AGENT
from lib.process import shared
from lib.upstreams.base import UpstreamCall
from lib.upstreams.google_http import HttpStream, post_with_retries

_POOL_SIZE = 1024


def _pool() -> urllib3.PoolManager:
    # urllib3 directly: requests' per-call environment lookups and merging cost ~0.5 ms a request.
    return urllib3.PoolManager(
        num_pools=4, maxsize=_POOL_SIZE, block=False, retries=False
    )


class _VertexAuth:
    """Our Application Default Credentials over a pool, refreshed by one thread at a time."""

    def __init__(self) -> None:
        import google.auth
        from google.auth.transport.urllib3 import AuthorizedHttp, Request

        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        self._http = AuthorizedHttp(credentials, http=_pool())
        self._request = Request(self._http.http)
        self._lock = threading.Lock()

    def ready(self) -> Any:
        """The authorized pool, its token valid (google-auth deems it invalid ~4 min before expiry)."""
        from google.auth.exceptions import GoogleAuthError

        credentials = self._http.credentials
        if not credentials.valid:
            # One refresh at a time: concurrent requests would otherwise each fetch a token.
            with self._lock:
                try:
                    if not credentials.valid:
                        credentials.refresh(self._request)
                except GoogleAuthError as exc:
                    raise ServiceUnavailable(
                        "The gateway could not obtain its credentials."
                    ) from exc
        return self._http


def _seg(value: str) -> str:
    return quote(value, safe="")


class _GoogleUpstream:
    """Shared request building: body once as JSON, allow-listed headers, pinned timeouts."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeouts = (settings.connect_timeout_s, settings.idle_timeout_s)

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": USER_AGENT,
        }
        headers.update(call.headers)
        return headers

    def _open(
        self,
        http: Any,
        url: str,
        call: UpstreamCall,
        secrets: tuple[str, ...],
        headers: dict[str, str],
        body: dict,
    ) -> HttpStream:
        if call.framing == SSE:
            url += "?alt=sse"
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        resp = post_with_retries(http, url, data, headers, self._timeouts, secrets)
        return HttpStream(resp, call.framing, self._settings.idle_timeout_s)


class VertexUpstream(_GoogleUpstream):
    """Vertex AI with our own credentials; project and location always from configuration."""

    def url(self, call: UpstreamCall) -> str:
        s = self._settings
        if not s.vertex_project:
            raise ServiceUnavailable(
                "The gateway's Vertex AI project is not configured."
            )
        base = f"{s.vertex_base}/v1/projects/{_seg(s.vertex_project)}/locations/{_seg(s.vertex_location)}"
        target = call.target
        if target.endpoint:
            return f"{base}/endpoints/{_seg(target.endpoint)}:{target.verb}"
        return f"{base}/publishers/{_seg(target.publisher)}/models/{_seg(call.model)}:{target.verb}"

    def open(self, call: UpstreamCall) -> HttpStream:
        url = self.url(call)
        http = shared("upstream-http:vertex", _VertexAuth).ready()
        secrets = (self._settings.vertex_project,)
        return self._open(
            http, url, call, secrets, self._headers(call), dict(call.body)
        )


class GeminiUpstream(_GoogleUpstream):
    """The Gemini API with our API key in a header (never in the URL)."""

    def url(self, call: UpstreamCall) -> str:
        target = call.target
        if target.endpoint:
            raise BadRequest(
                "Tuned-model endpoints are served only by the Vertex AI upstream."
            )
        if target.publisher != "google":
            raise BadRequest(
                f"Publisher '{target.publisher}' is not available on the Gemini API; only 'google' is."
            )
        base = self._settings.gemini_base_url.rstrip("/")
        return f"{base}/v1beta/models/{_seg(call.model)}:{target.verb}"

    def open(self, call: UpstreamCall) -> HttpStream:
        url = self.url(call)
        key = self._settings.gemini_api_key
        if not key:
            raise ServiceUnavailable("The gateway's Gemini API key is not configured.")
        headers = {**self._headers(call), "x-goog-api-key": key}
        # Vertex-only fields the Gemini API rejects as unknown.
        body = {k: v for k, v in call.body.items() if k != "labels"}
        http = shared("upstream-http:gemini", _pool)
        return self._open(http, url, call, (key,), headers, body)
