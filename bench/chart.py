"""bench/latency.png: per-chunk relay latency and TTFB distributions, gateway vs nginx vs direct."""

from __future__ import annotations

from pathlib import Path

from bench.runner import TARGETS, Results
from bench.stats import percentile

COLORS = {"direct": "#2b8a3e", "nginx": "#1864ab", "gateway": "#c92a2a"}
METRICS = (
    ("latencies", "per-chunk relay latency (ms)"),
    ("ttfb", "time to first byte (ms)"),
)


def _pooled(results: Results, scenario: str, target: str, metric: str) -> list[float]:
    values: list[float] = []
    for framing in ("sse", "array"):
        summary = results.summary(scenario, framing, target)
        if summary is not None:
            values += summary.pooled(metric)
    return sorted(values)


def _ecdf(values: list[float], points: int = 300) -> tuple[list[float], list[float]]:
    """A thinned empirical CDF: enough points to draw, few enough to stay light."""
    qs = [100 * i / (points - 1) for i in range(points)]
    return [max(percentile(values, q), 1e-3) for q in qs], [q / 100 for q in qs]


def _panel(ax, results: Results, scenario: str, metric: str, label: str) -> None:
    from matplotlib import ticker  # imported with matplotlib by draw()

    for target in TARGETS:
        values = _pooled(results, scenario, target, metric)
        if not values:
            continue
        xs, ys = _ecdf(values)
        p50, p99 = percentile(values, 50), percentile(values, 99)
        ax.plot(
            xs,
            ys,
            color=COLORS[target],
            lw=2,
            label=f"{target}: p50 {p50:.2f} · p99 {p99:.1f} ms",
        )
        ax.plot([p99], [0.99], "o", color=COLORS[target], ms=4)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel(label)
    ax.set_ylabel("fraction of samples ≤ x")
    ax.axhline(0.99, color="#868e96", lw=0.6, ls=":")
    ax.axhline(0.5, color="#868e96", lw=0.6, ls=":")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)


def draw(results: Results, path: Path) -> Path:
    """One row per scenario, latency left and TTFB right; lines further left are faster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [
        s
        for s in results.options.scenarios
        if results.summary(s.key, s.framings[0], "direct")
    ]
    fig, axes = plt.subplots(
        len(scenarios), 2, figsize=(13, 3.6 * len(scenarios)), squeeze=False
    )
    for row, scenario in zip(axes, scenarios):
        for ax, (metric, label) in zip(row, METRICS):
            _panel(ax, results, scenario.key, metric, label)
            ax.set_title(
                f"{scenario.title} ({' + '.join(scenario.framings)})", fontsize=10
            )
    fig.suptitle(
        "streamgate relay vs nginx (proxy_buffering off) vs the upstream directly, "
        f"{results.started:%Y-%m-%d}: all rounds and framings pooled; left is better",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
