"""The `/api/{vertex-ai/v1,v1,vertex-ai/v1beta}/...` mounts: functions-framework target `platform_stream`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.flask_adapter import serve

if TYPE_CHECKING:
    import flask

FAMILIES = frozenset({"platform"})


def platform_stream(request: flask.Request) -> flask.Response:
    """Serve one streamGenerateContent (or generateContent) request of this family."""
    return serve(request, FAMILIES)
