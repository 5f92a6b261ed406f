"""Secrets in settings: the Gemini keys and Google WIF config from Secrets Manager (moto) and Secret Manager (a fake)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import lib.process
from lib.config import ConfigError, UpstreamSpec
from lib.secretenv import resolve_secret_env, upstream_key
from tests.support.cloud import (
    GEMINI_SECRET_VALUE,
    REGION,
    FakeSecretManager,
    MotoSecrets,
    wif_config,
)
from tests.support.env import KEYS, SECRETS
from tests.support.paths import ROOT

NOT_JSON = "AIzaSy-not-json-FFFFFFFFFFFFFFFFFFFF"
SECRETS.update({GEMINI_SECRET_VALUE, NOT_JSON})


@pytest.fixture
def aws_env(
    moto_secrets: MotoSecrets, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """os.environ pointing boto3 at moto; fresh caches so each test really fetches."""
    for name, value in moto_secrets.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    # Secrets and clients are per-process singletons; another module's moto server must not answer here.
    monkeypatch.setattr(lib.process, "_made", {})
    return dict(os.environ)


def test_without_secret_variables_the_environment_is_returned_as_is():
    env = {"STREAMGATE_UPSTREAM": "gemini", "STREAMGATE_GEMINI_API_KEY": "direct"}
    assert resolve_secret_env(env) is env


def test_boto3_is_not_imported_when_no_secret_is_named(keys_file: Path):
    """A deployment without secrets never loads boto3, even after serving a request."""
    code = (
        "import asyncio, json, sys, os\n"
        "import main\n"
        "from lib.exchange import GatewayRequest\n"
        "from lib.instance import handle_request\n"
        "body = json.dumps({'contents': [{'parts': [{'text': 'hi'}]}]}).encode()\n"
        "async def pieces():\n"
        "    yield body\n"
        "req = GatewayRequest('POST', '/v1beta/models/m:generateContent', '',\n"
        "    {'x-goog-api-key': os.environ['KEY']}, pieces(), len(body))\n"
        "result = asyncio.run(handle_request(req, os.environ))\n"
        "print(json.dumps([result.status, 'boto3' in sys.modules, 'botocore' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGATE_")}
    env.update(STREAMGATE_KEYS=str(keys_file), STREAMGATE_UPSTREAM="echo")
    env["KEY"] = KEYS["team-a"]
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == [200, False, False]


@pytest.mark.parametrize("form", ["arn", "name"])
def test_gemini_key_is_read_from_the_secret(
    aws_env: dict, moto_secrets: MotoSecrets, form: str
):
    arn = moto_secrets.put(f"streamgate/gemini-key-{form}", GEMINI_SECRET_VALUE + "\n")
    reference = (
        arn if form == "arn" else f"aws-secretsmanager://streamgate/gemini-key-{form}"
    )
    env = {**aws_env, "STREAMGATE_GEMINI_API_KEY_SECRET": reference}
    resolved = resolve_secret_env(env)
    assert resolved["STREAMGATE_GEMINI_API_KEY"] == GEMINI_SECRET_VALUE
    assert "STREAMGATE_GEMINI_API_KEY" not in env  # the input is not modified


def test_the_secret_is_fetched_once_per_process(
    aws_env: dict, moto_secrets: MotoSecrets
):
    import boto3

    arn = moto_secrets.put("streamgate/once", GEMINI_SECRET_VALUE)
    env = {**aws_env, "STREAMGATE_GEMINI_API_KEY_SECRET": arn}
    assert resolve_secret_env(env)["STREAMGATE_GEMINI_API_KEY"] == GEMINI_SECRET_VALUE
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=arn, ForceDeleteWithoutRecovery=True
    )
    assert resolve_secret_env(env)["STREAMGATE_GEMINI_API_KEY"] == GEMINI_SECRET_VALUE


def test_google_credentials_land_in_a_private_file(
    aws_env: dict, moto_secrets: MotoSecrets
):
    config = json.dumps(wif_config("https://sts.googleapis.com/v1/token"))
    arn = moto_secrets.put("streamgate/google-wif", config)
    env = {
        **aws_env,
        "STREAMGATE_GOOGLE_CREDENTIALS_SECRET": arn,
        "STREAMGATE_VERTEX_PROJECT": "pinned-proj",
    }
    resolved = resolve_secret_env(env)
    path = Path(resolved["GOOGLE_APPLICATION_CREDENTIALS"])
    assert path.read_text() == config
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # google-auth reads os.environ; the project spares it a Cloud Resource Manager lookup.
    assert os.environ["GOOGLE_APPLICATION_CREDENTIALS"] == str(path)
    assert os.environ["GOOGLE_CLOUD_PROJECT"] == "pinned-proj"
    assert resolve_secret_env(env)["GOOGLE_APPLICATION_CREDENTIALS"] == str(path)
    path.unlink()


@pytest.mark.parametrize(
    ("variable", "reference", "message"),
    [
        (
            "STREAMGATE_GEMINI_API_KEY_SECRET",
            "streamgate/plain-name",
            "must be a Secrets Manager ARN",
        ),
        (
            "STREAMGATE_GEMINI_API_KEY_SECRET",
            "aws-secretsmanager://streamgate/missing",
            "ResourceNotFoundException",
        ),
        (
            "STREAMGATE_GOOGLE_CREDENTIALS_SECRET",
            "aws-secretsmanager://streamgate/not-json",
            "not a Google credentials JSON",
        ),
    ],
)
def test_unusable_secrets_are_configuration_errors(
    aws_env: dict, moto_secrets: MotoSecrets, variable, reference, message
):
    if reference.endswith("not-json"):
        moto_secrets.put("streamgate/not-json", NOT_JSON)
    with pytest.raises(ConfigError) as caught:
        resolve_secret_env({**aws_env, variable: reference})
    assert message in str(caught.value)
    assert variable in str(caught.value)
    assert "AIzaSy" not in str(caught.value)


def listed_gemini(secret: str) -> UpstreamSpec:
    return UpstreamSpec("gemini", "backup", api_key_secret=secret)


def test_a_listed_gemini_key_is_read_from_secrets_manager(
    aws_env: dict, moto_secrets: MotoSecrets
):
    arn = moto_secrets.put("streamgate/listed-gemini-key", GEMINI_SECRET_VALUE)
    assert upstream_key(listed_gemini(arn), aws_env) == GEMINI_SECRET_VALUE


def test_a_listed_gemini_key_is_read_from_secret_manager(
    service_account_file: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = FakeSecretManager()
    try:
        name = fake.create("listed-gemini-key", GEMINI_SECRET_VALUE.encode() + b"\n")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file))
        monkeypatch.setattr(lib.process, "_made", {})
        env = {"STREAMGATE_SECRETMANAGER_BASE_URL": fake.url}
        assert upstream_key(listed_gemini(name), env) == GEMINI_SECRET_VALUE
        assert fake.accesses == 1
    finally:
        fake.stop()


def test_a_listed_gemini_key_may_be_named_by_a_variable():
    spec = UpstreamSpec("gemini", "backup", api_key_env="BACKUP_KEY")
    assert upstream_key(spec, {"BACKUP_KEY": "k"}) == "k"


def test_an_unreadable_listed_secret_names_the_upstream(aws_env: dict):
    with pytest.raises(ConfigError, match="apiKeySecret of upstream backup"):
        upstream_key(listed_gemini("streamgate/plain-name"), aws_env)
