"""Rotation without redeploy on running gateways: the key CLI against a file, Secret Manager and AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from lib.keys.document import hash_key
from lib.routes import ROUTES
from tests.support.cloud import FakeSecretManager, aws_env, create_aws_secret
from tests.support.env import SECRETS, start_gateway
from tests.support.gateway_process import GatewayProcess, free_port
from tests.support.paths import ROOT

TTL_S = "1"
DEADLINE_S = 20.0  # a bound for polling, far above the 1 s TTL; never a sleep
EMPTY = b'{"keys": []}'
LIMITED = "sg_rotation-limited-key-EEEEEEEEEEEEEEEEEEEEEEEEEEEE"
SECRETS.add(LIMITED)
ALIASES = {"gemini-pro": "gemini-2.5-flash", "gemini-2.5-legacy": "gemini-1.0-pro"}
BODY = {"contents": [{"role": "user", "parts": [{"text": "rotate the keys"}]}]}
STREAM_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


@dataclass
class Source:
    """A running gateway and the environment the key CLI needs to manage its store."""

    gateway: GatewayProcess
    cli_env: dict[str, str]


def cli(source: Source, *argv: str) -> str:
    """Run `python -m lib.keys` as an operator would; returns its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGATE_")}
    done = subprocess.run(
        [sys.executable, "-m", "lib.keys", *argv],
        cwd=ROOT,
        env={**env, **source.cli_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def call(gw: GatewayProcess, key: str, path: str = STREAM_PATH) -> requests.Response:
    return requests.post(
        gw.url(path), json=BODY, headers={"x-goog-api-key": key}, timeout=10
    )


def wait_for_status(gw: GatewayProcess, key: str, status: int) -> requests.Response:
    """Poll until the gateway answers `status` for `key`, within DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        resp = call(gw, key)
        if resp.status_code == status:
            return resp
        assert time.monotonic() < deadline, f"still {resp.status_code}: {resp.text}"
        time.sleep(0.05)


def wait_for_log(gw: GatewayProcess, text: str, key: str) -> None:
    """Keep sending requests (each must succeed) until the gateway logs `text`."""
    deadline = time.monotonic() + DEADLINE_S
    while not any(text in e.get("message", "") for e in gw.log_entries()):
        assert call(gw, key).status_code == 200
        assert time.monotonic() < deadline, f"no log line with {text!r}"
        time.sleep(0.05)


def assert_streams(resp: requests.Response) -> None:
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["Transfer-Encoding"] == "chunked"
    events = [json.loads(x[6:]) for x in resp.text.split("\r\n\r\n") if x]
    text = "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)
    assert len(events) == 3 and text == "rotate the keys"


def gateway_env(keys: str, **extra: str) -> dict[str, str]:
    return {
        "STREAMGATE_UPSTREAM": "echo",
        "STREAMGATE_KEYS": keys,
        "STREAMGATE_KEYS_TTL_S": TTL_S,
        "STREAMGATE_ECHO_DELAY_MS": "1",
        **extra,
    }


@pytest.fixture(scope="module")
def file_source(workdir: Path) -> Iterator[Source]:
    path = workdir / "rotation-keys.json"
    limited = {"id": "limited", "sha256": hash_key(LIMITED), "models": ["gemini-2.5-*"]}
    path.write_text(json.dumps({"keys": [limited]}))
    env = gateway_env(str(path), STREAMGATE_MODEL_ALIASES=json.dumps(ALIASES))
    gw = start_gateway(workdir, "rotation-file", env)
    yield Source(gw, {"STREAMGATE_KEYS": str(path)})
    gw.stop()


@pytest.fixture(scope="module")
def gcp_source(
    workdir: Path, fake_sm: FakeSecretManager, service_account_file: Path
) -> Iterator[Source]:
    spec = fake_sm.create("gateway-keys", EMPTY)
    cli_env = {
        "STREAMGATE_KEYS": spec,
        "STREAMGATE_SECRETMANAGER_BASE_URL": fake_sm.url,
        "GOOGLE_APPLICATION_CREDENTIALS": str(service_account_file),
    }
    gw = start_gateway(workdir, "rotation-gcp", gateway_env(spec, **cli_env))
    yield Source(gw, cli_env)
    gw.stop()


@pytest.fixture(scope="module")
def aws_source(workdir: Path) -> Iterator[Source]:
    arn = create_aws_secret(EMPTY)
    cli_env = {**aws_env(), "STREAMGATE_KEYS": arn}
    gw = start_gateway(workdir, "rotation-aws", gateway_env(arn, **cli_env))
    yield Source(gw, cli_env)
    gw.stop()


@pytest.mark.parametrize("store", ["file", "gcp", "aws"])
def test_a_new_key_works_and_a_revoked_one_stops_without_a_restart(request, store):
    source: Source = request.getfixturevalue(f"{store}_source")
    pid = source.gateway.proc.pid
    key_id = f"rot-{uuid.uuid4().hex[:8]}"
    key = cli(source, "new", "--id", key_id, "--models", "gemini-2.5-*")
    SECRETS.add(key)
    assert_streams(wait_for_status(source.gateway, key, 200))
    cli(source, "revoke", "--id", key_id)
    refused = wait_for_status(source.gateway, key, 401)
    assert refused.json()["error"]["status"] == "UNAUTHENTICATED"
    assert source.gateway.proc.poll() is None and source.gateway.proc.pid == pid


def test_a_store_unreachable_at_start_fails_closed_with_503(
    workdir, service_account_file
):
    env = gateway_env(
        "projects/test-project/secrets/unreachable",
        STREAMGATE_SECRETMANAGER_BASE_URL=f"http://127.0.0.1:{free_port()}",
        GOOGLE_APPLICATION_CREDENTIALS=str(service_account_file),
    )
    gw = start_gateway(workdir, "rotation-unreachable", env)
    try:
        resp = call(gw, LIMITED)
        assert resp.status_code == 503
        assert resp.json() == {
            "error": {
                "code": 503,
                "message": "API keys are unavailable; the gateway is refusing requests.",
                "status": "UNAVAILABLE",
            }
        }
        warnings = [
            e["message"] for e in gw.log_entries() if e.get("severity") == "WARNING"
        ]
        assert any(
            "cannot reach Secret Manager (ConnectionError)" in m
            and "failing closed" in m
            for m in warnings
        )
    finally:
        gw.stop()


def test_a_store_outage_after_a_good_load_keeps_serving_and_warns(gcp_source, fake_sm):
    key = cli(gcp_source, "new", "--id", f"outage-{uuid.uuid4().hex[:8]}")
    SECRETS.add(key)
    wait_for_status(gcp_source.gateway, key, 200)
    fake_sm.fail_status = 503
    try:
        wait_for_log(gcp_source.gateway, "HTTP 503 UNAVAILABLE", key)
        assert call(gcp_source.gateway, key).status_code == 200
    finally:
        fake_sm.fail_status = None
    messages = [
        e
        for e in gcp_source.gateway.log_entries()
        if "HTTP 503" in e.get("message", "")
    ]
    assert messages[0]["severity"] == "WARNING"
    assert "keeping the last good set" in messages[0]["message"]


def test_a_malformed_document_leaves_the_last_good_set_serving(gcp_source, fake_sm):
    key = cli(gcp_source, "new", "--id", f"good-{uuid.uuid4().hex[:8]}")
    SECRETS.add(key)
    wait_for_status(gcp_source.gateway, key, 200)
    good = fake_sm.latest("gateway-keys")
    fake_sm.add("gateway-keys", b'{"keys": [{"id": "bad", "sha256": "abc"}]}')
    try:
        wait_for_log(
            gcp_source.gateway, "keys[0].sha256 (bad) is not 64 hex characters", key
        )
        assert call(gcp_source.gateway, key).status_code == 200
    finally:
        fake_sm.add("gateway-keys", good)


def _route_path(template: str, model: str) -> str:
    values = {
        "publisher": "google",
        "model": model,
        "project": "p",
        "location": "us-central1",
        "endpoint": "1234",
    }
    return template.format(**values) + ":streamGenerateContent?alt=sse"


ALLOWLIST_CASES = [
    ("gemini-2.5-flash", 200),
    ("gemini-pro", 200),  # an alias of gemini-2.5-flash: allowed
    ("gemini-2.0-flash", 403),
    ("gemini-2.5-legacy", 403),  # matches the glob, but is an alias of gemini-1.0-pro
]


@pytest.mark.parametrize(
    ("template", "model", "status"),
    [
        (r.template, model, status if "{model}" in r.template else 403)
        for r in ROUTES
        for model, status in ALLOWLIST_CASES
        if "{model}" in r.template or model == "gemini-2.5-flash"
    ],
)
def test_model_allowlists_apply_to_the_model_called_on_every_route(
    file_source, template, model, status
):
    resp = call(file_source.gateway, LIMITED, _route_path(template, model))
    assert resp.status_code == status, resp.text
    if status == 200:
        assert_streams(resp)
        return
    called = ALIASES.get(model, model) if "{model}" in template else "endpoints/1234"
    error = resp.json()["error"]
    assert error["status"] == "PERMISSION_DENIED"
    assert error["message"] == f"This API key may not call model '{called}'."
