"""The usage page as headless Chromium draws it, from a week of three keys' usage in a real redis-server.

The usage goes in through the settle path the gateway uses (admit, then settle the last usageMetadata);
`python -m lib.keys usage --html` runs as a subprocess; the tests look at what a person sees.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lib.keys.svg_charts import format_count, format_usd
from lib.limits.estimate import TokenEstimate
from lib.limits.limiter import Limiter
from lib.limits.policy import MICRO, parse_limits
from lib.limits.redis import RedisStore
from tests.support.browser import CHROMIUM, INSTALL_HINT, chromium_page
from tests.support.paths import ROOT
from tests.support.redis_server import RedisServer

HOSTILE_KEY = "<script>alert('key')</script>"
HOSTILE_MODEL = '"><img src=x onerror=alert(1)>'

# Per key: (model, one request's last usageMetadata, {day (0 = six days ago … 6 = today): requests}).
PRO = {"promptTokenCount": 2000, "candidatesTokenCount": 300, "thoughtsTokenCount": 200}
FLASH = {
    "promptTokenCount": 800,
    "candidatesTokenCount": 100,
    "cachedContentTokenCount": 400,
}
PLAN: dict[str, list[tuple[str, dict[str, int], dict[int, int]]]] = {
    "team-a": [
        ("gemini-2.5-pro", PRO, {i: i + 1 for i in range(7)}),
        ("gemini-2.5-flash", FLASH, {i: 2 for i in range(7)}),
    ],
    "team-b": [
        ("gemini-2.5-flash", FLASH, {1: 3, 4: 5}),
        *[
            (model, FLASH, {4: 1})
            for model in (
                "gemini-2.0-flash",
                "gemini-2.5-flash-lite",
                "gemini-2.0-flash-lite",
                "gemini-1.5-pro",
                "gemini-3-pro-preview",
            )
        ],
    ],
    HOSTILE_KEY: [(HOSTILE_MODEL, PRO, {6: 1})],
}


async def _settle_plan(url: str, now: datetime) -> None:
    """Each request as the gateway makes it: admit (no limits), then settle its last usageMetadata."""
    limiter = Limiter(RedisStore(url))
    try:
        for key_id, models in PLAN.items():
            for model, usage, per_day in models:
                for index, requests in per_day.items():
                    at = now - timedelta(days=6 - index)
                    for _ in range(requests):
                        admission = await limiter.admit(
                            key_id, parse_limits({}), model, TokenEstimate(1, 1), now=at
                        )
                        await limiter.settle(admission, usage, now=at)
    finally:
        await limiter.close()


def _cli(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    command = [sys.executable, "-m", "lib.keys", "usage", "--limits", url]
    return subprocess.run(
        [*command, "--days", "7", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The page the CLI wrote from a week of three keys' usage, and the same rows as `--json`."""
    workdir = tmp_path_factory.mktemp("usage-page")
    server = RedisServer(workdir).start()
    try:
        asyncio.run(_settle_plan(server.url, datetime.now(UTC)))
        path = workdir / "usage.html"
        made = _cli(server.url, "--html", str(path))
        assert made.returncode == 0, made.stderr
        rows = json.loads(_cli(server.url, "--json").stdout)
        yield {"path": path, "rows": rows, "stderr": made.stderr}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(written: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    if not CHROMIUM.exists():
        pytest.skip(INSTALL_HINT)
    with chromium_page() as (page, seen):
        page.goto(written["path"].as_uri())
        yield page, seen


def sums(rows: list[dict], key_id: str | None = None, name: str = "requests") -> Any:
    return sum(r[name] for r in rows if key_id in (None, r["id"]))


def tokens(rows: list[dict], key_id: str | None = None) -> int:
    return sum(
        r["promptTokens"] + r["outputTokens"] + r["thoughtsTokens"]
        for r in rows
        if key_id in (None, r["id"])
    )


# A column's drawn height: from its lowest part's bottom to its highest part's top, so a gap or an
# overlap between stacked parts shows too (0 for a day without usage).
SECTIONS = """() => {
const drawnHeight = boxes => {
  const shown = boxes.filter(b => b.height > 0);
  return shown.length ? Math.max(...shown.map(b => b.bottom)) - Math.min(...shown.map(b => b.top)) : 0;
};
return [...document.querySelectorAll('section.key')].map(s => ({
  key: s.dataset.key, title: s.querySelector('h2').innerText, sums: s.querySelector('.sums').innerText,
  charts: [...s.querySelectorAll('svg.chart')].map(svg => {
    const box = svg.getBoundingClientRect();
    return {name: svg.classList[1], width: box.width, height: box.height,
      days: [...svg.querySelectorAll('g.day')].map(g => ({day: g.dataset.day,
        tip: g.querySelector('title').textContent,
        height: drawnHeight([...g.querySelectorAll('rect.bar')].map(r => r.getBoundingClientRect())),
        parts: [...g.querySelectorAll('rect.bar')].reduce((h, r) => h + r.getBoundingClientRect().height, 0)})),
      bars: [...svg.querySelectorAll('g.model')].map(g => ({
        label: g.querySelector('text.label').textContent,
        width: g.querySelector('rect.bar').getBoundingClientRect().width})),
      text: svg.textContent};
  })}));
}"""


def test_the_cli_says_where_it_wrote_for_how_many_keys_and_days(written):
    size = written["path"].stat().st_size
    assert written["stderr"] == (
        f"Wrote {written['path']}: 3 keys, 7 UTC days, {size:,} bytes.\n"
    )


def test_the_page_loads_nothing_runs_nothing_and_logs_nothing(browser, written):
    page, seen = browser
    assert seen.requests == [written["path"].as_uri()]
    assert seen.console == [] and seen.errors == [] and seen.dialogs == []
    assert page.evaluate("document.scripts.length + document.images.length") == 0


def test_each_key_has_its_three_charts_drawn_in_order_of_spend(browser, written):
    sections = browser[0].evaluate(SECTIONS)
    assert [s["key"] for s in sections] == ["team-a", "team-b", HOSTILE_KEY]
    for section in sections:
        charts = section["charts"]
        assert [c["name"] for c in charts] == ["tokens", "usd", "models"]
        assert all(c["width"] > 100 and c["height"] > 40 for c in charts)
        days = [d["day"] for d in charts[0]["days"]]
        assert days == [d["day"] for d in charts[1]["days"]]
        assert days == sorted(
            {r["day"] for r in written["rows"] if r["id"] == "team-a"}
        )


def test_day_columns_are_as_tall_as_the_days_usage(browser, written):
    rows = written["rows"]
    team_a, team_b, _ = browser[0].evaluate(SECTIONS)
    for section in (team_a, team_b):
        key_id = section["key"]
        for chart, measure in (("tokens", None), ("usd", "usd")):
            drawn = next(c for c in section["charts"] if c["name"] == chart)
            data = [
                sum(
                    r[measure] if measure else tokens([r])
                    for r in rows
                    if r["id"] == key_id and r["day"] == day["day"]
                )
                for day in drawn["days"]
            ]
            heights = [d["height"] for d in drawn["days"]]
            # Stacked parts touch: no gap, no overlap.
            assert [d["parts"] for d in drawn["days"]] == pytest.approx(
                heights, abs=0.6
            )
            assert [h == 0 for h in heights] == [v == 0 for v in data]
            tallest, most = max(heights), max(data)
            assert tallest > 60
            for height, value in zip(heights, data):
                assert height / tallest == pytest.approx(value / most, abs=0.02)
    # team-a's pro requests grow by one a day; team-b used two days of the seven.
    tokens_a = [d["height"] for d in team_a["charts"][0]["days"]]
    assert tokens_a == sorted(tokens_a) and len(set(tokens_a)) == 7
    assert [d["height"] > 0 for d in team_b["charts"][0]["days"]] == [
        i in (1, 4) for i in range(7)
    ]
    today = team_a["charts"][0]["days"][-1]
    assert (
        f"{tokens([r for r in rows if r['day'] == today['day']], 'team-a'):,} tokens"
        in today["tip"]
    )


def test_top_models_are_five_bars_by_usd_and_a_note_for_the_rest(browser, written):
    team_b = browser[0].evaluate(SECTIONS)[1]
    models = team_b["charts"][2]
    spent: dict[str, float] = {}
    for r in written["rows"]:
        if r["id"] == "team-b":
            spent[r["model"]] = spent.get(r["model"], 0) + r["usd"]
    ranked = sorted(spent, key=lambda m: (-spent[m], m))
    assert [b["label"] for b in models["bars"]] == ranked[:5]
    widths = [b["width"] for b in models["bars"]]
    assert widths == sorted(widths, reverse=True) and widths[-1] > 0
    assert (
        f"+ 1 more models ({format_usd(round(spent[ranked[5]] * MICRO))})"
        in models["text"]
    )


def test_the_totals_show_what_the_store_holds(browser, written):
    page, rows = browser[0], written["rows"]
    tiles = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.tile')].map("
        "t => [t.querySelector('dt').innerText, [t.querySelector('dd').innerText, "
        "t.querySelector('dd').title]]))"
    )
    # What the plan wrote: 28 + 14 requests of team-a, 13 of team-b, 1 of the hostile key.
    assert [sums(rows, k) for k in PLAN] == [42, 13, 1]
    usd = round(sums(rows, name="usd") * MICRO)
    assert tiles == {
        "USD": [format_usd(usd), f"${usd / MICRO:,.6f}"],
        "TOKENS": [format_count(tokens(rows)), f"{tokens(rows):,} tokens"],
        "REQUESTS": [format_count(sums(rows)), f"{sums(rows):,}"],
        "KEYS": ["3", "3 keys"],
    }
    team_a = page.evaluate(SECTIONS)[0]
    spent = round(sums(rows, "team-a", "usd") * MICRO)
    assert team_a["sums"].startswith(
        f"{format_usd(spent)} · {format_count(tokens(rows, 'team-a'))} tokens"
    )
    assert f"{format_count(sums(rows, 'team-a'))} requests · 2 models" in team_a["sums"]


def test_a_hostile_key_id_and_model_name_show_as_text(browser):
    page, seen = browser
    hostile = page.evaluate(SECTIONS)[2]
    assert hostile["title"] == HOSTILE_KEY
    assert [b["label"] for b in hostile["charts"][2]["bars"]] == [HOSTILE_MODEL]
    # No price is known for it: the USD chart says so rather than drawing $0 as a failure.
    assert "no cost recorded" in hostile["charts"][1]["text"]
    assert page.evaluate("document.querySelectorAll('script, img').length") == 0
    assert seen.dialogs == []
