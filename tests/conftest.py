"""Shared fixtures: real servers on 127.0.0.1 (gateways as deployed, a fake upstream, a token endpoint)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.keys.document import hash_key
from tests.cloudfakes import MotoSecrets
from tests.fakes import FakeUpstream
from tests.gateway_process import GatewayProcess

FIXTURES = (
    Path(__file__).resolve().parent / "data" / "fixtures"
)  # copies of ../shared/fixtures
DATA = Path(__file__).resolve().parent / "data"

KEYS = {
    "team-a": "sg_team-a-key-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "limited": "sg_limited-key-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
    "disabled": "sg_disabled-key-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
}
UPSTREAM_KEY = "AIzaSy-upstream-secret-DDDDDDDDDDDDDDDDDDDD"
PINNED_PROJECT = "pinned-proj"
PINNED_LOCATION = "us-central1"
CORS_ORIGIN = "https://app.example"
# Every secret used in a run; no gateway log may contain any of them (checked at session end).
SECRETS: set[str] = {*KEYS.values(), UPSTREAM_KEY}


def keys_document() -> dict:
    return {
        "keys": [
            {"id": "team-a", "sha256": hash_key(KEYS["team-a"])},
            {
                "id": "limited",
                "sha256": hash_key(KEYS["limited"]),
                "models": ["gemini-2.5-*"],
            },
            {"id": "disabled", "sha256": hash_key(KEYS["disabled"]), "disabled": True},
        ]
    }


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streamgate")


@pytest.fixture(scope="session")
def keys_file(workdir: Path) -> Path:
    path = workdir / "keys.json"
    path.write_text(json.dumps(keys_document()))
    return path


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


def write_service_account(path: Path, token_uri: str) -> Path:
    """A real service-account credentials file (fresh RSA key) whose token_uri is `token_uri`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PINNED_PROJECT,
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": f"gateway@{PINNED_PROJECT}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path


@pytest.fixture(scope="module")
def moto_secrets() -> Iterator[MotoSecrets]:
    """AWS Secrets Manager as moto's real server on 127.0.0.1, one per test module."""
    secrets = MotoSecrets().start()
    yield secrets
    secrets.stop()


@pytest.fixture(scope="session")
def service_account_file(workdir: Path, fake_upstream: FakeUpstream) -> Path:
    """google-auth honours token_uri in service-account files (not in authorized_user ones)."""
    return write_service_account(
        workdir / "service-account.json", f"{fake_upstream.url}/token"
    )


_gateways: list[GatewayProcess] = []


def gemini_env(keys_file: Path, upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    """Environment of a gateway whose Gemini upstream is `upstream`."""
    return {
        "STREAMGATE_UPSTREAM": "gemini",
        "STREAMGATE_KEYS": str(keys_file),
        "STREAMGATE_GEMINI_BASE_URL": upstream.url,
        "STREAMGATE_GEMINI_API_KEY": UPSTREAM_KEY,
        **extra,
    }


def vertex_env(
    keys_file: Path, upstream: FakeUpstream, credentials: Path, **extra: str
) -> dict[str, str]:
    """Environment of a gateway whose Vertex upstream is `upstream`, pinned to our project."""
    return {
        "STREAMGATE_UPSTREAM": "vertex",
        "STREAMGATE_KEYS": str(keys_file),
        "STREAMGATE_VERTEX_BASE_URL": upstream.url,
        "STREAMGATE_VERTEX_PROJECT": PINNED_PROJECT,
        "STREAMGATE_VERTEX_LOCATION": PINNED_LOCATION,
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        **extra,
    }


def start_gateway(
    workdir: Path, name: str, env: dict[str, str], target: str = "gateway"
) -> GatewayProcess:
    gw = GatewayProcess(env, workdir / f"{name}.log", target=target).start()
    _gateways.append(gw)
    return gw


@pytest.fixture(scope="session")
def echo_gateway(workdir: Path, keys_file: Path) -> Iterator[GatewayProcess]:
    env = {
        "STREAMGATE_UPSTREAM": "echo",
        "STREAMGATE_KEYS": str(keys_file),
        "STREAMGATE_ECHO_DELAY_MS": "1",
        "STREAMGATE_CORS_ORIGINS": CORS_ORIGIN,
    }
    gw = start_gateway(workdir, "echo", env)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def gemini_gateway(
    workdir: Path, keys_file: Path, fake_upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    env = gemini_env(keys_file, fake_upstream, STREAMGATE_IDLE_TIMEOUT_S="1")
    gw = start_gateway(workdir, "gemini", env)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def vertex_gateway(
    workdir: Path,
    keys_file: Path,
    fake_upstream: FakeUpstream,
    service_account_file: Path,
) -> Iterator[GatewayProcess]:
    env = vertex_env(
        keys_file, fake_upstream, service_account_file, STREAMGATE_IDLE_TIMEOUT_S="1"
    )
    gw = start_gateway(workdir, "vertex", env)
    yield gw
    gw.stop()


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_logs() -> Iterator[None]:
    """After the run, no gateway log holds a key, an upstream key or a registered prompt."""
    yield
    leaks = [
        (gw.log_path.name, s[:12])
        for gw in _gateways
        for s in SECRETS
        if s in gw.log_text()
    ]
    assert not leaks, f"secrets found in gateway logs: {leaks}"
