"""The key store in GCP Secret Manager, over its REST API with google-auth's AuthorizedSession."""

from __future__ import annotations

import base64
import logging
import random
import time
import uuid
from collections.abc import Mapping
from typing import Any

import requests
from google.auth.exceptions import GoogleAuthError

from lib.googleapis import CLOUD_PLATFORM_SCOPE, error_message, parse_error_body
from lib.keys.base import GCP_SECRET, Change, KeyStoreError, apply_change
from lib.keys.document import KeySet
from lib.process import shared

DEFAULT_BASE_URL = "https://secretmanager.googleapis.com"
BASE_URL_ENV = "STREAMGATE_SECRETMANAGER_BASE_URL"
# Seconds: (connect, read).
TIMEOUT = (5.0, 10.0)
# Writers take a lease in this annotation, set with an etag-conditioned secrets.patch.
LOCK_ANNOTATION = "streamgate-keys-lock"
LEASE_S = 60.0
ACQUIRE_TIMEOUT_S = 90.0

log = logging.getLogger("streamgate.keys")


def _authorized_session() -> requests.Session:
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except GoogleAuthError as exc:
        raise KeyStoreError(f"no Google credentials ({exc})") from None
    return AuthorizedSession(credentials)


def session() -> requests.Session:
    """The process's AuthorizedSession (Application Default Credentials), made on first use."""
    return shared("secretmanager-session", _authorized_session)


class SecretManagerError(KeyStoreError):
    """Secret Manager answered with an error; `status` is Google's status name."""

    def __init__(self, message: str, code: int, status: str) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def _version_number(name: str) -> int:
    return int(name.rsplit("/", 1)[-1])


def _lease_expiry(secret: dict[str, Any]) -> tuple[str, float]:
    """The lock annotation's holder token and expiry (epoch seconds; 0 when absent or unreadable)."""
    held = str(secret.get("annotations", {}).get(LOCK_ANNOTATION, ""))
    token, _, expires = held.partition(" ")
    try:
        return token, float(expires)
    except ValueError:
        return token, 0.0


class GcpKeyStore:
    """`projects/{p}/secrets/{s}[/versions/{v}]`: reads a version; writes add one under a lease."""

    def __init__(self, spec: str, env: Mapping[str, str]) -> None:
        match = GCP_SECRET.fullmatch(spec)
        if match is None:
            raise KeyStoreError("not a Secret Manager secret name")
        self.secret = f"projects/{match['project']}/secrets/{match['secret']}"
        self.version = match["version"] or "latest"
        base = env.get(BASE_URL_ENV, "") or DEFAULT_BASE_URL
        self.base = f"{base.rstrip('/')}/v1/{self.secret}"

    def read(self) -> bytes:
        """The payload of the configured version (default `latest`)."""
        return self._access(self.version)[1]

    def update(self, change: Change) -> KeySet:
        """Add a version with `change` applied to `latest`, holding the lease so no write is lost."""
        if self.version != "latest":
            raise KeyStoreError(
                f"{self.secret} is pinned to version {self.version}; point the CLI at the secret"
            )
        token = uuid.uuid4().hex
        expires = self._acquire(token)
        try:
            base, raw = self._latest_or_empty()
            keyset, data = apply_change(raw, change)
            if data is not None:
                if time.time() > expires - 10:
                    raise KeyStoreError("the store is too slow: the lock expired")
                added = self._add_version(data)
                if base and added != base + 1:
                    raise KeyStoreError(
                        f"version {added} was added while version {base + 1} was expected: "
                        "another writer bypassed the lock; check `list` and re-run"
                    )
            return keyset
        finally:
            self._release(token)

    def _call(self, method: str, suffix: str = "", **kwargs: Any) -> dict[str, Any]:
        try:
            resp = session().request(
                method, self.base + suffix, timeout=TIMEOUT, **kwargs
            )
        except (requests.RequestException, GoogleAuthError) as exc:
            raise KeyStoreError(
                f"cannot reach Secret Manager ({type(exc).__name__})"
            ) from None
        if resp.status_code >= 400:
            error = parse_error_body(resp.content)
            status = str(error.get("status", ""))
            message = error_message(error)[:300]
            raise SecretManagerError(
                f"Secret Manager: HTTP {resp.status_code} {status} {message}".strip(),
                resp.status_code,
                status,
            )
        return resp.json()

    def _access(self, version: str) -> tuple[int, bytes]:
        body = self._call("GET", f"/versions/{version}:access")
        try:
            data = base64.b64decode(body["payload"]["data"], validate=True)
            return _version_number(body["name"]), data
        except (KeyError, TypeError, ValueError):
            raise KeyStoreError("Secret Manager returned no payload") from None

    def _latest_or_empty(self) -> tuple[int, bytes | None]:
        try:
            return self._access("latest")
        except SecretManagerError as exc:
            # The secret exists, with no version yet.
            if exc.status == "NOT_FOUND" and self._call("GET"):
                return 0, None
            raise

    def _add_version(self, data: bytes) -> int:
        payload = {"payload": {"data": base64.b64encode(data).decode()}}
        return _version_number(self._call("POST", ":addVersion", json=payload)["name"])

    def _set_lock(self, secret: dict[str, Any], value: str | None) -> bool:
        """Patch the lock annotation only if the secret's etag is unchanged; False if it changed."""
        annotations = dict(secret.get("annotations", {}))
        annotations.pop(LOCK_ANNOTATION, None)
        if value is not None:
            annotations[LOCK_ANNOTATION] = value
        body = {"etag": secret.get("etag", ""), "annotations": annotations}
        try:
            self._call("PATCH", params={"updateMask": "annotations"}, json=body)
        except SecretManagerError as exc:
            if exc.status in ("FAILED_PRECONDITION", "ABORTED"):
                return False
            raise
        return True

    def _acquire(self, token: str) -> float:
        """Take the lease (waiting while another run holds it); returns its expiry."""
        deadline = time.monotonic() + ACQUIRE_TIMEOUT_S
        while time.monotonic() < deadline:
            secret = self._call("GET")
            expires = time.time() + LEASE_S
            free = _lease_expiry(secret)[1] <= time.time()
            if free and self._set_lock(secret, f"{token} {expires:.0f}"):
                return expires
            # Held by another run, or it won the race.
            time.sleep(0.1 + random.random() * 0.2)
        raise KeyStoreError("timed out waiting for another key CLI run to finish")

    def _release(self, token: str) -> None:
        try:
            for _ in range(5):
                secret = self._call("GET")
                if _lease_expiry(secret)[0] != token or self._set_lock(secret, None):
                    return
        except KeyStoreError as exc:
            # The lease expires on its own.
            log.warning("could not release the key store lock: %s", exc)
