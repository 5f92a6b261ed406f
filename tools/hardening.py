"""Hardening: helpers shared by the hardening tests, and the report (`python -m tools.hardening`).

The tests (`tests/test_{fuzz_spec,paths_property,hostile,faults_load,disconnects,trace}.py`) run
bounded versions in CI. The report runs the same tests in-process with `HARDENING_SCALE` (default
10) times the examples, streams and clients, collects what they `record()`, scans every gateway log
for the run's secrets and prints the table quoted in `docs/reliability.md`.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import http.client
import json
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCALE_ENV = "HARDENING_SCALE"
RESULTS_ENV = "HARDENING_RESULTS"
TEST_FILES = tuple(
    f"tests/test_{name}.py"
    for name in (
        "fuzz_spec",
        "paths_property",
        "hostile",
        "faults_load",
        "disconnects",
        "trace",
    )
)
ROOT = Path(__file__).resolve().parent.parent


def scaled(n: int) -> int:
    """`n` times `HARDENING_SCALE` (1 in CI), at least 1."""
    return max(1, round(n * float(os.environ.get(SCALE_ENV) or 1)))


def record(section: str, **values: Any) -> None:
    """Append one result line for the report; a no-op unless `HARDENING_RESULTS` names a file."""
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"section": section, **values}, default=str) + "\n")


# --- raw HTTP: bytes exactly as written, so no client normalises the path ---------------------


@dataclass
class RawResponse:
    """One HTTP response read off a socket; header names lower-case."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def from_gateway(self) -> bool:
        """False for answers gunicorn gives itself to malformed HTTP (no request id)."""
        return "x-request-id" in self.headers


def http_request(
    method: str,
    target: bytes,
    headers: Sequence[tuple[str, str | bytes]] = (),
    body: bytes = b"",
    *,
    content_length: int | None = None,
) -> bytes:
    """A raw HTTP/1.1 request; `content_length=-1` leaves the header out (e.g. for chunked)."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    for name, value in headers:
        lines.append(
            name.encode()
            + b": "
            + (value if isinstance(value, bytes) else value.encode())
        )
    length = len(body) if content_length is None else content_length
    if length >= 0:
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def read_response(sock: socket.socket) -> RawResponse:
    """Read one response (Content-Length, chunked or until close) from a connected socket."""
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    body = resp.read()
    return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)


def send_raw(port: int, data: bytes, timeout_s: float = 15.0) -> RawResponse:
    """Send `data` to 127.0.0.1:`port` and read the answer; a hang raises `TimeoutError`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        return read_response(sock)


def valid_http_target(target: bytes) -> bool:
    """True if HTTP/1.1 allows these request-target bytes (visible ASCII only)."""
    return all(0x21 <= b <= 0x7E for b in target)


# --- what a client must see ---------------------------------------------------------------------


def error_problem(status: int, body: bytes, path: str) -> str | None:
    """Why `body` is not Google's error shape for `status` (platform fields on `/api/`), or None."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "body is not JSON"
    platform = path.startswith("/api/")
    if isinstance(doc, list) and len(doc) == 1 and not platform:
        doc = doc[0]  # JSON-array framing wraps a pre-stream error, as Google does
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return "no 'error' object"
    if type(error.get("code")) is not int or error["code"] != status:
        return f"error.code {error.get('code')!r} is not the HTTP status {status}"
    if not isinstance(error.get("message"), str) or not isinstance(
        error.get("status"), str
    ):
        return "error.message / error.status are not strings"
    if platform and (
        doc.get("success") is not False
        or doc.get("code") != str(status)
        or doc.get("message") != error["message"]
    ):
        return "platform fields (success, code, message) missing"
    return None


def parse_stream(content_type: str, body: bytes) -> list[Any]:
    """The chunks of a 200 body: SSE `data:` events or the JSON array; ValueError if malformed."""
    if content_type.startswith("text/event-stream"):
        if body and not body.endswith(b"\r\n\r\n"):
            raise ValueError("the last SSE event is cut off")
        events = []
        for block in body.split(b"\r\n\r\n")[:-1]:
            if not block.startswith(b"data: "):
                raise ValueError("an SSE block is not a data event")
            events.append(json.loads(block[6:]))
        return events
    doc = json.loads(body)
    if isinstance(doc, list):
        return doc
    raise ValueError("the stream is not a JSON array")


def _error_element(event: Any) -> bool:
    error = event.get("error") if isinstance(event, dict) else None
    return (
        isinstance(error, dict)
        and type(error.get("code")) is int
        and isinstance(error.get("message"), str)
        and isinstance(error.get("status"), str)
    )


def classify_stream(
    status: int, content_type: str, body: bytes, path: str, chunks: int | None = None
) -> tuple[str, str]:
    """('complete' | 'errored' | 'lost', detail): errored means a well-formed Google error."""
    if status != 200:
        problem = error_problem(status, body, path)
        return ("errored", f"HTTP {status}") if problem is None else ("lost", problem)
    try:
        events = parse_stream(content_type, body)
    except ValueError as exc:
        return "lost", f"malformed stream: {exc}"
    if events and _error_element(events[-1]):
        return "errored", f"mid-stream {events[-1]['error']['code']}"
    last = events[-1] if events and isinstance(events[-1], dict) else {}
    finish = (last.get("candidates") or [{}])[0].get("finishReason")
    if finish != "STOP" or any("error" in e for e in events):
        return "lost", "ended without a finishReason or a final error"
    if chunks is not None and len(events) != chunks:
        return "lost", f"{len(events)} chunks, expected {chunks}"
    return "complete", ""


def leaked(texts: Iterable[str | bytes], secrets: Iterable[str]) -> list[str]:
    """The secrets (first 12 characters only) found in any of `texts`."""
    blobs = [t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts]
    return sorted({s[:12] for s in secrets for blob in blobs if s and s in blob})


# --- the gunicorn worker from outside: /proc ---------------------------------------------------


@dataclass(frozen=True)
class ProcStats:
    """Open sockets, threads and resident memory of one process."""

    sockets: int
    threads: int
    rss_mb: float


def worker_pid(master_pid: int, timeout_s: float = 10.0) -> int:
    """The gunicorn worker (the only child) of the functions-framework process."""
    deadline = time.monotonic() + timeout_s
    children_file = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    while time.monotonic() < deadline:
        children = children_file.read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn master {master_pid} has no worker")


def proc_stats(pid: int) -> ProcStats:
    """Sockets among `/proc/<pid>/fd`, and `Threads` / `VmRSS` from `/proc/<pid>/status`."""
    sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            sockets += os.readlink(fd).startswith("socket:")
        except OSError:
            pass  # closed while we looked
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    rss_kb = int(status["VmRSS"].split()[0])
    return ProcStats(sockets, int(status["Threads"]), round(rss_kb / 1024, 1))


def settle(
    pid: int, sockets: int, threads: int, slack: int = 5, timeout_s: float = 30.0
) -> ProcStats:
    """Poll until the worker has at most `sockets` and `threads` (+ `slack`), or time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = proc_stats(pid)
        back = now.sockets <= sockets + slack and now.threads <= threads + slack
        if back or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


# --- spec-driven fuzzing -------------------------------------------------------------------------

# Path values that route, so a share of the fuzz cases gets past routing into keys and bodies.
ROUTABLE: dict[str, tuple[str, ...]] = {
    "project": ("pinned-proj", "p-1"),
    "location": ("us-central1", "global"),
    "publisher": ("google", "anthropic"),
    "model_action": (
        "gemini-2.5-flash:streamGenerateContent",
        "gemini-pro:generateContent",
        "gemini-2.5-pro:streamGenerateContent",
    ),
    "endpoint_action": ("1234567890:streamGenerateContent",),
}


def fuzz_spec() -> dict[str, Any]:
    """`tools.openapi.build_spec()`, with free-form objects capped at 4 keys and arrays at 3 items.

    Every body that fits the capped spec also fits the real one; uncapped, hypothesis spends
    ~0.15 s building each random nested `generationConfig`, ten times the request itself.
    """
    from tools.openapi import build_spec

    spec = build_spec()
    spec["definitions"] = copy.deepcopy(spec["definitions"])
    _cap(spec["definitions"])
    return spec


def _cap(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object":
            node.setdefault("maxProperties", 4)
        if node.get("type") == "array":
            node.setdefault("maxItems", 3)
        for value in node.values():
            _cap(value)
    elif isinstance(node, list):
        for value in node:
            _cap(value)


# --- streams under faults ------------------------------------------------------------------------

FAULT_KINDS = (
    "ok",
    "slow-first-byte",
    "http-500",
    "http-429",
    "drop",
    "stall",
    "error-mid",
)
FAULT_CHUNKS = 6


def fault_scenario(kind: str) -> Any:
    """The fake upstream's script for one fault kind (model `fault-<kind>`)."""
    from tests.fakes import Scenario, chunk

    chunks = [chunk(f"part {i} ") for i in range(FAULT_CHUNKS - 1)]
    chunks.append(chunk("end", last=True))
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}
    scripts = {
        "ok": {},
        "slow-first-byte": {"first_byte_delay_s": 0.3},
        "http-500": {"status": 500},
        "http-429": {
            "status": 429,
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [retry],
            },
        },
        "drop": {"drop_after": 3},
        "stall": {"stall_after": 2},
        "error-mid": {"error_after": 3},
    }
    return Scenario(chunks=chunks, delay_s=0.05, **scripts[kind])


@dataclass
class StreamResult:
    """What every client of a load run saw."""

    outcomes: Counter = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    error_bodies: list[bytes] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(n for (_, o), n in self.outcomes.items() if o == outcome)


def stream_once(
    base_url: str, kind: str, sse: bool, key: str, prompt: str
) -> tuple[str, str, bytes]:
    """One client: stream `fault-<kind>` and classify what arrived (a hang is 'lost')."""
    import requests

    path = f"/v1beta/models/fault-{kind}:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    try:
        resp = requests.post(
            base_url + path + ("?alt=sse" if sse else ""),
            json=body,
            headers={"x-goog-api-key": key},
            timeout=(10, 30),
        )
    except requests.RequestException as exc:
        return "lost", f"{type(exc).__name__}: {exc}", b""
    ctype = resp.headers.get("content-type", "")
    outcome, detail = classify_stream(
        resp.status_code, ctype, resp.content, path, FAULT_CHUNKS
    )
    return outcome, detail, resp.content if outcome != "complete" else b""


def run_streams(
    base_url: str,
    clients: int,
    key: str,
    prompt: str,
    kinds: Sequence[str] = FAULT_KINDS,
) -> StreamResult:
    """`clients` concurrent streams, round-robin over `kinds` and both framings."""
    result = StreamResult()
    jobs = [(kinds[i % len(kinds)], bool(i // len(kinds) % 2)) for i in range(clients)]
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [
            pool.submit(stream_once, base_url, k, sse, key, prompt) for k, sse in jobs
        ]
        for (kind, _), future in zip(jobs, futures):
            outcome, detail, body = future.result()
            result.outcomes[(kind, outcome)] += 1
            if outcome == "lost":
                result.lost.append(f"{kind}: {detail}")
            if body:
                result.error_bodies.append(body)
    return result


# --- the report ----------------------------------------------------------------------------------


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _sum(rows: list[dict[str, Any]], section: str, key: str) -> int:
    return sum(int(r.get(key, 0)) for r in rows if r["section"] == section)


def _first(rows: list[dict[str, Any]], section: str) -> dict[str, Any]:
    return next((r for r in rows if r["section"] == section), {})


def _pair(row: dict[str, Any], *keys: str) -> str:
    return " / ".join(str(row.get(k, "-")) for k in keys)


def render_table(
    rows: list[dict[str, Any]], log_leaks: list[str], secrets: int, scale: float
) -> str:
    """The markdown tables of one report run."""
    load, disc = _first(rows, "load"), _first(rows, "disconnects")
    totals = {
        f"{section}.{key}": _sum(rows, section, key)
        for section, key in (
            ("fuzz", "cases"),
            ("fuzz", "failures"),
            ("paths", "examples"),
            ("paths", "violations"),
            ("paths_http", "sent"),
            ("paths_http", "off_pin"),
        )
    }
    leaks = _sum(rows, "leaks", "hits") + len(log_leaks)
    checks = [
        (
            "fuzz cases run (schemathesis, spec from `tools.openapi`)",
            totals["fuzz.cases"],
        ),
        (
            "fuzz failures (5xx, non-Google 4xx, bad stream, hang)",
            totals["fuzz.failures"],
        ),
        (
            "path property examples / violations",
            _pair(totals, "paths.examples", "paths.violations"),
        ),
        (
            "hostile paths over HTTP / upstream URLs off the pin",
            _pair(totals, "paths_http.sent", "paths_http.off_pin"),
        ),
        (
            "streams under faults: completed / errored / lost",
            _pair(load, "completed", "errored", "lost"),
        ),
        (
            "disconnected clients / upstream closed / sockets left",
            _pair(disc, "clients", "upstream_closed", "sockets_left"),
        ),
        (
            "worker sockets before / after the load",
            _pair(load, "sockets_before", "sockets_after"),
        ),
        (
            "worker threads before / after the load",
            _pair(load, "threads_before", "threads_after"),
        ),
        (
            "worker RSS MB before / after the load",
            _pair(load, "rss_before", "rss_after"),
        ),
        (f"leaked secrets in error bodies and logs ({secrets} sought)", leaks),
    ]
    lines = [
        f"Hardening report {datetime.date.today().isoformat()}, scale {scale:g}",
        "",
        "| check | result |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in checks),
        "",
        "| hostile input | status | outcome |",
        "|---|---|---|",
        *(
            f"| {r['name']} | {r['status']} | {r['outcome']} |"
            for r in rows
            if r["section"] == "hostile"
        ),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the hardening tests at `--scale`, then print the table; non-zero on any failure."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.hardening", description=__doc__
    )
    parser.add_argument(
        "--scale", type=float, default=10.0, help="multiplier (CI uses 1)"
    )
    args = parser.parse_args(argv)
    import pytest

    with tempfile.TemporaryDirectory(prefix="hardening-") as tmp:
        results = Path(tmp) / "results.jsonl"
        os.environ[SCALE_ENV], os.environ[RESULTS_ENV] = f"{args.scale:g}", str(results)
        os.chdir(ROOT)
        code = pytest.main(
            [*TEST_FILES, "-q", "-p", "no:cacheprovider", f"--basetemp={tmp}/pytest"]
        )
        from tests.conftest import SECRETS

        logs = [p.read_text(errors="replace") for p in Path(tmp).rglob("*.log")]
        log_leaks = leaked(logs, SECRETS)
        rows = _load(results)
    print()
    print(render_table(rows, log_leaks, len(SECRETS), args.scale))
    failed = code != 0 or log_leaks or _first(rows, "load").get("lost", 1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
