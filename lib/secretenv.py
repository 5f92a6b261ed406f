"""Settings whose values live in a secret (Gemini API keys, Google WIF config), resolved at first use."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping

from lib.config import ConfigError, UpstreamSpec
from lib.keys.base import AWS_ARN_PREFIX, AWS_URL_PREFIX, GCP_SECRET, KeyStoreError
from lib.keys.chooser import open_key_store
from lib.process import shared

GEMINI_KEY_SECRET = "STREAMGATE_GEMINI_API_KEY_SECRET"
GOOGLE_CREDENTIALS_SECRET = "STREAMGATE_GOOGLE_CREDENTIALS_SECRET"


def _read_secret(variable: str, reference: str, env: Mapping[str, str]) -> str:
    if not (
        reference.startswith((AWS_ARN_PREFIX, AWS_URL_PREFIX))
        or GCP_SECRET.fullmatch(reference)
    ):
        raise ConfigError(
            f"{variable} must be a Secrets Manager ARN, aws-secretsmanager://name "
            "or a Secret Manager name (projects/P/secrets/S)"
        )
    # The key stores' own readers; boto3 or google-auth load only when a secret is named.
    store = open_key_store(reference, env)
    try:
        value = store.read().decode("utf-8").strip()
    except (KeyStoreError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the secret named by {variable}: {exc}"
        ) from None
    if not value:
        raise ConfigError(f"the secret named by {variable} is empty")
    return value


def _secret(variable: str, reference: str, env: Mapping[str, str]) -> str:
    """The value of the secret `reference` (named by `variable`), read once per process."""
    return shared(f"secret:{reference}", lambda: _read_secret(variable, reference, env))


def _fetch(variable: str, env: Mapping[str, str]) -> str:
    return _secret(variable, env[variable], env)


def upstream_key(spec: UpstreamSpec, env: Mapping[str, str]) -> str:
    """A listed Gemini upstream's API key: from the variable it names, or its secret (read once)."""
    if not spec.api_key_secret:
        return env.get(spec.api_key_env, "")
    return _secret(f"apiKeySecret of upstream {spec.name}", spec.api_key_secret, env)


def _credentials_file(env: Mapping[str, str]) -> str:
    """A private (0600) file holding the credential configuration from the secret."""
    reference = env[GOOGLE_CREDENTIALS_SECRET]
    return shared(f"credentials-file:{reference}", lambda: _write_credentials(env))


def _write_credentials(env: Mapping[str, str]) -> str:
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
    return path


def resolve_secret_env(env: Mapping[str, str]) -> Mapping[str, str]:
    """`env` with secret-backed settings filled in; `env` itself when no secret is named."""
    if not env.get(GEMINI_KEY_SECRET) and not env.get(GOOGLE_CREDENTIALS_SECRET):
        return env
    resolved = dict(env)
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
