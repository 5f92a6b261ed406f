"""One error tree; every error leaves the gateway in Google's `{"error": {...}}` shape."""

from __future__ import annotations

import json
from typing import Any

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(code: int) -> str:
    """The canonical Google status name for an HTTP status code."""
    if code in STATUS_NAMES:
        return STATUS_NAMES[code]
    return "INTERNAL" if code >= 500 else "FAILED_PRECONDITION"


class GatewayError(Exception):
    """An error the client sees, with its HTTP status and Google's error shape."""

    status_code = 500

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.details = details or []
        self.headers = headers or {}

    @property
    def status(self) -> str:
        return status_name(self.status_code)

    def to_dict(self) -> dict[str, Any]:
        """Google's error envelope; `error` first, `code` an integer."""
        body: dict[str, Any] = {
            "code": self.status_code,
            "message": self.message,
            "status": self.status,
        }
        if self.details:
            body["details"] = self.details
        return {"error": body}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ": ")).encode()


class BadRequest(GatewayError):
    status_code = 400


class NotServedHere(BadRequest):
    """This upstream cannot serve the call at all (said before contacting it); a list tries the next."""


class Unauthorized(GatewayError):
    status_code = 401


class Forbidden(GatewayError):
    status_code = 403


class NotFound(GatewayError):
    status_code = 404


class MethodNotAllowed(GatewayError):
    status_code = 405


class RequestTimeout(GatewayError):
    status_code = 408


class PayloadTooLarge(GatewayError):
    status_code = 413


class UnsupportedMediaType(GatewayError):
    status_code = 415


class TooManyRequests(GatewayError):
    status_code = 429


class ServiceUnavailable(GatewayError):
    status_code = 503


class UpstreamError(GatewayError):
    status_code = 502


class UpstreamTimeout(GatewayError):
    status_code = 504
