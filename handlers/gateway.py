"""Every route in one function: local emulation and single-function deploys (target `gateway`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.flask_adapter import serve

if TYPE_CHECKING:
    import flask


def gateway(request: flask.Request) -> flask.Response:
    """Serve a request of any route family."""
    return serve(request, None)
