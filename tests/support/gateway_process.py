"""The gateway as deployed: `functions-framework --target ...` (gunicorn) in a subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.paths import ROOT

FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            # Short: the benchmark starts its servers through this wait too.
            time.sleep(0.01)
    raise TimeoutError(f"nothing listening on {port} after {timeout_s} s")


class GatewayProcess:
    """One gateway server; its stdout (the request log) goes to `log_path`."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        target: str = "gateway",
        threads: int = 32,
    ):
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("STREAMGATE_")
        }
        self.env.update(
            {
                "FUNCTION_USE_ASGI": "true",
                "STREAMGATE_SHUTDOWN_GRACE_S": "1",
                "PYTHONUNBUFFERED": "1",
                **env,
            }
        )
        self.target = target
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> GatewayProcess:
        self.port = free_port()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = [
            str(FUNCTIONS_FRAMEWORK),
            "--target",
            self.target,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_entries(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    pass
        return entries

    def request_logs(self) -> list[dict[str, Any]]:
        return [e for e in self.log_entries() if "httpRequest" in e]
