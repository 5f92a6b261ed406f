"""The three targets as real processes on 127.0.0.1: the fake upstream, nginx, and the gateway as deployed."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procstat import tree
from lib.keys.document import hash_key
from tests.support.gateway_process import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"
NGINX_TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"
GATEWAY_PATH = "/v1beta/models/bench:streamGenerateContent"


@dataclass
class Server:
    """A started process tree serving on `port`."""

    name: str
    port: int
    proc: subprocess.Popen
    started_at: float = 0.0
    log_path: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_fake(workdir: Path) -> Server:
    """The lean asyncio upstream in its own process."""
    log = open(workdir / "fake.log", "wb")  # noqa: SIM115 - lives as long as the process
    cmd = [sys.executable, "-m", "bench.fakeupstream", "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "listening":
        raise RuntimeError(f"fake upstream did not start: {line}")
    return Server("direct", int(line[1]), proc, log_path=workdir / "fake.log")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (
            p
            for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
            if os.access(p, os.X_OK)
        ),
        None,
    )


def start_nginx(workdir: Path, upstream_port: int) -> Server:
    """nginx with `proxy_buffering off`, its own config, pid and temp dirs under `workdir`."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (bench/run.sh installs it)")
    prefix = workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    port = free_port()
    conf = NGINX_TEMPLATE.read_text()
    for name, value in (
        ("PREFIX", prefix),
        ("PORT", port),
        ("UPSTREAM_PORT", upstream_port),
    ):
        conf = conf.replace(f"@@{name}@@", str(value))
    (prefix / "nginx.conf").write_text(conf)
    cmd = [
        binary,
        "-p",
        str(prefix),
        "-c",
        str(prefix / "nginx.conf"),
        "-e",
        str(prefix / "error.log"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for_port(port, proc)
    version = subprocess.run(
        [binary, "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    return Server("nginx", port, proc, notes={"version": version.split("/")[-1]})


def make_keys_file(workdir: Path) -> tuple[str, Path]:
    """A generated client key and a real keys file holding only its hash."""
    key = "sg_bench_" + secrets.token_urlsafe(24)
    path = workdir / "keys.json"
    path.write_text(json.dumps({"keys": [{"id": "bench", "sha256": hash_key(key)}]}))
    return key, path


def gateway_command(port: int) -> list[str]:
    return [
        str(FUNCTIONS_FRAMEWORK),
        "--target",
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def gateway_env(keys_path: Path, upstream_port: int, threads: int) -> dict[str, str]:
    """The deployed configuration: ASGI mode, Gemini upstream (the fake), a real keys file.

    `threads` is kept for the record only: one event loop serves every stream."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STREAMGATE_", "THREADS", "WORKERS"))
    }
    env.update(
        {
            "FUNCTION_USE_ASGI": "true",
            "STREAMGATE_UPSTREAM": "gemini",
            "STREAMGATE_KEYS": str(keys_path),
            "STREAMGATE_GEMINI_BASE_URL": f"http://127.0.0.1:{upstream_port}",
            "STREAMGATE_GEMINI_API_KEY": "bench-upstream-key",
        }
    )
    return env


def start_gateway(
    workdir: Path, keys_path: Path, upstream_port: int, threads: int
) -> Server:
    """`functions-framework --target gateway` in ASGI mode (gunicorn + uvicorn worker)."""
    port = free_port()
    log_path = workdir / f"gateway-threads{threads}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
    env = gateway_env(keys_path, upstream_port, threads)
    started = time.perf_counter()
    proc = subprocess.Popen(
        gateway_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    wait_for_port(port, proc)
    return Server(
        "gateway (ASGI)",
        port,
        proc,
        started,
        log_path,
        {"threads": str(threads)},
    )


def start_configured_gateway(
    workdir: Path,
    label: str,
    keys_path: Path,
    upstream_port: int,
    extra: dict[str, str],
) -> tuple[int, subprocess.Popen]:
    """A gateway as deployed with `extra` in its environment; its log is `workdir/{label}.log`."""
    port = free_port()
    env = {**gateway_env(keys_path, upstream_port, 0), **extra}
    log = open(workdir / f"{label}.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        gateway_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    wait_for_port(port, proc)
    return port, proc
