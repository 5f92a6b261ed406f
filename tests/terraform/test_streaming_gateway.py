"""terraform/gcp/scripts/streaming_gateway.py run against a fake API Gateway REST API on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.hcl import SCRIPT


class FakeApiGateway(BaseHTTPRequestHandler):
    """Just enough of apigateway.googleapis.com/v1 gateways and operations."""

    gateways: ClassVar[dict[str, dict[str, Any]]] = {}
    calls: ClassVar[list[tuple[str, str, dict[str, Any] | None]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((self.command, self.path, body))
        if self.headers.get("Authorization") != "Bearer test-token":
            return self._reply(401, {"error": {"code": 401}})
        name = url.path.removeprefix("/v1/")
        operation = {"name": f"{name}/operations/op", "done": False}
        if "/operations/" in name:
            return self._reply(200, {"name": name, "done": True})
        if self.command == "POST":
            gateway_id = parse_qs(url.query)["gatewayId"][0]
            mode = body.get("streamingMode", "")
            self.gateways[f"{name}/{gateway_id}"] = {
                "name": f"{name}/{gateway_id}",
                "apiConfig": body["apiConfig"],
                "streamingMode": mode,
                "effectiveStreamingMode": "EFFECTIVE_STREAMING_MODE_ENABLED"
                if mode == "STREAMING_MODE_ENABLED"
                else "EFFECTIVE_STREAMING_MODE_DISABLED",
                "defaultHostname": f"{gateway_id}-abc.uc.gateway.dev",
                "state": "ACTIVE",
            }
            return self._reply(200, operation)
        if name not in self.gateways:
            return self._reply(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        if self.command == "GET":
            return self._reply(200, self.gateways[name])
        if self.command == "PATCH":
            assert parse_qs(url.query)["updateMask"] == ["apiConfig"]
            self.gateways[name]["apiConfig"] = body["apiConfig"]
            return self._reply(200, operation)
        if self.command == "DELETE":
            del self.gateways[name]
            return self._reply(200, operation)
        return self._reply(405, {})

    do_GET = do_POST = do_PATCH = do_DELETE = _handle


@pytest.fixture
def fake_api() -> Iterator[str]:
    FakeApiGateway.gateways = {}
    FakeApiGateway.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiGateway)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


CONFIG_1 = "projects/p/locations/global/apis/streamgate-api/configs/streamgate-aaa"
CONFIG_2 = "projects/p/locations/global/apis/streamgate-api/configs/streamgate-bbb"
GATEWAY_NAME = "projects/p/locations/us-central1/gateways/streamgate-gateway"


def run_script(endpoint: str, command: str, stdin: str = "", **settings: str):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "STREAMGATE_APIGATEWAY_ENDPOINT": endpoint,
        "GOOGLE_OAUTH_ACCESS_TOKEN": "test-token",
        "STREAMGATE_GW_POLL_S": "0.01",
        "STREAMGATE_GW_PROJECT": "p",
        "STREAMGATE_GW_REGION": "us-central1",
        "STREAMGATE_GW_ID": "streamgate-gateway",
        **settings,
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), command],
        check=False,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_script_creates_the_gateway_with_streaming(fake_api: str) -> None:
    result = run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_1)
    assert result.returncode == 0, result.stderr
    assert "https://streamgate-gateway-abc.uc.gateway.dev" in result.stdout
    posts = [c for c in FakeApiGateway.calls if c[0] == "POST"]
    assert len(posts) == 1
    _, path, body = posts[0]
    assert path.endswith("/gateways?gatewayId=streamgate-gateway")
    assert body["streamingMode"] == "STREAMING_MODE_ENABLED"
    assert body["apiConfig"] == CONFIG_1
    assert any("/operations/" in c[1] for c in FakeApiGateway.calls)


def test_script_moves_the_gateway_to_a_new_config(fake_api: str) -> None:
    run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_1)
    FakeApiGateway.calls.clear()
    result = run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_2)
    assert result.returncode == 0, result.stderr
    methods = [c[0] for c in FakeApiGateway.calls]
    assert "POST" not in methods and "PATCH" in methods
    assert FakeApiGateway.gateways[GATEWAY_NAME]["apiConfig"] == CONFIG_2
    FakeApiGateway.calls.clear()
    assert (
        run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_2).returncode
        == 0
    )
    assert [c[0] for c in FakeApiGateway.calls] == ["GET", "GET"]


def test_script_refuses_a_gateway_made_without_streaming(fake_api: str) -> None:
    FakeApiGateway.gateways[GATEWAY_NAME] = {
        "name": GATEWAY_NAME,
        "apiConfig": CONFIG_1,
        "effectiveStreamingMode": "EFFECTIVE_STREAMING_MODE_DISABLED",
    }
    result = run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_2)
    assert result.returncode == 1
    assert "created without streaming" in result.stderr
    assert not [c for c in FakeApiGateway.calls if c[0] in ("PATCH", "POST")]


def test_script_describes_and_deletes(fake_api: str) -> None:
    query = json.dumps(
        {"project": "p", "region": "us-central1", "gateway": "streamgate-gateway"}
    )
    missing = run_script(fake_api, "describe", stdin=query)
    assert missing.returncode == 0, missing.stderr
    assert json.loads(missing.stdout)["exists"] == "false"
    run_script(fake_api, "ensure", STREAMGATE_GW_API_CONFIG=CONFIG_1)
    found = json.loads(run_script(fake_api, "describe", stdin=query).stdout)
    assert found["effective_streaming_mode"] == "EFFECTIVE_STREAMING_MODE_ENABLED"
    assert found["default_hostname"] == "streamgate-gateway-abc.uc.gateway.dev"
    assert all(isinstance(v, str) for v in found.values())  # the external protocol
    assert run_script(fake_api, "delete").returncode == 0
    assert GATEWAY_NAME not in FakeApiGateway.gateways
    assert run_script(fake_api, "delete").returncode == 0  # already gone


def test_script_reports_missing_settings(fake_api: str) -> None:
    result = run_script(fake_api, "ensure")
    assert result.returncode == 1
    assert "STREAMGATE_GW_API_CONFIG" in result.stderr
    assert run_script(fake_api, "bogus").returncode == 1
