"""Start-up costs: `import main` (python -X importtime) and cold start to the first response byte."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.servers import GATEWAY_PATH, ROOT, free_port, gateway_command, gateway_env


@dataclass
class ImportTime:
    """One `import main`: cumulative ms, ms with functions-framework and Flask already loaded
    (as when the server imports main), and the packages that took longest."""

    total_ms: float
    own_ms: float
    heaviest: list[tuple[str, float]]


def _importtime(code: str) -> tuple[float, list[tuple[str, float]]]:
    """`main`'s cumulative import ms in a fresh interpreter running `code`, and the
    packages that took longest (own time summed per top-level package)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGATE_")}
    cmd = [sys.executable, "-X", "importtime", "-c", code]
    out = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stderr
    total, packages = 0.0, Counter()
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        if name.strip() == "main" and not name.startswith("  "):
            total = int(cumulative) / 1000
        packages[name.strip().split(".")[0]] += int(own) / 1000
    return total, packages.most_common(6)


def import_time() -> ImportTime:
    """`python -X importtime -c 'import main'`, then again after functions_framework + flask."""
    total, heaviest = _importtime("import main")
    own, _ = _importtime("import functions_framework, flask; import main")
    return ImportTime(total, own, heaviest)


def _request(port: int, key: str) -> bytes:
    body = json.dumps(
        {"contents": [{"parts": [{"text": "bench chunks=1 interval_ms=0"}]}]}
    )
    return (
        f"POST {GATEWAY_PATH}?alt=sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"x-goog-api-key: {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    ).encode()


def _first_byte(port: int, key: str, proc: subprocess.Popen, deadline: float) -> bytes:
    """Connect as soon as the port is open, send one request, return the response's first bytes."""
    while time.perf_counter() < deadline and proc.poll() is None:
        try:
            sock = socket.create_connection(
                ("127.0.0.1", port), timeout=deadline - time.perf_counter()
            )
        except ConnectionRefusedError:
            time.sleep(0.002)
            continue
        with sock:
            sock.sendall(_request(port, key))
            return sock.recv(65536)
    raise TimeoutError("the gateway did not answer")


def cold_start(keys: tuple[str, Path], upstream_port: int, threads: int) -> float:
    """Seconds from spawning `functions-framework` to the first byte of the first response."""
    port = free_port()
    env = gateway_env(keys[1], upstream_port, threads)
    started = time.perf_counter()
    proc = subprocess.Popen(
        gateway_command(port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first = _first_byte(port, keys[0], proc, started + 30)
        elapsed = time.perf_counter() - started
        if not first.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"cold start answered {first[:40]!r}")
        return elapsed
    finally:
        proc.terminate()
        proc.wait(15)
