"""The targets of issue 7: each measured value against what was asked, PASS or MISS."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from bench.runner import Results
from bench.stats import Summary


@dataclass
class Check:
    """One target of issue 7: what was measured against what was asked."""

    name: str
    measured: str
    target: str
    passed: bool | None  # None: could not be measured

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else "PASS" if self.passed else "MISS"


def fmt(value: float, digits: int = 2) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _delta_check(
    name: str, gw: Summary | None, direct: Summary | None, metric: str, limit: float
) -> Check:
    if gw is None or direct is None:
        return Check(name, "not measured", f"≤ {limit:g} ms above direct", None)
    delta = gw.p50(metric) - direct.p50(metric)
    measured = (
        f"gateway {fmt(gw.p50(metric), 3)} vs direct {fmt(direct.p50(metric), 3)} ms "
        f"(+{fmt(delta, 3)})"
    )
    return Check(name, measured, f"≤ {limit:g} ms above direct", delta <= limit)


def _peers(results: Results, scenario: str, framing: str, show) -> str:
    """The same figure for direct and nginx, for context (a noisy machine shows up there too)."""
    parts = []
    for target in ("direct", "nginx"):
        summary = results.summary(scenario, framing, target)
        if summary is not None:
            parts.append(f"{target} {show(summary)}")
    return f"; {', '.join(parts)}" if parts else ""


def _c1_checks(results: Results, framing: str) -> list[Check]:
    gw = results.summary("c1", framing, "gateway")
    direct = results.summary("c1", framing, "direct")
    out = [
        _delta_check(f"c=1 {framing}: TTFB median", gw, direct, "ttfb", 2.0),
        _delta_check(
            f"c=1 {framing}: per-chunk relay latency median",
            gw,
            direct,
            "latencies",
            0.3,
        ),
    ]
    if gw is not None:
        peers = _peers(results, "c1", framing, lambda s: str(s.merged))
        merged = f"{gw.merged} of {gw.chunks}{peers}"
        out.append(Check(f"c=1 {framing}: merged chunks", merged, "0", gw.merged == 0))
    return out


def _c100_checks(results: Results, framing: str) -> list[Check]:
    gw = results.summary("c100", framing, "gateway")
    direct = results.summary("c100", framing, "direct")
    if gw is None or direct is None:
        return []
    errors = sum(gw.errors.values())
    ratio = 100 * gw.throughput / direct.throughput
    merged = _peers(results, "c100", framing, lambda s: f"{fmt(s.merged_pct)} %")
    p99 = _peers(results, "c100", framing, lambda s: f"{fmt(s.p99('latencies'))}")
    nginx = results.summary("c100", framing, "nginx")
    nginx_rps = f"; nginx {fmt(nginx.throughput, 0)}" if nginx else ""
    return [
        Check(f"c=100 {framing}: errors", f"{errors} of {gw.requests}", "0", errors == 0),
        Check(f"c=100 {framing}: merged chunks", f"{fmt(gw.merged_pct)} % ({gw.merged} of {gw.chunks}){merged}", "≤ 1 %", gw.merged_pct <= 1),
        Check(f"c=100 {framing}: per-chunk p99", f"{fmt(gw.p99('latencies'))} ms{p99}", "≤ 20 ms", gw.p99("latencies") <= 20),
        Check(
            f"c=100 {framing}: throughput",
            f"{fmt(gw.throughput, 0)} vs direct {fmt(direct.throughput, 0)} req/s ({fmt(ratio, 0)} %){nginx_rps}",
            "≥ 50 % of direct",
            ratio >= 50,
        ),
    ]  # fmt: skip


def _short_checks(results: Results) -> list[Check]:
    return [
        check
        for framing in ("sse", "array")
        for check in (*_c1_checks(results, framing), *_c100_checks(results, framing))
    ]


def _long_checks(results: Results) -> list[Check]:
    scenario = next((s for s in results.options.scenarios if s.key == "long"), None)
    gw = results.summary("long", "sse", "gateway")
    if scenario is None or gw is None:
        return []
    errors = sum(gw.errors.values())
    held = gw.peak_open >= scenario.concurrency and errors == 0
    peak = [m for m in results.memory if m[0].startswith("gateway") and "peak" in m[0]]
    return [
        Check(
            f"{scenario.concurrency} streams held",
            f"peak {gw.peak_open} open, {errors} errors",
            "all, no errors",
            held,
        ),
        Check(
            "long streams: per-chunk p99",
            f"{fmt(gw.p99('latencies'))} ms",
            "≤ 50 ms",
            gw.p99("latencies") <= 50,
        ),
        Check(
            "long streams: memory",
            f"{fmt(peak[0][1], 0)} MiB RSS peak" if peak else "–",
            "reported",
            bool(peak),
        ),
    ]


def checks(results: Results) -> list[Check]:
    """Every target with its verdict."""
    out = _short_checks(results) + _long_checks(results)
    if results.cold_starts:
        cold = statistics.median(results.cold_starts)
        out.append(
            Check(
                "cold start to first byte (median)",
                f"{cold * 1000:.0f} ms",
                "≤ 1,000 ms",
                cold <= 1.0,
            )
        )
    if results.imports:
        imp = statistics.median(i.total_ms for i in results.imports)
        out.append(
            Check("`import main` (median)", f"{imp:.0f} ms", "≤ 150 ms", imp <= 150)
        )
    return out
