"""AWS Lambda handler for API Gateway (REST v1, HTTP API v2) and Function URL events, buffered."""

# Streaming on Lambda runs through the Lambda Web Adapter and run.sh (docs/aws.md); this handler is
# the fallback where streaming is not configured: a streamed route returns its complete, framed body.
from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from lib.exchange import GatewayRequest, GatewayResponse
from lib.instance import handle_request
from lib.process import shared
from lib.routes import FAMILY_TARGETS

# FUNCTION_TARGET (as run.sh passes to functions-framework) -> the families it serves; unset = all.
_TARGET_FAMILIES = {t: frozenset({f}) for f, t in FAMILY_TARGETS.items()}


def _path(event: dict[str, Any]) -> str:
    """The request path without a named stage (`/prod/...` via an execute-api URL)."""
    context = event.get("requestContext") or {}
    path = event.get("rawPath") or event.get("path") or context.get("path") or "/"
    stage = context.get("stage") or "$default"
    if stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    return path


def _headers(event: dict[str, Any]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with commas, as HTTP APIs do."""
    multi = event.get("multiValueHeaders") or {
        k: [v] for k, v in (event.get("headers") or {}).items()
    }
    joined: dict[str, list[str]] = {}
    for name, values in multi.items():
        joined.setdefault(name.lower(), []).extend(values or [])
    headers = {name: ",".join(values) for name, values in joined.items()}
    if event.get("cookies"):
        headers["cookie"] = "; ".join(event["cookies"])
    return headers


def _request(event: dict[str, Any]) -> GatewayRequest:
    if event.get("version") == "2.0":
        method = event["requestContext"]["http"]["method"]
        query = event.get("rawQueryString") or ""
    else:
        method = event.get("httpMethod") or "GET"
        multi = event.get("multiValueQueryStringParameters") or {
            k: [v] for k, v in (event.get("queryStringParameters") or {}).items()
        }
        query = urlencode(multi, doseq=True)
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    return GatewayRequest(
        method, _path(event), query, _headers(event), _once(raw), len(raw)
    )


async def _once(raw: bytes) -> AsyncIterator[bytes]:
    yield raw


def _response(result: GatewayResponse, body: bytes, v2: bool) -> dict[str, Any]:
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    multi: dict[str, list[str]] = {}
    for name, value in result.headers:
        multi.setdefault(name, []).append(value)
    response: dict[str, Any] = {"statusCode": result.status, "body": text}
    if v2:
        response["headers"] = {k: ", ".join(v) for k, v in multi.items()}
    else:
        # API Gateway merges both maps; single values in `headers` avoid duplicates.
        response["headers"] = {k: v[0] for k, v in multi.items() if len(v) == 1}
        response["multiValueHeaders"] = multi
    response["isBase64Encoded"] = encoded
    return response


async def _serve(event: dict[str, Any]) -> dict[str, Any]:
    families = _TARGET_FAMILIES.get(os.environ.get("FUNCTION_TARGET", ""))
    result = await handle_request(_request(event), os.environ, families)
    body = result.body
    if result.relay is not None:
        # A streamed route's chunks, joined: still `data: ...` events or one JSON array.
        pieces: list[bytes] = []

        async def collect(data: bytes) -> None:
            pieces.append(data)

        await result.relay(collect)
        body = b"".join(pieces)
    return _response(result, body, event.get("version") == "2.0")


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Serve one API Gateway or Function URL event with the process's gateway, on its one loop."""
    loop = shared("lambda-event-loop", asyncio.new_event_loop)
    return loop.run_until_complete(_serve(event))
