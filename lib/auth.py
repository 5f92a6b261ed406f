"""API keys: where a request may carry one, and what it may call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from lib.errors import BadRequest, Forbidden, Unauthorized
from lib.keys.document import ApiKey, KeySet

_UNKNOWN_KEY = "API key not valid. Please pass a valid API key."


def _bearer(value: str) -> str:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <API key>'.")
    return token.strip()


def extract_api_key(headers: Mapping[str, str], query_key: str | None) -> str:
    """The one API key a request carries (lower-case header names), or Unauthorized.

    Behind Google API Gateway the client's Authorization header arrives as
    X-Forwarded-Authorization, and Authorization holds the gateway's own ID token.
    """
    authorization = headers.get("x-forwarded-authorization") or headers.get(
        "authorization"
    )
    found = [
        _bearer(authorization) if authorization else "",
        headers.get("x-goog-api-key", "").strip(),
        query_key.strip() if query_key is not None else "",
    ]
    keys = {k for k in found if k}
    if not keys:
        raise Unauthorized(
            "Missing API key: send 'Authorization: Bearer <key>', 'x-goog-api-key: <key>' or '?key=<key>'."
        )
    if len(keys) > 1 or any("," in k for k in keys):
        raise BadRequest("The request carries more than one API key; send exactly one.")
    return keys.pop()


def check_api_key(keyset: KeySet, presented: str) -> ApiKey:
    """The key record for `presented`; unknown and disabled keys look the same."""
    key = keyset.find(presented)
    if key is None:
        raise Unauthorized(_UNKNOWN_KEY)
    return key


def check_model_allowed(key: ApiKey, model: str) -> None:
    """Forbidden unless the key's model globs admit the model actually called."""
    if not key.allows(model):
        raise Forbidden(f"This API key may not call model '{model}'.")


def check_not_expired(key: ApiKey, now: datetime) -> None:
    """Unauthorized, saying so, once the key's `expiresAt` has passed."""
    if key.expired(now):
        when = key.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if key.expires_at else ""
        raise Unauthorized(f"This API key expired at {when}.")
