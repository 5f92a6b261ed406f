"""The README's "Try it" section, run as written: `make run`, then each curl line with curl."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateway_process import free_port, wait_for_port
from tests.support.paths import ROOT

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("make")), reason="needs curl and make"
)


def _try_it_commands() -> tuple[str, list[str]]:
    """The key assignment and each curl command of the README's first bash block."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands = []
    for group in block.strip().split("\n\n"):  # a blank line ends each command
        lines = [ln for ln in group.splitlines() if not ln.startswith("#")]
        commands.append("\n".join(lines))
    return commands[0], commands[1:]


KEY_LINE, COMMANDS = _try_it_commands()


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    """`make run` exactly as the README starts it, on a free port, with its own keys file."""
    tmp = tmp_path_factory.mktemp("make-run")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGATE_")}
    # This interpreter's venv as make's, and no reinstall into it (-o: treat as up to date).
    args = [f"PORT={port}", f"KEYS_FILE={tmp / 'keys.json'}", f"VENV={sys.prefix}"]
    args += ["-o", f"{sys.prefix}/.runtime"]
    with open(tmp / "make-run.log", "wb") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, proc, timeout_s=60)
        yield port, tmp
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _run(command: str, port: int, tmp: Path) -> str:
    script = f"{KEY_LINE}\n{command}".replace("localhost:8080", f"localhost:{port}")
    script = script.replace(".local/dev-key.txt", str(tmp / "dev-key.txt"))
    done = subprocess.run(
        ["bash", "-c", "set -eu\n" + script],
        check=False,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def test_readme_has_the_curl_lines_this_test_expects():
    assert KEY_LINE == "KEY=$(cat .local/dev-key.txt)"
    assert len(COMMANDS) == 5 and all(c.startswith("curl ") for c in COMMANDS)


def test_make_run_prints_the_dev_key(make_run):
    _port, tmp = make_run
    key = (tmp / "dev-key.txt").read_text().strip()
    assert f"streamgate dev key (keys file {tmp / 'keys.json'}): {key}" in (
        (tmp / "make-run.log").read_text()
    )


@pytest.mark.parametrize("index", [0, 3])
def test_array_curl_lines_stream_a_json_array(make_run, index):
    chunks = json.loads(_run(COMMANDS[index], *make_run))
    assert chunks and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("index", [1, 2])
def test_sse_curl_lines_stream_events(make_run, index):
    out = _run(COMMANDS[index], *make_run)
    events = out.split("\r\n\r\n")
    assert events[-1] == "" and len(events) >= 2
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(e.startswith("data: {") for e in events[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_keyless_curl_line_gets_a_401_in_googles_shape(make_run):
    out = _run(COMMANDS[4], *make_run)
    head, body = out.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 401")
    doc = json.loads(body)  # without alt=sse: Vertex's array, `[{"error": ...}]`
    error = (doc[0] if isinstance(doc, list) else doc)["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    assert error["message"]
