"""Shared fixtures: real servers on 127.0.0.1 (gateways as deployed, a fake upstream, a token endpoint, Redis)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cloud import MotoSecrets
from tests.support.env import (
    CORS_ORIGIN,
    GATEWAYS,
    SECRETS,
    gemini_env,
    keys_document,
    start_gateway,
    vertex_env,
    write_service_account,
)
from tests.support.fakes import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.redis_server import RedisServer


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


@pytest.fixture(scope="module")
def moto_secrets() -> Iterator[MotoSecrets]:
    """AWS Secrets Manager as moto's real server on 127.0.0.1, one per test module."""
    secrets = MotoSecrets().start()
    yield secrets
    secrets.stop()


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    """A real redis-server (Debian's package) on a free port, started on first use, one per run."""
    server = RedisServer(workdir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service_account_file(workdir: Path, fake_upstream: FakeUpstream) -> Path:
    """google-auth honours token_uri in service-account files (not in authorized_user ones)."""
    return write_service_account(
        workdir / "service-account.json", f"{fake_upstream.url}/token"
    )


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
        for gw in GATEWAYS
        for s in SECRETS
        if s in gw.log_text()
    ]
    assert not leaks, f"secrets found in gateway logs: {leaks}"
