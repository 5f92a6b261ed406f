"""Settings whose values live in AWS Secrets Manager (the Gemini key, Google WIF config), resolved at first use."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping

from lib.config import ConfigError

GEMINI_KEY_SECRET = "STREAMGATE_GEMINI_API_KEY_SECRET"
GOOGLE_CREDENTIALS_SECRET = "STREAMGATE_GOOGLE_CREDENTIALS_SECRET"
_REFERENCE_PREFIXES = ("arn:aws:secretsmanager:", "aws-secretsmanager://")

# Secret reference -> its value, and -> the credentials file written from it: once per process.
_values: dict[str, str] = {}
_files: dict[str, str] = {}
_lock = threading.Lock()


def _fetch(variable: str, env: Mapping[str, str]) -> str:
    reference = env[variable]
    if reference not in _values:
        if not reference.startswith(_REFERENCE_PREFIXES):
            raise ConfigError(
                f"{variable} must be a Secrets Manager ARN or aws-secretsmanager://name"
            )
        # Imported here: boto3 loads only when a secret is named.
        from lib.aws_secrets import AwsSecretsBackend
        from lib.keysource import KeySourceError

        try:
            value = AwsSecretsBackend(reference).read().decode("utf-8").strip()
        except (KeySourceError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the secret named by {variable}: {exc}"
            ) from None
        if not value:
            raise ConfigError(f"the secret named by {variable} is empty")
        _values[reference] = value
    return _values[reference]


def _credentials_file(env: Mapping[str, str]) -> str:
    """A private (0600) file holding the credential configuration from the secret."""
    reference = env[GOOGLE_CREDENTIALS_SECRET]
    if reference not in _files:
        content = _fetch(GOOGLE_CREDENTIALS_SECRET, env)
        try:
            info = json.loads(content)
        except ValueError:
            info = None
        if not isinstance(info, dict) or "type" not in info:
            raise ConfigError(
                f"the secret named by {GOOGLE_CREDENTIALS_SECRET} is not a Google credentials JSON"
            )
        fd, path = tempfile.mkstemp(prefix="streamgate-google-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        _files[reference] = path
    return _files[reference]


def resolve_secret_env(env: Mapping[str, str]) -> Mapping[str, str]:
    """`env` with secret-backed settings filled in; `env` itself when no secret is named."""
    if not env.get(GEMINI_KEY_SECRET) and not env.get(GOOGLE_CREDENTIALS_SECRET):
        return env
    resolved = dict(env)
    with _lock:
        if env.get(GEMINI_KEY_SECRET):
            resolved["STREAMGATE_GEMINI_API_KEY"] = _fetch(GEMINI_KEY_SECRET, env)
        if env.get(GOOGLE_CREDENTIALS_SECRET):
            path = _credentials_file(env)
            resolved["GOOGLE_APPLICATION_CREDENTIALS"] = path
            # google-auth's Application Default Credentials read os.environ, not this mapping.
            os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = path
            project = env.get("STREAMGATE_VERTEX_PROJECT", "")
            if project and not env.get("GOOGLE_CLOUD_PROJECT"):
                # Else google-auth asks Cloud Resource Manager for an external account's project at startup.
                resolved["GOOGLE_CLOUD_PROJECT"] = project
                os.environ["GOOGLE_CLOUD_PROJECT"] = project
    return resolved
