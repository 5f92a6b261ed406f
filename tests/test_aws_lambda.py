"""The buffered Lambda path: saved API Gateway / Function URL events through `lambda_handler`.

`handle_request` keeps one gateway per process, so each configuration runs in its own warm
subprocess (like one Lambda execution environment) that takes events on stdin and answers on stdout.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lib.routes import ROUTES
from tests.support.cloud import (
    GEMINI_SECRET_VALUE,
    MotoSecrets,
    secret_backed_env,
)
from tests.support.env import GATEWAYS, KEYS, PINNED_LOCATION, PINNED_PROJECT
from tests.support.fakes import FakeUpstream, Scenario
from tests.support.lambda_calls import CALLS, ENDPOINT, MODEL, PROMPT, route_path, texts
from tests.support.paths import EVENTS, ROOT

EVENT_FILES = ["rest-v1.json", "http-api-v2.json", "function-url.json"]

RUNNER = r"""
import json, os, sys
from dataclasses import dataclass

results = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the request log (stdout) goes to the log file, the results stay on the pipe
sys.stdout = sys.stderr

@dataclass
class LambdaContext:
    function_name: str = "streamgate"
    aws_request_id: str = "test-request"
    memory_limit_in_mb: int = 512

from handlers.aws_lambda import lambda_handler

for line in sys.stdin:
    message = json.loads(line)
    if "modules" in message:
        answer = sorted(m for m in message["modules"] if m in sys.modules)
    else:
        answer = lambda_handler(message["event"], LambdaContext())
    results.write(json.dumps(answer) + "\n")
    results.flush()
"""


class LambdaRuntime:
    """One warm execution environment: a Python process calling `lambda_handler` per event."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("STREAMGATE_")
        }
        # TMPDIR: the credentials file from Secrets Manager stays inside the test's directory.
        self.env.update(
            {"PYTHONUNBUFFERED": "1", "TMPDIR": str(log_path.parent), **env}
        )
        self.log_path = log_path

    def start(self) -> LambdaRuntime:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        GATEWAYS.append(self)  # its log joins the session-end secret scan
        return self

    def _ask(self, message: dict[str, Any]) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else b""
        assert line, f"the runtime gave no answer; log:\n{self.log_text()[-2000:]}"
        return json.loads(line)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self._ask({"event": event})

    def loaded(self, modules: list[str]) -> list[str]:
        """Which of `modules` the process has imported so far."""
        return self._ask({"modules": modules})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request_logs(self) -> list[dict[str, Any]]:
        lines = [line for line in self.log_text().splitlines() if line.startswith("{")]
        return [e for e in map(json.loads, lines) if "httpRequest" in e]


def load_event(
    name: str,
    path: str | None = None,
    query: str | None = None,
    key: str = KEYS["team-a"],
) -> dict[str, Any]:
    """A saved event, its API key filled in, optionally sent to another path / with another query."""
    event = json.loads((EVENTS / name).read_text().replace("$API_KEY", key))
    if path is not None:
        retarget(event, path)
    if query is not None:
        params = dict(p.split("=", 1) for p in query.split("&") if p)
        if event.get("version") == "2.0":
            event["rawQueryString"] = query
            event["queryStringParameters"] = params or None
        else:
            event["queryStringParameters"] = params or None
            event["multiValueQueryStringParameters"] = {
                k: [v] for k, v in params.items()
            } or None
    return event


def retarget(event: dict[str, Any], path: str) -> None:
    """Point a saved event at `path`, keeping where its kind puts the stage."""
    context = event["requestContext"]
    stage = context.get("stage", "$default")
    staged = path if stage == "$default" else f"/{stage}{path}"
    if event.get("version") == "2.0":
        event["rawPath"] = context["http"]["path"] = staged
    else:
        event["path"] = path
        context["path"] = staged
    if "pathParameters" in event:
        event["pathParameters"] = {"proxy": path[1:]}


def header(response: dict[str, Any], name: str) -> str:
    matches = [v for k, v in response["headers"].items() if k.lower() == name]
    assert len(matches) == 1, response["headers"]
    return matches[0]


@pytest.fixture(scope="module")
def scripted(fake_upstream: FakeUpstream) -> FakeUpstream:
    fake_upstream.script(MODEL, Scenario())
    fake_upstream.script(ENDPOINT, Scenario())
    return fake_upstream


def _runtime(workdir: Path, name: str, env: dict[str, str]) -> LambdaRuntime:
    return LambdaRuntime(env, workdir / f"lambda-{name}.log").start()


@pytest.fixture(scope="module")
def echo_lambda(workdir: Path, keys_file: Path) -> Iterator[LambdaRuntime]:
    env = {
        "STREAMGATE_UPSTREAM": "echo",
        "STREAMGATE_KEYS": str(keys_file),
        "STREAMGATE_ECHO_DELAY_MS": "0",
    }
    runtime = _runtime(workdir, "echo", env)
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def vertex_lambda(
    workdir: Path, keys_file: Path, scripted: FakeUpstream, moto_secrets: MotoSecrets
) -> Iterator[LambdaRuntime]:
    """Vertex with Workload Identity Federation: the credential config comes from Secrets Manager."""
    env = secret_backed_env("vertex", "lambda", keys_file, scripted, moto_secrets)
    runtime = _runtime(workdir, "vertex", env)
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def gemini_lambda(
    workdir: Path, keys_file: Path, scripted: FakeUpstream, moto_secrets: MotoSecrets
) -> Iterator[LambdaRuntime]:
    env = secret_backed_env("gemini", "lambda", keys_file, scripted, moto_secrets)
    runtime = _runtime(workdir, "gemini", env)
    yield runtime
    runtime.stop()


@pytest.mark.parametrize("name", [*EVENT_FILES, "rest-v1-base64.json"])
def test_saved_events_stream_back_complete_sse(echo_lambda: LambdaRuntime, name: str):
    response = echo_lambda.invoke(load_event(name))
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is False
    assert header(response, "content-type") == "text/event-stream"
    assert header(response, "cache-control") == "no-cache"
    assert re.fullmatch(r"[0-9a-f]{32}", header(response, "x-request-id"))
    assert texts("sse", response["body"].encode()) == (PROMPT, 4)
    if "version" in json.loads((EVENTS / name).read_text()):
        assert "multiValueHeaders" not in response
    else:
        assert response["multiValueHeaders"]["Content-Type"] == ["text/event-stream"]


@pytest.mark.parametrize("index", range(len(ROUTES)))
@pytest.mark.parametrize("upstream", ["echo", "vertex"])
def test_every_route_is_served(request, upstream: str, index: int):
    """Each route form, through a rotating event kind and framing, from the echo and the fake upstream."""
    runtime: LambdaRuntime = request.getfixturevalue(f"{upstream}_lambda")
    route = ROUTES[index]
    verb, query, framing = CALLS[index % len(CALLS)]
    event_file = EVENT_FILES[index % len(EVENT_FILES)]
    event = load_event(event_file, route_path(route, verb), query)
    response = runtime.invoke(event)
    assert response["statusCode"] == 200, response["body"]
    text, _ = texts(framing, response["body"].encode())
    if upstream == "echo":
        assert text == PROMPT
        return
    fake: FakeUpstream = request.getfixturevalue("scripted")
    assert text == (" world" if framing == "unary" else "Hello world")
    name = ENDPOINT if route.template.endswith("{endpoint}") else MODEL
    sent = fake.last_request(name)
    pinned = f"/v1/projects/{PINNED_PROJECT}/locations/{PINNED_LOCATION}/"
    assert sent["path"].startswith(pinned) and sent["path"].endswith(f"/{name}:{verb}")
    assert sent["headers"]["Authorization"].startswith("Bearer ya29.fake-")
    assert sent["body"]["contents"][0]["parts"][0]["text"] == PROMPT


def test_gemini_key_from_secrets_manager_reaches_the_upstream(
    gemini_lambda: LambdaRuntime, scripted: FakeUpstream
):
    path = f"/v1beta/models/{MODEL}:streamGenerateContent"
    response = gemini_lambda.invoke(load_event("rest-v1.json", path, ""))
    assert response["statusCode"] == 200, response["body"]
    assert texts("array", response["body"].encode()) == ("Hello world", 2)
    sent = scripted.last_request(MODEL)
    assert sent["path"] == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert sent["headers"]["X-Goog-Api-Key"] == GEMINI_SECRET_VALUE


def test_the_stage_is_stripped_wherever_the_path_carries_it(echo_lambda: LambdaRuntime):
    rest = load_event("rest-v1.json")
    rest["path"] = rest["requestContext"][
        "path"
    ]  # /prod/v1beta/... (as via some custom domains)
    http = load_event("http-api-v2.json")
    assert http["rawPath"].startswith("/live/")
    for event in (rest, http):
        response = echo_lambda.invoke(event)
        assert response["statusCode"] == 200, response["body"]


def test_percent_encoded_function_url_path(echo_lambda: LambdaRuntime):
    event = load_event(
        "function-url.json", "/v1beta/models/gemini-2.5-flash%3AstreamGenerateContent"
    )
    response = echo_lambda.invoke(event)
    assert response["statusCode"] == 200, response["body"]
    assert texts("sse", response["body"].encode())[0] == PROMPT


def test_multi_value_query_parameters_reach_the_gateway(echo_lambda: LambdaRuntime):
    event = load_event("rest-v1.json")
    del event["multiValueHeaders"]["x-goog-api-key"], event["headers"]["x-goog-api-key"]
    event["multiValueQueryStringParameters"] = {"alt": ["sse"], "key": [KEYS["team-a"]]}
    assert echo_lambda.invoke(event)["statusCode"] == 200
    event["multiValueQueryStringParameters"]["alt"] = ["sse", "json"]
    response = echo_lambda.invoke(event)
    assert response["statusCode"] == 400
    assert "'alt' more than once" in json.loads(response["body"])["error"]["message"]


def test_repeated_headers_are_not_dropped(echo_lambda: LambdaRuntime):
    event = load_event("rest-v1.json")
    event["multiValueHeaders"]["x-goog-api-key"] = [KEYS["team-a"], KEYS["limited"]]
    response = echo_lambda.invoke(event)
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert (
        error["status"] == "INVALID_ARGUMENT"
        and "more than one API key" in error["message"]
    )


@pytest.mark.parametrize("name", EVENT_FILES)
def test_errors_keep_googles_shape(echo_lambda: LambdaRuntime, name: str):
    event = load_event(name, key="sg_not-a-key")
    response = echo_lambda.invoke(event)
    assert response["statusCode"] == 401
    assert header(response, "content-type") == "application/json; charset=UTF-8"
    error = json.loads(response["body"])["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")


def test_base64_body_is_decoded(echo_lambda: LambdaRuntime):
    event = load_event("rest-v1-base64.json", query="")
    assert (
        json.loads(base64.b64decode(event["body"]))["contents"][0]["parts"][0]["text"]
        == PROMPT
    )
    response = echo_lambda.invoke(event)
    assert response["statusCode"] == 200
    assert texts("array", response["body"].encode()) == (PROMPT, 4)


def test_the_handler_imports_neither_flask_nor_boto3(echo_lambda: LambdaRuntime):
    assert echo_lambda.invoke(load_event("function-url.json"))["statusCode"] == 200
    heavy = ["flask", "functions_framework", "werkzeug", "boto3", "botocore"]
    assert echo_lambda.loaded(heavy) == []
    assert echo_lambda.loaded(["lib.gateway"]) == ["lib.gateway"]


def test_one_request_log_line_per_invocation(echo_lambda: LambdaRuntime):
    before = len(echo_lambda.request_logs())
    event = load_event("http-api-v2.json")
    echo_lambda.invoke(event)
    entries = echo_lambda.request_logs()
    assert len(entries) == before + 1
    assert entries[-1]["httpRequest"]["requestUrl"] == (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    )
    assert entries[-1]["keyId"] == "team-a"


def test_function_target_limits_the_route_families(workdir: Path, keys_file: Path):
    """A per-family function (FUNCTION_TARGET, as Terraform sets it) serves only its family, as run.sh does."""
    env = {
        "STREAMGATE_UPSTREAM": "echo",
        "STREAMGATE_KEYS": str(keys_file),
        "FUNCTION_TARGET": "gemini_stream",
    }
    runtime = _runtime(workdir, "gemini-family", env)
    try:
        gemini = load_event("function-url.json")
        assert runtime.invoke(gemini)["statusCode"] == 200
        vertex_path = (
            "/v1/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
        )
        assert (
            runtime.invoke(load_event("function-url.json", vertex_path))["statusCode"]
            == 404
        )
    finally:
        runtime.stop()
