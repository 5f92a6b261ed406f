"""`python -m bench.limits`: first-chunk latency a limits store adds, side by side in one run.

Gateways as deployed (echo-free: the bench's fake upstream) with `STREAMGATE_LIMITS` unset, a real
`redis-server` on loopback and DynamoDB in moto's server, each serving a key with per-minute,
concurrency and daily limits at c=1. Writes the table into bench/RESULTS.md's "Limits store" section.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.loadclient import Plan, run_load
from bench.report import added_rows, section_table, write_section
from bench.servers import (
    GATEWAY_PATH,
    ROOT,
    start_configured_gateway,
    start_fake,
)
from lib.keys.document import hash_key

KEY = "sg_bench-limits-" + "L" * 32
# The same gateway and store for a key without limits: what the limits layer itself costs.
PLAIN_KEY = "sg_bench-plain-" + "P" * 32
LIMITS = {
    "requestsPerMinute": 100000,
    "concurrentStreams": 1000,
    "tokensPerDay": 10**12,
}
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Limits store"


def _keys_file(workdir: Path) -> Path:
    path = workdir / "limits-keys.json"
    entry = {"id": "bench-limits", "sha256": hash_key(KEY), "limits": LIMITS}
    plain = {"id": "bench-plain", "sha256": hash_key(PLAIN_KEY)}
    path.write_text(json.dumps({"keys": [entry, plain]}))
    return path


def _first_chunk_ms(port: int, requests: int, key: str = KEY) -> tuple[float, int]:
    plan = Plan(port, GATEWAY_PATH, key, "sse", 20, 5, 1, requests)
    result = asyncio.run(run_load(plan))
    times = [
        r.first_chunk_ms for r in result.results if not r.error and r.first_chunk_ms
    ]
    errors = sum(1 for r in result.results if r.error)
    return statistics.median(times), errors


def _stores(workdir: Path) -> dict[str, dict[str, str]]:
    from tests.support.cloud import aws_env, moto_endpoint
    from tests.support.redis_server import RedisServer

    redis = RedisServer(workdir).start()
    env = aws_env()
    env["AWS_ENDPOINT_URL_DYNAMODB"] = moto_endpoint()
    os.environ.update(env)
    from lib.limits.dynamodb_table import create_table

    create_table("bench-limits")
    return {
        "memory (per instance)": {"STREAMGATE_LIMITS": "memory"},
        "redis-server on loopback": {"STREAMGATE_LIMITS": redis.url},
        "DynamoDB (moto server)": {
            "STREAMGATE_LIMITS": "dynamodb://bench-limits",
            **env,
        },
    }


def main(requests: int = 300, rounds: int = 3) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="streamgate-bench-limits-"))
    fake = start_fake(workdir)
    keys = _keys_file(workdir)
    stores = _stores(workdir)
    started = {
        n: start_configured_gateway(workdir, f"limits-{i}", keys, fake.port, e)
        for i, (n, e) in enumerate(stores.items())
    }
    plain = "a key without limits (memory store)"
    medians: dict[str, list[float]] = {name: [] for name in [plain, *stores]}
    errors = dict.fromkeys(medians, 0)
    memory_port = started["memory (per instance)"][0]
    try:
        for name, (port, _) in started.items():
            _first_chunk_ms(port, 20)
        for _ in range(rounds):
            p50, failed = _first_chunk_ms(memory_port, requests, PLAIN_KEY)
            medians[plain].append(p50)
            errors[plain] += failed
            for name, (port, _) in started.items():
                p50, failed = _first_chunk_ms(port, requests)
                medians[name].append(p50)
                errors[name] += failed
    finally:
        for _, proc in started.values():
            proc.terminate()
        fake.stop()
    rows = added_rows(medians, "memory (per instance)", errors)
    prose = [
        f"c=1, {rounds} interleaved rounds of {requests} SSE requests (20 chunks 5 ms apart), one key with",
        "per-minute, concurrency and daily limits: one admission round trip before the upstream, one",
        "settle (usage recorded) at the end; first, the same gateway with a key without limits.",
        "Added = p50 first chunk minus the per-instance store's (limits on the key).",
    ]
    columns = ["Store", "First chunk p50 ms", "Added ms", "Errors"]
    return section_table(SECTION, prose, columns, rows)


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
    print(result)
    write_section(RESULTS, SECTION, result)
