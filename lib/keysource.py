"""Where the key document lives, chosen by the shape of `STREAMGATE_KEYS`: a file, GCP or AWS."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Protocol

from lib.config import ConfigError
from lib.keyring import KeyRing, parse_key_document

GCP_SECRET = re.compile(
    r"projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/]+)(?:/versions/(?P<version>[^/]+))?"
)
AWS_ARN_PREFIX = "arn:aws:secretsmanager:"
AWS_URL_PREFIX = "aws-secretsmanager://"

# A change to the key ring: returns a new ring, or the same object when nothing changes.
Change = Callable[[KeyRing], KeyRing]


class KeySourceError(RuntimeError):
    """The key document could not be read or written (or no source is configured)."""


class KeyBackend(Protocol):
    """A key store: read the current document; apply a change without losing a concurrent one."""

    def read(self) -> bytes: ...

    def update(self, change: Change) -> KeyRing: ...


def source_kind(spec: str) -> str:
    """`file`, `gcp` or `aws`, by the shape of `spec` (a bad cloud shape is a ConfigError)."""
    if spec.startswith((AWS_ARN_PREFIX, AWS_URL_PREFIX)):
        return "aws"
    if spec.startswith("projects/") and "/secrets/" in spec:
        if not GCP_SECRET.fullmatch(spec):
            raise ConfigError(
                "STREAMGATE_KEYS: use projects/{project}/secrets/{secret}[/versions/{version}]"
            )
        return "gcp"
    return "file"


def open_key_backend(spec: str, env: Mapping[str, str] | None = None) -> KeyBackend:
    """The store named by `spec`; cloud modules (and boto3) are imported only when used."""
    env = os.environ if env is None else env
    kind = source_kind(spec)
    if kind == "gcp":
        from lib.secretmanager import SecretManagerBackend

        return SecretManagerBackend(spec, env)
    if kind == "aws":
        from lib.aws_secrets import AwsSecretsBackend

        return AwsSecretsBackend(spec)
    from lib.keystore_file import FileKeyBackend

    return FileKeyBackend(spec)


def open_key_reader(
    spec: str, env: Mapping[str, str] | None = None
) -> Callable[[], bytes]:
    """A function that reads the current key document from `spec`."""
    if not spec:

        def missing() -> bytes:
            raise KeySourceError("STREAMGATE_KEYS is not set")

        return missing
    return open_key_backend(spec, env).read


def apply_change(raw: bytes | None, change: Change) -> tuple[KeyRing, bytes | None]:
    """The changed ring and its document (None when unchanged); a malformed current document is refused."""
    ring = KeyRing() if raw is None else parse_key_document(raw)
    changed = change(ring)
    if changed is ring:
        return ring, None
    data = changed.to_json().encode()
    parse_key_document(data)  # never write a document the gateway would reject
    return changed, data
