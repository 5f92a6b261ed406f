"""Vertex AI's own paths (`/v1` and `/v1beta1`: project/location, endpoints, express): functions-framework target `vertex_stream`."""

from __future__ import annotations

from typing import Any

from handlers.asgi import StreamedResponse, serve

FAMILIES = frozenset({"vertex"})


async def vertex_stream(request: Any) -> StreamedResponse:
    """Serve one streamGenerateContent (or generateContent) request of this family."""
    return await serve(request, FAMILIES)
