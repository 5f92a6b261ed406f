"""The streaming Lambda path: `run.sh` started as the Lambda Web Adapter's handler, serving on 127.0.0.1.

The adapter itself is not run here; these tests start the script with the environment the Lambda runtime
gives it (LAMBDA_TASK_ROOT, PORT, AWS_LWA_INVOKE_MODE, ...) and talk HTTP to the port the adapter would.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from lib.routes import ROUTES
from tests.support.cloud import (
    GEMINI_SECRET_VALUE,
    MotoSecrets,
    secret_backed_env,
)
from tests.support.env import GATEWAYS, KEYS
from tests.support.fakes import FakeUpstream, Scenario
from tests.support.gateway_process import GatewayProcess, free_port, wait_for_port
from tests.support.lambda_calls import CALLS, ENDPOINT, MODEL, PROMPT, route_path, texts
from tests.support.paths import ROOT
from tools import package_aws

BODY = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
HEADERS = {"x-goog-api-key": KEYS["team-a"]}


class StartScriptProcess(GatewayProcess):
    """run.sh as the Lambda runtime starts the handler: python3 on PATH, no FUNCTION_USE_ASGI, cwd elsewhere."""

    def start(self) -> StartScriptProcess:
        self.port = free_port()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(self.env)
        env.pop("FUNCTION_USE_ASGI", None)
        env.pop("AWS_LAMBDA_RUNTIME_API", None)
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            LAMBDA_TASK_ROOT=str(ROOT),
            PORT=str(self.port),
            AWS_LAMBDA_EXEC_WRAPPER="/opt/bootstrap",
            AWS_LWA_INVOKE_MODE="response_stream",
            AWS_LAMBDA_FUNCTION_NAME="streamgate",
            _HANDLER="run.sh",
            GUNICORN_LOG_LEVEL="info",
            HOME="/dev/null",  # like Lambda, nothing writable outside /tmp
            TMPDIR=str(self.log_path.parent),
        )
        # Exactly what the adapter layer's /opt/bootstrap does: needs run.sh's shebang and mode 0755.
        wrapper = 'exec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"'
        self.proc = subprocess.Popen(
            ["bash", "-c", wrapper],
            cwd=self.log_path.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.proc)
        GATEWAYS.append(self)
        return self


@pytest.fixture(scope="module")
def scripted(fake_upstream: FakeUpstream) -> FakeUpstream:
    fake_upstream.script(MODEL, Scenario())
    fake_upstream.script(ENDPOINT, Scenario())
    return fake_upstream


def _start(workdir: Path, name: str, env: dict[str, str]) -> StartScriptProcess:
    return StartScriptProcess(env, workdir / f"lwa-{name}.log").start()


@pytest.fixture(scope="module")
def echo_start(workdir: Path, keys_file: Path) -> Iterator[StartScriptProcess]:
    env = {"STREAMGATE_UPSTREAM": "echo", "STREAMGATE_KEYS": str(keys_file)}
    server = _start(workdir, "echo", env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def vertex_start(
    workdir: Path, keys_file: Path, scripted: FakeUpstream, moto_secrets: MotoSecrets
) -> Iterator[StartScriptProcess]:
    env = secret_backed_env("vertex", "lwa", keys_file, scripted, moto_secrets)
    server = _start(workdir, "vertex", env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gemini_start(
    workdir: Path, keys_file: Path, scripted: FakeUpstream, moto_secrets: MotoSecrets
) -> Iterator[StartScriptProcess]:
    env = secret_backed_env("gemini", "lwa", keys_file, scripted, moto_secrets)
    server = _start(workdir, "gemini", env)
    yield server
    server.stop()


def test_gunicorn_listens_where_the_adapter_connects(echo_start: StartScriptProcess):
    log = echo_start.log_text()
    assert f"Listening at: http://127.0.0.1:{echo_start.port} " in log
    # run.sh serves the ASGI mode: one uvicorn worker, one event loop.
    assert "Using worker: uvicorn_worker.UvicornWorker" in log
    assert "ERROR" not in log  # e.g. no control socket failure with an unwritable home


@pytest.mark.parametrize("index", range(len(ROUTES)))
@pytest.mark.parametrize("upstream", ["echo", "vertex"])
def test_every_route_is_served(request, upstream: str, index: int):
    server: StartScriptProcess = request.getfixturevalue(f"{upstream}_start")
    route = ROUTES[index]
    verb, query, framing = CALLS[index % len(CALLS)]
    url = server.url(route_path(route, verb)) + (f"?{query}" if query else "")
    resp = requests.post(url, json=BODY, headers=HEADERS, timeout=30)
    assert resp.status_code == 200, resp.text
    if framing != "unary":
        assert resp.headers["Transfer-Encoding"] == "chunked"
    text, _ = texts(framing, resp.content)
    if upstream == "echo":
        assert text == PROMPT
        return
    assert text == (" world" if framing == "unary" else "Hello world")
    name = ENDPOINT if route.template.endswith("{endpoint}") else MODEL
    sent = request.getfixturevalue("scripted").last_request(name)
    assert sent["path"].endswith(f"/{name}:{verb}")
    assert sent["headers"]["Authorization"].startswith("Bearer ya29.fake-")


def _one_chunk(framing: str, received: bytes) -> bool:
    """Whether `received` holds the first whole chunk: an SSE event, or `[` and one element."""
    if framing == "sse":
        return received.endswith(b"\r\n\r\n")
    try:
        json.loads(received[1:])
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("query", "framing"), [("?alt=sse", "sse"), ("", "array")])
def test_chunks_arrive_while_the_upstream_holds_the_next(
    gemini_start: StartScriptProcess, scripted: FakeUpstream, query: str, framing: str
):
    """Chunk 1 reaches the client while the upstream still holds chunk 2 (the Gemini key from Secrets Manager)."""
    model = f"lwa-gated-{framing}"
    scenario = scripted.script(model, Scenario(gate=threading.Event()))
    url = gemini_start.url(f"/v1beta/models/{model}:streamGenerateContent{query}")
    with requests.post(
        url, json=BODY, headers=HEADERS, stream=True, timeout=30
    ) as resp:
        assert resp.status_code == 200
        pieces = resp.iter_content(chunk_size=None)
        first = next(pieces)
        while not _one_chunk(framing, first):
            first += next(pieces)
        assert b"Hello" in first and b"world" not in first
        assert not scenario.gate.is_set()
        scenario.gate.set()
        body = first + b"".join(pieces)
    assert texts(framing, body) == ("Hello world", 2)
    sent = scripted.last_request(model)
    assert sent["headers"]["X-Goog-Api-Key"] == GEMINI_SECRET_VALUE


def test_the_package_zip_is_deterministic_and_keeps_run_sh_executable(tmp_path: Path):
    deps = tmp_path / "deps"
    (deps / "requests").mkdir(parents=True)
    (deps / "requests" / "__init__.py").write_text("")
    (deps / "boto3").mkdir()
    (deps / "boto3" / "__init__.py").write_text("")
    (deps / "botocore-1.40.0.dist-info").mkdir()
    (deps / "botocore-1.40.0.dist-info" / "METADATA").write_text("")
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    package_aws.write_zip(package_aws.package_files(deps), first)
    package_aws.write_zip(package_aws.package_files(deps), second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        modes = {
            i.filename: stat.S_IMODE(i.external_attr >> 16) for i in archive.infolist()
        }
    assert names == sorted(names)
    assert modes["run.sh"] == 0o755 and modes["main.py"] == 0o644
    assert {
        "main.py",
        "handlers/aws_lambda.py",
        "lib/gateway.py",
        "requests/__init__.py",
    } <= set(names)
    assert not [
        n
        for n in names
        if n.startswith(("boto", "__pycache__")) or "/__pycache__/" in n
    ]


def test_function_target_selects_the_served_family(workdir: Path, keys_file: Path):
    env = {
        "STREAMGATE_UPSTREAM": "echo",
        "STREAMGATE_KEYS": str(keys_file),
        "FUNCTION_TARGET": "vertex_stream",
    }
    server = _start(workdir, "vertex-family", env)
    try:
        path = "/v1/publishers/google/models/{}:streamGenerateContent"
        ok = requests.post(
            server.url(path.format("m")), json=BODY, headers=HEADERS, timeout=30
        )
        assert ok.status_code == 200
        gemini = server.url("/v1beta/models/m:streamGenerateContent")
        assert (
            requests.post(gemini, json=BODY, headers=HEADERS, timeout=30).status_code
            == 404
        )
    finally:
        server.stop()
