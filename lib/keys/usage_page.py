"""The usage page: one self-contained HTML document of each key's tokens and USD per UTC day and top models.

`render_usage_page` is pure: usage rows in, a string out. The charts are inline SVG drawn here (no
script, font, image or stylesheet from anywhere), and the page's Content-Security-Policy lets it load
nothing, so it reads the same offline, from a file or a mail attachment. Key ids and model names are
operator data, escaped like hostile input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

from lib.keys.svg_charts import (
    Bar,
    Column,
    Series,
    bar_list,
    column_chart,
    format_count,
    format_usd,
)
from lib.keys.usage_totals import (
    NOTHING,
    KeyUsage,
    spent_most,
    summarize,
    token_stack,
)
from lib.limits.base import UsageRecord
from lib.limits.policy import MICRO, days_back

TOP_MODELS = 5
# The page may load nothing: no script, font, stylesheet or image but its own inline ones.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
TOKEN_SERIES = (
    Series("prompt", "#4263eb"),
    Series("cached prompt", "#a5b8fc"),
    Series("output", "#0ca678"),
    Series("thoughts", "#f59f00"),
)
USD_COLOR = "#ae3ec9"
# Not strftime's %b and %a: those follow the locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun")
_MONTHS += ("Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _day_labels(days: Sequence[str]) -> list[tuple[str, str]]:
    """`Nov 29`, `30`, `Dec 1`, `2` …, the month where it starts, and below each `Sat` (weekends at a glance).

    Past a week only every n-th day is labelled (counted back from today), without weekdays.
    """
    stride = 1 if len(days) <= 7 else 2 if len(days) <= 14 else math.ceil(len(days) / 7)
    labels, month = [], 0
    for i, day in enumerate(days):
        if (len(days) - 1 - i) % stride:
            labels.append(("", ""))
            continue
        date = datetime.strptime(day, "%Y-%m-%d")
        shown = f"{_MONTHS[date.month - 1]} " if date.month != month else ""
        weekday = _WEEKDAYS[date.weekday()] if stride == 1 else ""
        labels.append((f"{shown}{date.day}", weekday))
        month = date.month
    return labels


def _token_tip(day: str, t: UsageRecord) -> str:
    return (
        f"{day}: {t.tokens:,} tokens: prompt {t.prompt_tokens:,} "
        f"(cached {t.cached_tokens:,}), output {t.output_tokens:,}, "
        f"thoughts {t.thoughts_tokens:,}; {t.requests:,} requests"
    )


def _usd(micro_usd: int) -> str:
    """Exact dollars, to the micro-USD the store keeps."""
    return f"${micro_usd / MICRO:,.6f}"


def _charts(key: KeyUsage, days: Sequence[str]) -> list[tuple[str, str, str]]:
    per_day = [(day, key.days.get(day, NOTHING)) for day in days]
    labels = _day_labels(days)
    tokens = [
        Column(day, *label, token_stack(t), _token_tip(day, t))
        for (day, t), label in zip(per_day, labels)
    ]
    usd = [
        Column(
            day,
            *label,
            (t.micro_usd,),
            f"{day}: {_usd(t.micro_usd)}; {t.requests:,} requests",
        )
        for (day, t), label in zip(per_day, labels)
    ]
    models = sorted(key.models.items(), key=spent_most)
    by_usd = any(t.micro_usd for _, t in models)
    bars = [
        Bar(
            name,
            t.micro_usd if by_usd else t.tokens,
            f"{format_usd(t.micro_usd)} · {format_count(t.tokens)} tok",
            f"{name}: {_usd(t.micro_usd)}, {t.tokens:,} tokens, {t.requests:,} requests",
        )
        for name, t in models[:TOP_MODELS]
    ]
    rest = models[TOP_MODELS:]
    note = ""
    if rest:
        spent = sum(t.micro_usd for _, t in rest)
        note = f"+ {len(rest)} more models ({format_usd(spent)})"
    ranked = "USD" if by_usd else "tokens (no price known)"
    usd_chart = column_chart(
        "usd",
        usd,
        (Series("USD", USD_COLOR),),
        format_usd,
        unit="USD",
        width=330,
        empty_note="no cost recorded",
    )
    return [
        (
            "tokens",
            "Tokens per UTC day",
            column_chart(
                "tokens", tokens, TOKEN_SERIES, format_count, unit="tokens", width=400
            ),
        ),
        ("usd", "USD per UTC day", usd_chart),
        (
            "models",
            f"Top models by {ranked}",
            bar_list("models", bars, USD_COLOR, width=330, note=note),
        ),
    ]


def _key_section(key: KeyUsage, days: Sequence[str]) -> str:
    t = key.total
    cached = f" ({format_count(t.cached_tokens)} cached)" if t.cached_tokens else ""
    sums = (
        f"{format_usd(t.micro_usd)} · {format_count(t.tokens)} tokens{cached} · "
        f"{format_count(t.requests)} requests · "
        f"{len(key.models)} model{'s' if len(key.models) != 1 else ''}"
    )
    figures = "".join(
        f'<figure class="{css}"><figcaption>{caption}</figcaption>{svg}</figure>'
        for css, caption, svg in _charts(key, days)
    )
    return (
        f'<section class="key" data-key="{escape(key.key_id)}"><header>'
        f'<h2>{escape(key.key_id)}</h2><p class="sums">{escape(sums)}</p></header>'
        f'<div class="charts">{figures}</div></section>'
    )


def _tile(name: str, shown: str, exact: str) -> str:
    return (
        f'<div class="tile {name}"><dt>{name}</dt>'
        f'<dd title="{escape(exact)}">{escape(shown)}</dd></div>'
    )


def _header(keys: list[KeyUsage], days: Sequence[str], generated_at: datetime) -> str:
    total = UsageRecord.total(key.total for key in keys)
    span = f"{len(days)} UTC day{'s' if len(days) != 1 else ''}"
    tiles = (
        _tile("USD", format_usd(total.micro_usd), _usd(total.micro_usd))
        + _tile("tokens", format_count(total.tokens), f"{total.tokens:,} tokens")
        + _tile("requests", format_count(total.requests), f"{total.requests:,}")
        + _tile("keys", str(len(keys)), f"{len(keys)} keys")
    )
    return (
        '<header class="page"><h1>API key usage</h1>'
        f'<p class="period">Last {span}, {days[0]} to {days[-1]} · generated '
        f"{generated_at.strftime('%Y-%m-%d %H:%M')} UTC</p>"
        f'<dl class="totals">{tiles}</dl></header>'
    )


def render_usage_page(
    rows: Iterable[UsageRecord],
    *,
    days: int,
    generated_at: datetime,
    key_id: str | None = None,
) -> str:
    """The page for the last `days` UTC days up to `generated_at` (rows of other days are left out)."""
    period = days_back(generated_at, days)
    keys = summarize(rows, period)
    if keys:
        main = "".join(_key_section(key, period) for key in keys)
    else:
        whose = f" for key {key_id}" if key_id else ""
        span = f"{len(period)} day{'s' if len(period) != 1 else ''}"
        main = (
            f'<p class="empty">No usage recorded{escape(whose)} in the last {span}.</p>'
        )
    title = f"streamgate usage · last {len(period)} UTC days"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"{_header(keys, period, generated_at)}<main>{main}</main>"
        "<footer>Days are UTC calendar days; today is still running. Cached tokens are part "
        "of the prompt, billed at the cache rate. Hover a bar for exact numbers. Written by "
        "<code>python -m lib.keys usage --html</code>.</footer></body></html>\n"
    )


STYLE = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#212529;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif}
header.page,main,footer{max-width:1180px;margin:0 auto;padding:0 20px}
header.page{padding-top:22px}
h1{font-size:22px;margin:0}
.period{color:#5c636a;margin:2px 0 14px}
.totals{display:flex;flex-wrap:wrap;gap:12px;margin:0}
.tile{background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:8px 16px;min-width:150px}
.tile dt{color:#5c636a;font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.tile dd{margin:0;font-size:26px;font-weight:650;font-variant-numeric:tabular-nums}
section.key{background:#fff;border:1px solid #dee2e6;border-radius:10px;margin:16px 0;padding:12px 16px 14px}
section.key h2{font-size:17px;margin:0;overflow-wrap:anywhere}
.sums{color:#5c636a;margin:0 0 8px}
.charts{display:flex;flex-wrap:wrap;gap:20px}
figure{margin:0}
figcaption{font-size:12.5px;font-weight:600;color:#343a40;margin:0 0 2px}
svg.chart{display:block;max-width:100%;height:auto;overflow:visible}
svg text{fill:#495057;font-size:11px}
svg .grid{stroke:#edf0f2}
svg .base{stroke:#adb5bd}
svg .value{fill:#212529;font-weight:600;font-size:10px}
svg .label{fill:#212529;font-size:12px}
svg .axis{fill:#868e96;font-size:10.5px}
svg .note{fill:#868e96;font-size:12px}
.empty{background:#fff;border:1px dashed #ced4da;border-radius:10px;padding:40px;margin:16px 0;
text-align:center;color:#5c636a;font-size:16px}
footer{color:#868e96;font-size:12px;padding-bottom:24px}
footer code{white-space:nowrap}
"""
