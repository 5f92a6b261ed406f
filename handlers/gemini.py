"""The Gemini API paths (`/v1/models/...`, `/v1beta/models/...`): functions-framework target `gemini_stream`."""

from __future__ import annotations

from typing import Any

from handlers.asgi import StreamedResponse, serve

FAMILIES = frozenset({"gemini"})


async def gemini_stream(request: Any) -> StreamedResponse:
    """Serve one streamGenerateContent (or generateContent) request of this family."""
    return await serve(request, FAMILIES)
