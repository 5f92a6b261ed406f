"""Vertex AI's own paths (`/v1` and `/v1beta1`: project/location, endpoints, express): functions-framework target `vertex_stream`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.flask_adapter import serve

if TYPE_CHECKING:
    import flask

FAMILIES = frozenset({"vertex"})


def vertex_stream(request: flask.Request) -> flask.Response:
    """Serve one streamGenerateContent (or generateContent) request of this family."""
    return serve(request, FAMILIES)
