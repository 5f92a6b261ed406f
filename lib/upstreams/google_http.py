"""Google's HTTP client for the upstreams: retries before the first byte, scrubbed Google errors, chunks."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from lib.errors import GatewayError, UpstreamError, UpstreamTimeout
from lib.framing import decode_stream_async
from lib.googleapis import error_message, parse_error_body
from lib.upstreams.base import FORWARD_RESPONSE_HEADERS, RETRY_BUDGET_S
from lib.upstreams.http1 import Pool, Response, UpstreamSilent

MAX_ATTEMPTS = 3
SHORT_429_S = 2.0
_MAX_ERROR_BYTES = 64 * 1024
_KEPT_DETAILS = ("RetryInfo", "ErrorInfo", "QuotaFailure", "BadRequest", "Help")
_URL = re.compile(r"https?://[^\s\"'<>]+")
# Google API keys, OAuth access tokens and `key=` parameters, whoever's they are.
_CREDENTIAL = re.compile(
    r"AIza[0-9A-Za-z_-]{20,}|ya29\.[0-9A-Za-z_.-]+|(?<=key=)[^\s&\"']+"
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


@contextmanager
def map_upstream_errors(idle_timeout_s: float) -> Iterator[None]:
    """Turn transport failures (also inside the chunk loop) into gateway errors, once."""
    try:
        yield
    except UpstreamSilent as exc:
        raise UpstreamTimeout(
            f"The upstream sent nothing for {idle_timeout_s:g} s."
        ) from exc
    except OSError as exc:
        raise UpstreamError("The upstream connection failed.") from exc


def retry_delay_s(error: Mapping[str, Any]) -> float | None:
    """The wait a RetryInfo detail asks for, in seconds."""
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith(
            "RetryInfo"
        ):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    text = _URL.sub(
        lambda m: m.group() if "cloud.google.com/docs" in m.group() else "[url]", text
    )
    text = _CREDENTIAL.sub("[redacted]", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _details(error: Mapping[str, Any]) -> list[dict[str, Any]]:
    kept = []
    for detail in error.get("details", []) or []:
        kind = str(detail.get("@type", "")) if isinstance(detail, dict) else ""
        if kind.endswith(_KEPT_DETAILS):
            kept.append({k: v for k, v in detail.items() if k != "metadata"})
    return kept


async def upstream_error(resp: Response, secrets: tuple[str, ...]) -> GatewayError:
    """The client's view of a non-200 upstream answer: same status, Google's error, scrubbed."""
    try:
        raw = await resp.read(_MAX_ERROR_BYTES)
    except OSError:
        raw = b""
        resp.close()
    error = parse_error_body(raw)
    message = error_message(error)
    status = resp.status if 400 <= resp.status <= 599 else 502
    err = GatewayError(
        _scrub(message, secrets) or f"The upstream answered HTTP {resp.status}.",
        status,
        details=[json.loads(_scrub(json.dumps(d), secrets)) for d in _details(error)],
    )
    delay = retry_delay_s(error)
    if status == 429 and delay is not None:
        err.headers["Retry-After"] = str(max(1, math.ceil(delay)))
    return err


def _should_retry(status: int | None, error: GatewayError | None) -> float | None:
    """Seconds to wait before retrying, or None if this failure is final."""
    if status is None or status == 503:
        return 0.0
    if status == 429 and error is not None:
        delay = retry_delay_s(error.to_dict()["error"])
        return delay if delay is not None and delay <= SHORT_429_S else None
    return None


class HttpStream:
    """A 200 upstream response, decoded into chunks as the bytes arrive."""

    def __init__(self, resp: Response, framing: str, idle_timeout_s: float) -> None:
        self._resp = resp
        self._framing = framing
        self._idle = idle_timeout_s
        self._done = False
        self.headers = {
            k: v
            for k, v in resp.headers.items()
            if k.lower() in FORWARD_RESPONSE_HEADERS
        }

    async def chunks(self) -> AsyncIterator[bytes]:
        with map_upstream_errors(self._idle):
            async for chunk in decode_stream_async(self._framing, self._resp.body()):
                yield chunk
        self._done = True

    async def close(self) -> None:
        """Keep a fully read connection for reuse; drop one left mid-stream."""
        if self._done:
            self._resp.release()
        else:
            self._resp.close()


def make_pool(connect_timeout_s: float, idle_timeout_s: float) -> Pool:
    """The process's upstream connections (made on first use, inside the event loop)."""
    return Pool(connect_timeout_s, idle_timeout_s)


async def post_with_retries(
    pool: Pool,
    url: str,
    data: bytes,
    headers: Mapping[str, str],
    idle_timeout_s: float,
    secrets: tuple[str, ...],
    attempts: int = MAX_ATTEMPTS,
) -> Response:
    """POST until a 200, retrying only connection failures, 503 and short 429s, before any byte."""
    deadline = time.monotonic() + RETRY_BUDGET_S
    for attempt in range(attempts):
        resp, error = None, None
        try:
            with map_upstream_errors(idle_timeout_s):
                resp = await pool.post(url, data, headers)
        except UpstreamError as exc:
            # Connection failures; a read timeout (UpstreamTimeout) is final.
            error = exc
        if resp is not None and resp.status == 200:
            return resp
        if resp is not None:
            error = await upstream_error(resp, secrets)
        wait = _should_retry(resp.status if resp is not None else None, error)
        jitter = 0.25 * (2**attempt) * random.uniform(0.5, 1.5)
        backoff = wait + jitter if wait is not None else 0
        if (
            wait is None
            or attempt + 1 == attempts
            or time.monotonic() + backoff > deadline
        ):
            raise error  # type: ignore[misc]
        await asyncio.sleep(backoff)
    raise AssertionError("unreachable")
