"""`python -m bench.limits_burst`: a burst of first admissions on a cold instance, bounded or not.

What a new instance's first requests at once cost in the Redis store: each round opens a new
`RedisStore` (as a cold instance does) and admits 100, then 200, calls concurrently against a real
`redis-server` on loopback, with the deployed timeout (0.5 s). Side by side in one run, interleaved:
the store as it ships (at most `MAX_CONNECTIONS` calls in flight, so as many connections) and the same
store without that bound (redis-py's own pool: a connection per call that finds none free, as before).
Then the same again with two busy processes on this machine's two cores, as on a loaded CI runner or
a throttled instance. Writes bench/RESULTS.md's "Limits store: a burst on a cold instance" section.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis as redis_client

from bench.report import section_table, write_section
from bench.servers import ROOT
from lib.limits.base import StoreUnavailable
from lib.limits.estimate import TokenEstimate
from lib.limits.limiter import Limiter
from lib.limits.policy import parse_limits
from lib.limits.redis import MAX_CONNECTIONS, RedisStore

BURSTS = (100, 200)
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Limits store: a burst on a cold instance"
LIMITS = parse_limits({"requestsPerMinute": 10**6})


async def _burst(url: str, burst: int, max_connections: int) -> tuple[list[float], int]:
    """Per-call admission ms for `burst` calls at once on a new store, and how many failed."""
    limiter = Limiter(RedisStore(url, max_connections=max_connections))
    key = f"burst-{uuid.uuid4().hex[:8]}"

    async def one() -> float | None:
        start = time.perf_counter()
        try:
            await limiter.admit(key, LIMITS, "gemini-2.5-flash", TokenEstimate(10, 90))
        except StoreUnavailable:
            return None
        return (time.perf_counter() - start) * 1000

    try:
        times = await asyncio.gather(*(one() for _ in range(burst)))
    finally:
        await limiter.close()
    return [t for t in times if t is not None], sum(t is None for t in times)


def _spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


# Before: no bound of ours, so redis-py's own pool opens a connection per call that finds none free,
# up to its default cap (100 in redis-py 8; unbounded in 5) and fails the calls beyond it at once.
POOLS = {
    f"at most {MAX_CONNECTIONS} calls in flight (as shipped)": MAX_CONNECTIONS,
    "redis-py's own pool (before)": 10**6,
}


def _rows(url: str, rounds: int, label: str) -> list[str]:
    stats = redis_client.Redis.from_url(url)
    cases = [(burst, name) for name in POOLS for burst in BURSTS]
    seen: dict[tuple[int, str], dict[str, list[float]]] = {
        case: {"p50": [], "max": [], "opened": [], "failed": []} for case in cases
    }
    for _ in range(rounds):
        for burst, name in cases:
            before = stats.info("stats")["total_connections_received"]
            times, failed = asyncio.run(_burst(url, burst, POOLS[name]))
            opened = stats.info("stats")["total_connections_received"] - before
            got = seen[(burst, name)]
            got["p50"].append(statistics.median(times) if times else 0.0)
            got["max"].append(max(times) if times else 0.0)
            got["opened"].append(opened)
            got["failed"].append(failed)
    return [
        f"| {label} | {name} | {burst} | {statistics.median(s['p50']):.1f} | "
        f"{max(s['max']):.1f} | {statistics.median(s['opened']):.0f} | "
        f"{sum(s['failed']):.0f} of {burst * rounds} |"
        for (burst, name), s in seen.items()
    ]


def main(rounds: int = 20) -> str:
    from tests.support.redis_server import RedisServer

    redis = RedisServer(
        Path(tempfile.mkdtemp(prefix="streamgate-bench-burst-"))
    ).start()
    try:
        asyncio.run(_burst(redis.url, 1, MAX_CONNECTIONS))  # the scripts loaded once
        rows = _rows(redis.url, rounds, "idle")
        stop_at = time.monotonic() + 600
        spinners = [
            multiprocessing.Process(target=_spin, args=(stop_at,), daemon=True)
            for _ in range(2)
        ]
        for proc in spinners:
            proc.start()
        try:
            rows += _rows(redis.url, rounds, "2 busy processes")
        finally:
            for proc in spinners:
                proc.terminate()
    finally:
        redis.stop()
    prose = [
        f"{rounds} interleaved rounds: a new store (a cold instance) admits a burst of calls at once",
        "against redis-server on loopback, with the deployed 0.5 s timeout. Per-call admission time (ms):",
        "the median of the rounds' p50 and the worst call of any round; connections the server accepted",
        "per round (median); calls that failed (the store unavailable: a timeout, or redis-py's",
        "`Too many connections` beyond its default cap of 100).",
    ]
    columns = [
        "Machine",
        "Bound",
        "Burst",
        "Admission p50 ms",
        "Worst ms",
        "Connections",
        "Failed",
    ]
    return section_table(SECTION, prose, columns, rows, text_columns=2)


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    print(result)
    write_section(RESULTS, SECTION, result)
