"""The Gemini API paths (`/v1/models/...`, `/v1beta/models/...`): functions-framework target `gemini_stream`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.flask_adapter import serve

if TYPE_CHECKING:
    import flask

FAMILIES = frozenset({"gemini"})


def gemini_stream(request: flask.Request) -> flask.Response:
    """Serve one streamGenerateContent (or generateContent) request of this family."""
    return serve(request, FAMILIES)
