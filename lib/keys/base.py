"""The key store contract: read the key document, change it without losing a concurrent write."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from lib.keys.document import KeySet, parse_key_document

GCP_SECRET = re.compile(
    r"projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/]+)(?:/versions/(?P<version>[^/]+))?"
)
AWS_ARN_PREFIX = "arn:aws:secretsmanager:"
AWS_URL_PREFIX = "aws-secretsmanager://"

# A change to the key set: returns a new keyset, or the same object when nothing changes.
Change = Callable[[KeySet], KeySet]


class KeyStoreError(RuntimeError):
    """The key document could not be read or written (or no store is configured)."""


class KeyStore(Protocol):
    """A key store: read the current document; apply a change without losing a concurrent one."""

    def read(self) -> bytes: ...

    def update(self, change: Change) -> KeySet: ...


def apply_change(raw: bytes | None, change: Change) -> tuple[KeySet, bytes | None]:
    """The changed keyset and its document (None when unchanged); a malformed current document is refused."""
    keyset = KeySet() if raw is None else parse_key_document(raw)
    changed = change(keyset)
    if changed is keyset:
        return keyset, None
    data = changed.to_json().encode()
    # Never write a document the gateway would reject.
    parse_key_document(data)
    return changed, data
