"""Scenario definitions and the numbers kept per round and across rounds."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from bench.loadclient import RunResult


@dataclass(frozen=True)
class Scenario:
    """One load shape, run against every target in each round."""

    key: str
    title: str
    concurrency: int
    requests: int
    chunks: int
    interval_ms: float
    framings: tuple[str, ...] = ("sse", "array")
    rounds: int = 3
    ramp_s: float = 0.0


FULL = (
    Scenario("c1", "c=1, 200 requests, 20 chunks 5 ms apart", 1, 200, 20, 5),
    Scenario("c100", "c=100, 1,000 requests, 20 chunks 5 ms apart", 100, 1000, 20, 5),
    Scenario(
        "long",
        "1,000 streams, a chunk every 200 ms for 30 s",
        1000,
        1000,
        150,
        200,
        ("sse",),
        1,
        2.0,
    ),
)
QUICK = (
    Scenario(
        "c1", "quick: c=1, 10 requests, 5 chunks 2 ms apart", 1, 10, 5, 2, rounds=1
    ),
    Scenario(
        "c100", "quick: c=20, 60 requests, 5 chunks 2 ms apart", 20, 60, 5, 2, rounds=1
    ),
    Scenario(
        "long",
        "quick: 50 streams, a chunk every 100 ms for 1 s",
        50,
        50,
        10,
        100,
        ("sse",),
        1,
        0.2,
    ),
)


def percentile(ordered: list[float], q: float) -> float:
    """Linear-interpolated percentile `q` (0-100) of sorted values; NaN for none."""
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class RoundStats:
    """One run of one scenario against one target."""

    requests: int
    errors: Counter
    ttfb: list[float]
    first_chunk: list[float]
    latencies: list[float]
    merged: int
    wall_s: float
    cpu_ms: float
    peak_open: int

    @classmethod
    def of(cls, run: RunResult, cpu_ms: float) -> RoundStats:
        ok = [r for r in run.results if not r.error]
        return cls(
            requests=len(run.results),
            errors=Counter(r.error for r in run.results if r.error),
            ttfb=sorted(r.ttfb_ms for r in ok if r.ttfb_ms is not None),
            first_chunk=sorted(
                r.first_chunk_ms for r in ok if r.first_chunk_ms is not None
            ),
            latencies=sorted(x for r in run.results for x in r.latencies_ms),
            merged=sum(r.merged for r in run.results),
            wall_s=run.wall_s,
            cpu_ms=cpu_ms,
            peak_open=run.peak_open,
        )

    @property
    def throughput(self) -> float:
        return (self.requests - sum(self.errors.values())) / self.wall_s


@dataclass
class Summary:
    """A scenario x framing x target across rounds: medians of per-round medians and of per-round p99s."""

    rounds: list[RoundStats] = field(default_factory=list)

    def _median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    def p50(self, name: str) -> float:
        return self._median([percentile(getattr(r, name), 50) for r in self.rounds])

    def p99(self, name: str) -> float:
        return self._median([percentile(getattr(r, name), 99) for r in self.rounds])

    def pooled(self, name: str) -> list[float]:
        return sorted(x for r in self.rounds for x in getattr(r, name))

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rounds)

    @property
    def errors(self) -> Counter:
        return sum((r.errors for r in self.rounds), Counter())

    @property
    def chunks(self) -> int:
        return sum(len(r.latencies) for r in self.rounds)

    @property
    def merged(self) -> int:
        return sum(r.merged for r in self.rounds)

    @property
    def merged_pct(self) -> float:
        return 100 * self.merged / self.chunks if self.chunks else float("nan")

    @property
    def throughput(self) -> float:
        return self._median([r.throughput for r in self.rounds])

    @property
    def cpu_ms_per_request(self) -> float:
        return self._median([r.cpu_ms / r.requests for r in self.rounds if r.requests])

    @property
    def cpu_cores(self) -> float:
        return self._median([r.cpu_ms / 1000 / r.wall_s for r in self.rounds])

    @property
    def peak_open(self) -> int:
        return max((r.peak_open for r in self.rounds), default=0)
