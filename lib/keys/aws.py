"""The key store in AWS Secrets Manager via boto3, imported only when this store is used."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from lib.keys.base import (
    AWS_ARN_PREFIX,
    AWS_URL_PREFIX,
    Change,
    KeyStoreError,
    apply_change,
)
from lib.keys.document import KeySet
from lib.process import shared

CURRENT = "AWSCURRENT"
# New versions are written under this label first, then AWSCURRENT is moved onto them.
PENDING = "STREAMGATE_PENDING"
MAX_ATTEMPTS = 10


def _make_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=15,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    # A Session per client: boto3's default session is not thread-safe.
    return boto3.session.Session().client(
        "secretsmanager", region_name=region or None, config=config
    )


def client(region: str) -> Any:
    """A secretsmanager client per region ("" = the default); endpoint and credentials from the environment."""
    return shared(f"secretsmanager:{region}", lambda: _make_client(region))


class AwsSecretsError(KeyStoreError):
    """Secrets Manager answered with an error; `code` is its error code."""

    def __init__(self, code: str) -> None:
        super().__init__(f"Secrets Manager: {code}")
        self.code = code


class AwsKeyStore:
    """`arn:aws:secretsmanager:...` or `aws-secretsmanager://{name}`: AWSCURRENT is the document."""

    def __init__(self, spec: str) -> None:
        if spec.startswith(AWS_URL_PREFIX):
            self.secret_id, self.region = spec[len(AWS_URL_PREFIX) :], ""
        else:
            parts = spec[len(AWS_ARN_PREFIX) :].split(":")
            self.secret_id, self.region = spec, parts[0] if parts else ""
        if not self.secret_id:
            raise KeyStoreError("no secret name in the AWS key source")

    def read(self) -> bytes:
        """The AWSCURRENT version's value."""
        return self._get()[1]

    def update(self, change: Change) -> KeySet:
        """Write a version with `change` applied, then move AWSCURRENT onto it only if it has not moved."""
        for _ in range(MAX_ATTEMPTS):
            version, raw = self._current()
            keyset, data = apply_change(raw, change)
            if data is None:
                return keyset
            # The new version's id; makes a retried put idempotent.
            token = str(uuid.uuid4())
            stages = self._call(
                "put_secret_value",
                SecretId=self.secret_id,
                ClientRequestToken=token,
                SecretString=data.decode(),
                VersionStages=[PENDING],
            ).get("VersionStages", [])
            if CURRENT in stages or self._promote(token, version):
                # AWS makes a secret's first version current itself.
                return keyset
            # Another writer won; re-read and retry.
            time.sleep(random.random() * 0.2)
        raise KeyStoreError("gave up after too many concurrent writes to the secret")

    def _promote(self, token: str, expected: str | None) -> bool:
        """Compare-and-swap AWSCURRENT from `expected` to `token`; False if another writer moved it."""
        args = {"VersionStage": CURRENT, "MoveToVersionId": token}
        if expected:
            args["RemoveFromVersionId"] = expected
        try:
            self._call("update_secret_version_stage", SecretId=self.secret_id, **args)
        except AwsSecretsError:
            if self._current()[0] != expected:
                return False
            raise
        return True

    def _get(self) -> tuple[str, bytes]:
        """AWSCURRENT's version id and value."""
        resp = self._call(
            "get_secret_value", SecretId=self.secret_id, VersionStage=CURRENT
        )
        value = resp.get("SecretString")
        raw = value.encode() if value is not None else resp["SecretBinary"]
        return resp["VersionId"], raw

    def _current(self) -> tuple[str | None, bytes | None]:
        """Like `_get`, but (None, None) for an existing secret that has no value yet."""
        try:
            return self._get()
        except AwsSecretsError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            # Does the secret exist at all?
            self._call("describe_secret", SecretId=self.secret_id)
            return None, None

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(client(self.region), operation)(**kwargs)
        except ClientError as exc:
            raise AwsSecretsError(str(exc.response["Error"].get("Code", ""))) from None
        except BotoCoreError as exc:
            raise KeyStoreError(
                f"cannot reach Secrets Manager ({type(exc).__name__})"
            ) from None
