"""Adapts a functions-framework ASGI request to `lib.instance`, and streams its result back as sent."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lib.exchange import GatewayResponse

Scope = dict[str, Any]
Receive = Any
Send = Any

_sigterm_hooked = False


def raw_path(scope: Scope) -> str:
    """The path as the client sent it, still percent-encoded (so `%2F` stays visible)."""
    raw = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return scope.get("path", "/")


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-case names (ASGI's already are); a repeated header joined with commas."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def _content_length(headers: dict[str, str]) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    from lib.errors import BadRequest

    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("The request body could not be read: the client left.")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _disconnect_waiter(receive: Receive) -> Any:
    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait


class StreamedResponse:
    """The ASGI response: status and headers, then each relayed piece as one body message."""

    def __init__(self, result: GatewayResponse) -> None:
        self._result = result
        self._headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in result.headers
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        result = self._result
        if result.relay is None:
            length = (b"content-length", str(len(result.body)).encode())
            await send(
                {
                    "type": "http.response.start",
                    "status": result.status,
                    "headers": [*self._headers, length],
                }
            )
            await send({"type": "http.response.body", "body": result.body})
            return
        await send(
            {
                "type": "http.response.start",
                "status": result.status,
                "headers": self._headers,
            }
        )

        async def write(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        if await result.relay(write):
            await send({"type": "http.response.body", "body": b""})


def _hook_sigterm() -> None:
    """On SIGTERM, before the server's own handler: give open streams their grace, then end them."""
    global _sigterm_hooked
    if _sigterm_hooked:
        return
    import asyncio

    from lib.instance import begin_shutdown

    _sigterm_hooked = True
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(begin_shutdown)
        if callable(previous):
            previous(signum, frame)

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:
        # Not the main thread (an embedding server): its own shutdown applies.
        pass


async def serve(request: Any, families: frozenset[str] | None) -> StreamedResponse:
    """Run one request (a Starlette request from functions-framework) through the gateway."""
    # Imported on first use (then cached): under the server the event loop's modules are loaded
    # already; a bare `import main` (tools, tests) need not pay for the whole gateway.
    from lib.exchange import GatewayRequest
    from lib.instance import handle_request

    scope, receive = request.scope, request.receive
    _hook_sigterm()
    headers = _headers(scope)
    req = GatewayRequest(
        method=scope["method"],
        path=raw_path(scope),
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        body=_body(receive),
        content_length=_content_length(headers),
        wait_disconnect=_disconnect_waiter(receive),
    )
    return StreamedResponse(await handle_request(req, os.environ, families))
