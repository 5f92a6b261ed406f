"""The `/api/{vertex-ai/v1,v1,vertex-ai/v1beta}/...` mounts: functions-framework target `platform_stream`."""

from __future__ import annotations

from typing import Any

from handlers.asgi import StreamedResponse, serve

FAMILIES = frozenset({"platform"})


async def platform_stream(request: Any) -> StreamedResponse:
    """Serve one streamGenerateContent (or generateContent) request of this family."""
    return await serve(request, FAMILIES)
