"""Adapts a Flask (functions-framework) request to `lib.instance` and its result to a streamed response."""

from __future__ import annotations

import os
import socket
import struct
import sys
from typing import TYPE_CHECKING

from lib.errors import BadRequest, RequestTimeout
from lib.exchange import GatewayRequest
from lib.instance import handle_request

if (
    TYPE_CHECKING
):  # the server has Flask loaded already; `import main` alone need not pay for it
    import flask


def raw_path(environ: dict) -> str:
    """The path as the client sent it, still percent-encoded (so `%2F` stays visible)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    path = raw.split("?", 1)[0]
    if path.startswith(("http://", "https://")):
        path = "/" + path.split("/", 3)[-1] if path.count("/") >= 3 else "/"
    if path.startswith("/"):
        return path
    return environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")


def _tune_socket(environ: dict) -> None:
    """No Nagle delay on chunk writes; no thread held forever by a client that stops."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return
    try:
        # Each chunk is one small write: Nagle would hold it behind an unacked one.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Kernel timeouts, not `settimeout`: that makes Python poll() before every send,
        # a second syscall and GIL hand-off per chunk. A body that stops arriving, or a
        # client that stops reading, then fails with EAGAIN after this long.
        seconds = float(os.environ.get("STREAMGATE_CLIENT_TIMEOUT_S") or 60)
        timeval = struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except (OSError, ValueError):
        pass


def _body_reader(stream):
    """`stream.read`, with a body the server cannot read (bad chunking, short) as a 400."""

    def read(size: int) -> bytes:
        try:
            return stream.read(size)
        except (TimeoutError, BlockingIOError):
            raise RequestTimeout("The request body stopped arriving.") from None
        except Exception:  # noqa: BLE001 - gunicorn/werkzeug raise their own types
            raise BadRequest("The request body could not be read.") from None

    return read


def serve(request: flask.Request, families: frozenset[str] | None) -> flask.Response:
    """Run one request through the gateway and stream its body back unbuffered."""
    environ = request.environ
    _tune_socket(environ)
    req = GatewayRequest(
        method=request.method,
        path=raw_path(environ),
        query=environ.get("QUERY_STRING", ""),
        headers={k.lower(): v for k, v in request.headers.items()},
        read_body=_body_reader(request.stream),
        content_length=request.content_length,
    )
    result = handle_request(req, os.environ, families)
    body, headers = result.body, list(result.headers)
    if not result.streamed:
        # An iterator, so functions-framework's `read_request` hook does not read (and
        # buffer) an unread request body, e.g. the 1 GB behind a 413.
        data = b"".join(result.body)
        body, headers = iter([data]), [*headers, ("Content-Length", str(len(data)))]
    from flask import Response

    return Response(body, status=result.status, headers=headers)


def _unrouted(error: Exception) -> flask.Response:
    """Paths Flask's own routes cannot match (`%0A` in them, `/robots.txt`) in Google's shape."""
    from flask import request

    return serve(request, frozenset())


# Registers on the functions-framework app while it imports `main.py` (a no-op elsewhere).
if "functions_framework" in sys.modules:
    sys.modules["functions_framework"].errorhandler(404)(_unrouted)
