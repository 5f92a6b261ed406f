"""`python -m bench.failover`: first-chunk latency of an upstream list, side by side in one run.

Gateways as deployed over the bench's fake upstream: the single upstream (the baseline); a list
whose first upstream is healthy; and a list whose first upstream refuses connections, measured on
the calls that fail over (the first five of a fresh instance) and once it is passed over (after
five failures in a row). Writes the table into bench/RESULTS.md's "Upstream failover" section.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.loadclient import Plan, run_load
from bench.report import added_rows, section_table, write_section
from bench.servers import (
    GATEWAY_PATH,
    ROOT,
    free_port,
    start_configured_gateway,
    start_fake,
)
from lib.keys.document import hash_key
from lib.upstreams.failover import FAILURES_TO_SKIP

KEY = "sg_bench-failover-" + "F" * 32
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Upstream failover"


def _keys_file(workdir: Path) -> Path:
    path = workdir / "failover-keys.json"
    path.write_text(json.dumps({"keys": [{"id": "bench", "sha256": hash_key(KEY)}]}))
    return path


def _gemini(name: str, port: int) -> dict[str, str]:
    return {
        "kind": "gemini",
        "name": name,
        "baseUrl": f"http://127.0.0.1:{port}",
        "apiKeyEnv": "STREAMGATE_GEMINI_API_KEY",
    }


def _start(
    workdir: Path, label: str, keys: Path, upstream: int, upstreams: list | None
):
    extra = {} if upstreams is None else {"STREAMGATE_UPSTREAMS": json.dumps(upstreams)}
    return start_configured_gateway(workdir, f"failover-{label}", keys, upstream, extra)


def _first_chunks_ms(port: int, requests: int) -> tuple[list[float], int]:
    plan = Plan(port, GATEWAY_PATH, KEY, "sse", 20, 5, 1, requests)
    result = asyncio.run(run_load(plan))
    times = [
        r.first_chunk_ms for r in result.results if not r.error and r.first_chunk_ms
    ]
    return times, sum(1 for r in result.results if r.error)


def main(requests: int = 300, rounds: int = 3, fresh: int = 6) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="streamgate-bench-failover-"))
    fake = start_fake(workdir)
    keys = _keys_file(workdir)
    refused = [_gemini("refused", free_port()), _gemini("fake", fake.port)]
    steady = {
        "one upstream (STREAMGATE_UPSTREAM)": None,
        "a list, the first upstream healthy": [
            _gemini("fake", fake.port),
            _gemini("spare", free_port()),
        ],
        "a list, the first refusing and passed over": refused,
    }
    started = {
        name: _start(workdir, str(i), keys, fake.port, ups)
        for i, (name, ups) in enumerate(steady.items())
    }
    samples: dict[str, list[float]] = {name: [] for name in steady}
    failing_over = (
        f"a list, the first refusing: the {FAILURES_TO_SKIP} calls that fail over"
    )
    samples[failing_over] = []
    errors = dict.fromkeys(samples, 0)
    try:
        for port, _ in started.values():
            # Warm-up; it also passes the refusing upstream over.
            _first_chunks_ms(port, 20)
        for _ in range(rounds):
            for name, (port, _) in started.items():
                times, failed = _first_chunks_ms(port, requests)
                samples[name].append(statistics.median(times))
                errors[name] += failed
        for i in range(fresh):
            port, proc = _start(workdir, f"fresh-{i}", keys, fake.port, refused)
            try:
                times, failed = _first_chunks_ms(port, FAILURES_TO_SKIP)
                # The first call of an instance also opens its first connections: left out.
                samples[failing_over].extend(times[1:])
                errors[failing_over] += failed
            finally:
                proc.terminate()
    finally:
        for _, proc in started.values():
            proc.terminate()
        fake.stop()
    rows = added_rows(samples, "one upstream (STREAMGATE_UPSTREAM)", errors)
    prose = [
        f"c=1, SSE requests (20 chunks 5 ms apart) through gateways over one fake upstream: {rounds}",
        f"interleaved rounds of {requests} for the steady states; for failing over, {fresh} fresh",
        f"instances, calls 2 to {FAILURES_TO_SKIP} of each (the first also opens the pool).",
        "Added = p50 first chunk minus the single upstream's.",
    ]
    columns = ["Gateway", "First chunk p50 ms", "Added ms", "Errors"]
    return section_table(SECTION, prose, columns, rows)


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
    print(result)
    write_section(RESULTS, SECTION, result)
