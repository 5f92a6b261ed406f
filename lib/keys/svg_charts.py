"""Charts as inline SVG, drawn server-side for the usage page: day columns, ranked bars, human numbers.

Every string that reaches the SVG (labels, tooltips, values) is escaped here. Sizes are in CSS pixels;
the page's stylesheet styles the classes used (`grid`, `base`, `tick`, `axis`, `value`, `note`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from lib.limits.policy import MICRO

Format = Callable[[int], str]
_COUNT_UNITS = ((1_000, "k"), (1_000_000, "M"), (1_000_000_000, "B"))


def format_count(value: int) -> str:
    """`950`, `1.2k`, `12k`, `3.4M`: at most three figures, for a person reading a chart."""
    if value < 1000:
        return str(value)
    for size, suffix in _COUNT_UNITS:
        scaled = value / size
        if scaled < 999.5 or suffix == _COUNT_UNITS[-1][1]:
            text = f"{scaled:.1f}" if scaled < 9.95 else f"{scaled:.0f}"
            return text.removesuffix(".0") + suffix
    raise AssertionError("unreachable")


def format_usd(micro_usd: int) -> str:
    """`$0`, `$0.000812`, `$0.0123`, `$0.50`, `$8`, `$12.35`, `$1,234`: cents, three figures below 10¢."""
    if micro_usd <= 0:
        return "$0"
    dollars = micro_usd / MICRO
    if dollars >= 1000:
        return f"${dollars:,.0f}"
    if dollars >= 1:
        return f"${dollars:,.2f}".removesuffix(".00")
    if dollars >= 0.1:
        return f"${dollars:.2f}"
    decimals = min(6, 2 - math.floor(math.log10(dollars)))
    text = f"{dollars:.{decimals}f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def axis_ticks(highest: int, steps: int = 4) -> list[int]:
    """0 and round whole steps (1, 2, 5 × 10ⁿ, or 2.5 × 10ⁿ from 25 on) up to at least `highest`."""
    if highest <= 0:
        return [0]
    raw = highest / steps
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    factors = (1, 2, 2.5, 5, 10) if magnitude >= 10 else (1, 2, 5, 10)
    step = int(next(f * magnitude for f in factors if f * magnitude >= raw))
    return [i * step for i in range(math.ceil(highest / step) + 1)]


@dataclass(frozen=True)
class Series:
    """One stacked part of a column (bottom first), with its fill colour."""

    name: str
    color: str


@dataclass(frozen=True)
class Column:
    """One day: its labels (a second, lighter line below; empty for none), one value per series, its tooltip."""

    key: str
    label: str
    sublabel: str
    values: tuple[int, ...]
    tip: str


@dataclass(frozen=True)
class Bar:
    """One ranked bar: a name, the length measure, the text shown beside it, its tooltip."""

    label: str
    value: int
    text: str
    tip: str


def _text_px(text: str) -> float:
    """About how wide a value label is (10 px bold digits): enough to tell whether labels would touch."""
    return sum(3.0 if c in ".," else 6.2 for c in text)


def _text(x: float, y: float, text: str, css: str, anchor: str = "middle") -> str:
    return (
        f'<text class="{css}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">'
        f"{escape(text)}</text>"
    )


def _svg(name: str, width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart {name}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">{"".join(body)}</svg>'
    )


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts = ['<g class="legend">']
    for part in series:
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 8}" width="9" height="9" rx="1.5" fill="{part.color}"/>'
        )
        parts.append(_text(x + 12, y, part.name, "axis", "start"))
        # About 5.7 px a character at the legend's size: close enough to space the items.
        x += 22 + 5.7 * len(part.name)
    return parts + ["</g>"]


def _y_axis(
    ticks: list[int],
    fmt: Format,
    left: float,
    right: float,
    y_of: Callable[[int], float],
) -> list[str]:
    parts = []
    for tick in ticks[1:]:
        y = y_of(tick)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(_text(left - 6, y + 3.5, fmt(tick), "tick", "end"))
    y0 = y_of(0)
    parts.append(
        f'<line class="base" x1="{left}" x2="{right}" y1="{y0:.1f}" y2="{y0:.1f}"/>'
    )
    parts.append(_text(left - 6, y0 + 3.5, fmt(0), "tick", "end"))
    return parts


def column_chart(
    name: str,
    columns: Sequence[Column],
    series: Sequence[Series],
    fmt: Format,
    *,
    unit: str,
    width: int = 420,
    height: int = 230,
    empty_note: str = "",
) -> str:
    """Stacked columns, one per day, over a y axis in round steps; the labels given, below each column."""
    left, right, top, bottom = 50.0, width - 8.0, 24.0, height - 46.0
    totals = [sum(c.values) for c in columns]
    ticks = axis_ticks(max(totals, default=0))
    scale = (bottom - top) / max(ticks[-1], 1)

    def y_of(value: int) -> float:
        return bottom - value * scale

    body = _y_axis(ticks, fmt, left, right, y_of)
    body.append(_text(6, 12, unit, "axis", "start"))
    if len(series) > 1:
        body += _legend(series, left + 8, 12)
    body.append(_text((left + right) / 2, height - 4, "UTC day", "axis"))
    slot = (right - left) / max(len(columns), 1)
    bar = min(44.0, slot * 0.7)
    # Values above the columns only when the widest fits its slot.
    labelled = max((_text_px(fmt(t)) for t in totals), default=0) + 4 <= slot
    for i, (column, total) in enumerate(zip(columns, totals)):
        x = left + i * slot + (slot - bar) / 2
        parts = [f'<g class="day" data-day="{escape(column.key)}">']
        parts.append(f"<title>{escape(column.tip)}</title>")
        # An invisible full-height target, so the tooltip shows on a short or empty day too.
        parts.append(
            f'<rect class="hit" x="{x:.1f}" y="{top}" width="{bar:.1f}" '
            f'height="{bottom - top:.1f}" fill="transparent"/>'
        )
        base = 0
        for part, value in zip(series, column.values):
            y, h = y_of(base + value), value * scale
            parts.append(
                f'<rect class="bar" data-series="{escape(part.name)}" x="{x:.1f}" '
                f'y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{part.color}"/>'
            )
            base += value
        if total and labelled:
            parts.append(_text(x + bar / 2, y_of(total) - 4, fmt(total), "value"))
        parts.append("</g>")
        body += parts
        if column.label:
            body.append(_text(x + bar / 2, bottom + 14, column.label, "tick"))
        if column.sublabel:
            body.append(_text(x + bar / 2, bottom + 26, column.sublabel, "axis"))
    if not any(totals) and empty_note:
        body.append(_text((left + right) / 2, (top + bottom) / 2, empty_note, "note"))
    return _svg(name, width, height, unit, body)


def bar_list(
    name: str,
    bars: Sequence[Bar],
    color: str,
    *,
    width: int = 340,
    row: int = 38,
    note: str = "",
) -> str:
    """Horizontal bars, longest first as given: the name and value above each bar, a note below."""
    top, pad = 6.0, 4.0
    height = int(top + row * max(len(bars), 1) + (18 if note else 0) + pad)
    highest = max((b.value for b in bars), default=0)
    span = width - 2 * pad
    body: list[str] = []
    for i, item in enumerate(bars):
        y = top + i * row
        length = max(2.0, span * item.value / highest) if highest else 2.0
        label = item.label if len(item.label) <= 30 else item.label[:29] + "…"
        body.append(f'<g class="model"><title>{escape(item.tip)}</title>')
        body.append(_text(pad, y + 12, label, "label", "start"))
        body.append(_text(width - pad, y + 12, item.text, "value", "end"))
        body.append(
            f'<rect class="bar" x="{pad}" y="{y + 17:.1f}" width="{length:.1f}" '
            f'height="12" rx="2" fill="{color}"/></g>'
        )
    if note:
        body.append(_text(pad, top + row * len(bars) + 12, note, "axis", "start"))
    return _svg(name, width, height, "top models", body)
