"""Every route in one function: local emulation and single-function deploys (target `gateway`)."""

from __future__ import annotations

from typing import Any

from handlers.asgi import StreamedResponse, serve


async def gateway(request: Any) -> StreamedResponse:
    """Serve a request of any route family."""
    return await serve(request, None)
