"""Adapts a Flask (functions-framework) request to `lib.gateway` and its result to a streamed response."""

from __future__ import annotations

import os
import socket

import flask

from lib.gateway import GatewayRequest, handle_request


def raw_path(environ: dict) -> str:
    """The path as the client sent it, still percent-encoded (so `%2F` stays visible)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    path = raw.split("?", 1)[0]
    if path.startswith(("http://", "https://")):
        path = "/" + path.split("/", 3)[-1] if path.count("/") >= 3 else "/"
    if path.startswith("/"):
        return path
    return environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")


def _no_delay(environ: dict) -> None:
    # Each chunk is one small write; Nagle's algorithm would hold it back behind an unacked one.
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def serve(request: flask.Request, families: frozenset[str] | None) -> flask.Response:
    """Run one request through the gateway and stream its body back unbuffered."""
    environ = request.environ
    _no_delay(environ)
    req = GatewayRequest(
        method=request.method,
        path=raw_path(environ),
        query=environ.get("QUERY_STRING", ""),
        headers={k.lower(): v for k, v in request.headers.items()},
        read_body=request.stream.read,
        content_length=request.content_length,
    )
    result = handle_request(req, os.environ, families)
    return flask.Response(result.body, status=result.status, headers=result.headers)
