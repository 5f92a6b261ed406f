"""The key document (`{"keys": [...]}`): parsing, hashing and constant-time lookup."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lib.limits.policy import Limits, LimitsError, format_utc, parse_limits, parse_utc

_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class KeyDocumentError(ValueError):
    """The key document is malformed; the message says where (never a key or a hash)."""


def hash_key(key: str) -> str:
    """Hex SHA-256 of an API key, the only form a key is ever stored in."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """One client key: its id, the SHA-256 of the key, allowed model globs, disabled flag, limits, expiry."""

    id: str
    sha256: str
    models: tuple[str, ...] = ()
    disabled: bool = False
    limits: Limits = field(default_factory=Limits)
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        """True from `expiresAt` on (`now` must be timezone-aware)."""
        return self.expires_at is not None and now >= self.expires_at

    def allows(self, model: str) -> bool:
        """True if the key may call `model` (no globs means every model)."""
        return not self.models or any(
            fnmatch.fnmatchcase(model, g) for g in self.models
        )

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "sha256": self.sha256}
        if self.models:
            entry["models"] = list(self.models)
        if self.expires_at is not None:
            entry["expiresAt"] = format_utc(self.expires_at)
        if not self.limits.empty:
            entry["limits"] = self.limits.to_dict()
        entry["disabled"] = self.disabled
        return entry


@dataclass(frozen=True)
class KeySet:
    """An immutable set of keys, as loaded from one version of the key document."""

    keys: tuple[ApiKey, ...] = ()

    def find(self, presented: str) -> ApiKey | None:
        """The enabled key matching `presented`, comparing every hash in constant time."""
        digest = hash_key(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.sha256) and not key.disabled:
                found = key
        return found

    def to_json(self) -> str:
        return json.dumps({"keys": [k.to_dict() for k in self.keys]}, indent=2) + "\n"


def _parse_entry(index: int, entry: Any) -> ApiKey:
    where = f"keys[{index}]"
    if not isinstance(entry, dict):
        raise KeyDocumentError(f"{where} is not an object")
    key_id = entry.get("id")
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise KeyDocumentError(
            f"{where}.id must be 1-64 characters from [A-Za-z0-9._@-]"
        )
    digest = entry.get("sha256")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest.lower()):
        raise KeyDocumentError(f"{where}.sha256 ({key_id}) is not 64 hex characters")
    models = entry.get("models", [])
    if not isinstance(models, list) or not all(
        isinstance(m, str) and m for m in models
    ):
        raise KeyDocumentError(
            f"{where}.models ({key_id}) must be a list of glob strings"
        )
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise KeyDocumentError(f"{where}.disabled ({key_id}) must be true or false")
    try:
        limits = parse_limits(entry.get("limits"), f"{where}.limits", f" ({key_id})")
        expires = entry.get("expiresAt")
        if expires is not None:
            expires = parse_utc(expires, f"{where}.expiresAt ({key_id})")
    except LimitsError as exc:
        raise KeyDocumentError(str(exc)) from None
    return ApiKey(key_id, digest.lower(), tuple(models), disabled, limits, expires)


def parse_key_document(raw: bytes | str) -> KeySet:
    """Parse and validate a whole key document; any fault rejects all of it."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise KeyDocumentError(f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyDocumentError('expected an object with a "keys" list')
    keys = tuple(_parse_entry(i, e) for i, e in enumerate(doc["keys"]))
    ids = [k.id for k in keys]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise KeyDocumentError(f"duplicate key ids: {', '.join(duplicates)}")
    return KeySet(keys)
