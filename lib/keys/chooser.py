"""Chooses the key store named by `STREAMGATE_KEYS` (a file, GCP Secret Manager or AWS Secrets Manager)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from lib.config import ConfigError
from lib.keys.base import (
    AWS_ARN_PREFIX,
    AWS_URL_PREFIX,
    GCP_SECRET,
    KeyStore,
    KeyStoreError,
)


def store_kind(spec: str) -> str:
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


def open_key_store(spec: str, env: Mapping[str, str] | None = None) -> KeyStore:
    """The store named by `spec`; cloud modules (and boto3) are imported only when used."""
    env = os.environ if env is None else env
    kind = store_kind(spec)
    if kind == "gcp":
        from lib.keys.gcp import GcpKeyStore

        return GcpKeyStore(spec, env)
    if kind == "aws":
        from lib.keys.aws import AwsKeyStore

        return AwsKeyStore(spec)
    from lib.keys.file import FileKeyStore

    return FileKeyStore(spec)


def open_key_reader(
    spec: str, env: Mapping[str, str] | None = None
) -> Callable[[], bytes]:
    """A function that reads the current key document from `spec`."""
    if not spec:

        def missing() -> bytes:
            raise KeyStoreError("STREAMGATE_KEYS is not set")

        return missing
    return open_key_store(spec, env).read
