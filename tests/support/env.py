"""The run's keys and secrets, and gateway environments: what every test shares about the gateway it starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lib.keys.document import hash_key
from tests.support.fakes import FakeUpstream
from tests.support.gateway_process import GatewayProcess

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
# Every gateway (or Lambda runtime) started in a run: its log joins the session-end secret scan.
GATEWAYS: list[Any] = []


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
    """A running gateway logging to `workdir/<name>.log`, registered for the secret scan."""
    gw = GatewayProcess(env, workdir / f"{name}.log", target=target).start()
    GATEWAYS.append(gw)
    return gw
