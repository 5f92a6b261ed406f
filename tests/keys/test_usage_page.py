"""The usage page: the pure renderer (escaping, an empty period, every day, ranking, numbers) and `usage --html`.

What Chromium draws from a page the CLI wrote is in test_usage_page_browser.py.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from lib.keys import cli
from lib.keys.usage_page import CSP, render_usage_page
from lib.limits.base import UsageRecord
from lib.limits.policy import days_back
from tools.usage_screenshot import GENERATED_AT, sample_rows

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOSTILE_KEY = "<script>alert('key')</script>"
HOSTILE_MODEL = '"><img src=x onerror=alert(1)>'


def row(key_id: str, day: str, model: str = "m", **counts: int) -> UsageRecord:
    return UsageRecord(key_id, day, model, **counts)


class _Tags(HTMLParser):
    """Every start tag and attribute name of a document, as a browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]


def tags_of(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


# --- the renderer, pure -------------------------------------------------------------------------


def test_every_day_of_the_period_has_a_column_even_without_usage():
    page = render_usage_page(
        [row("a", "2026-11-28", requests=1, prompt_tokens=5)], days=7, generated_at=NOW
    )
    days = days_back(NOW, 7)
    assert days[0] == "2026-11-25" and days[-1] == "2026-12-01"
    # Two day charts (tokens, USD), each with every day of the period, in order.
    shown = [d for d in page.split('data-day="')[1:]]
    assert [d[:10] for d in shown] == days + days


@pytest.mark.parametrize(
    ("days", "key_id", "message"),
    [
        (7, None, "No usage recorded in the last 7 days."),
        (1, None, "No usage recorded in the last 1 day."),
        (0, None, "No usage recorded in the last 1 day."),
        (
            30,
            "<b>x</b>",
            "No usage recorded for key &lt;b&gt;x&lt;/b&gt; in the last 30 days.",
        ),
    ],
)
def test_an_empty_period_says_so(days, key_id, message):
    outside = [row("a", "2026-01-01", requests=9)]
    page = render_usage_page(outside, days=days, generated_at=NOW, key_id=key_id)
    assert message in page
    assert "<svg" not in page and '<section class="key"' not in page


@pytest.mark.parametrize(
    "hostile",
    [
        HOSTILE_KEY,
        HOSTILE_MODEL,
        "' onmouseover='alert(1)",
        "</title></svg><script>alert(1)</script>",
        "a&b <!-- c",
    ],
)
def test_key_ids_and_model_names_are_text_however_they_look(hostile):
    page = render_usage_page(
        [row(hostile, "2026-12-01", hostile, requests=1, prompt_tokens=9)],
        days=7,
        generated_at=NOW,
    )
    assert hostile not in page
    parsed = tags_of(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not [a for a in parsed.attributes if a.startswith("on")]


def test_the_page_refers_to_nothing_outside_itself():
    page = render_usage_page(sample_rows(), days=7, generated_at=GENERATED_AT)
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert CSP == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    parsed = tags_of(page)
    assert {"script", "link", "img", "iframe", "object"}.isdisjoint(parsed.tags)
    assert {"src", "href"}.isdisjoint(parsed.attributes)
    # The SVG namespace is a name, not a fetch; nothing else names a scheme.
    bare = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http:" not in bare and "https:" not in bare and "url(" not in bare
    assert "@import" not in page


def test_keys_are_ranked_by_usd_then_tokens_then_id():
    day = "2026-12-01"
    rows = [
        row("cheap", day, requests=1, prompt_tokens=10, micro_usd=1),
        row("tokens-b", day, requests=1, prompt_tokens=500),
        row("tokens-a", day, requests=1, prompt_tokens=500),
        row("dear", day, requests=1, prompt_tokens=1, micro_usd=900),
        row("more-tokens", day, requests=1, prompt_tokens=900),
    ]
    page = render_usage_page(rows, days=1, generated_at=NOW)
    keys = [part.split('"')[0] for part in page.split('data-key="')[1:]]
    assert keys == ["dear", "cheap", "more-tokens", "tokens-a", "tokens-b"]


def test_the_top_five_models_by_usd_then_tokens_and_a_note_for_the_rest():
    day = "2026-12-01"
    spend = {"m1": (0, 50), "m2": (10, 1), "m3": (0, 90), "m4": (5, 1), "m5": (0, 70)}
    spend |= {"m6": (0, 60), "m7": (0, 2)}
    rows = [
        row("k", day, name, requests=1, prompt_tokens=tokens, micro_usd=usd)
        for name, (usd, tokens) in spend.items()
    ]
    page = render_usage_page(rows, days=1, generated_at=NOW)
    models = page.split('<g class="model">')[1:]
    shown = [m.split('class="label"')[1].split(">")[1].split("<")[0] for m in models]
    assert shown == ["m2", "m4", "m3", "m5", "m6"]
    assert "+ 2 more models ($0)" in page
    assert "Top models by USD" in page


def test_totals_show_rounded_numbers_and_keep_the_exact_ones_in_tooltips():
    rows = [
        row(
            "a", "2026-11-30", requests=1_200, prompt_tokens=3_000_000, micro_usd=1_234
        ),
        row("b", "2026-12-01", requests=34, output_tokens=400_000, thoughts_tokens=5),
    ]
    page = render_usage_page(rows, days=7, generated_at=NOW)
    assert '<dd title="$0.001234">$0.00123</dd>' in page
    assert '<dd title="3,400,005 tokens">3.4M</dd>' in page
    assert '<dd title="1,234">1.2k</dd>' in page
    assert (
        "Last 7 UTC days, 2026-11-25 to 2026-12-01 · generated 2026-12-01 12:00 UTC"
        in page
    )


def test_cached_tokens_are_drawn_as_a_part_of_the_prompt():
    rows = [row("a", "2026-12-01", requests=1, prompt_tokens=100, cached_tokens=30)]
    page = render_usage_page(rows, days=1, generated_at=NOW)
    assert "prompt 100 (cached 30)" in page
    assert "100 tokens" in page and "130 tokens" not in page
    assert 'data-series="cached prompt"' in page


def test_the_screenshot_sample_renders_its_three_keys():
    page = render_usage_page(sample_rows(), days=7, generated_at=GENERATED_AT)
    assert page.count('<section class="key"') == 3
    assert page.count('<svg class="chart') == 9


# --- usage --html, the CLI ------------------------------------------------------------------------


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), env={}, out=out), out.getvalue()


def test_html_with_json_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run("usage", "--json", "--html", str(tmp_path / "u.html"))
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ([], "usage is kept in the shared limits store"),
        (["--limits", "redis://127.0.0.1:1/0"], "limits store unreachable"),
    ],
)
def test_no_store_no_page_and_an_old_page_stays(tmp_path, capsys, limits, message):
    page = tmp_path / "u.html"
    page.write_text("yesterday's page")
    assert run(*limits, "usage", "--html", str(page)) == (1, "")
    assert message in capsys.readouterr().err
    assert page.read_text() == "yesterday's page"
    assert [p.name for p in tmp_path.iterdir()] == ["u.html"]


def test_the_page_replaces_the_file_in_one_rename_and_leaves_no_temp_file(
    tmp_path, capsys, redis_server
):
    key_id = f"p-{uuid.uuid4().hex[:8]}"
    page = tmp_path / "u.html"
    page.write_text("old")
    page.chmod(0o640)
    before = page.stat().st_ino
    argv = ["--limits", redis_server.url, "usage", "--id", key_id, "--days", "3"]
    assert run(*argv, "--html", str(page)) == (0, "")
    assert page.stat().st_ino != before and page.stat().st_mode & 0o777 == 0o640
    assert f"No usage recorded for key {key_id} in the last 3 days." in page.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["u.html"]
    size = len(page.read_bytes())
    assert (
        capsys.readouterr().err
        == f"Wrote {page}: 0 keys, 3 UTC days, {size:,} bytes.\n"
    )


@pytest.mark.parametrize("target", ["missing/u.html", "a-folder"])
def test_a_page_that_cannot_be_written_is_an_error_and_leaves_nothing(
    tmp_path, capsys, redis_server, target
):
    (tmp_path / "a-folder").mkdir()
    path = tmp_path / target
    assert run("--limits", redis_server.url, "usage", "--html", str(path)) == (1, "")
    assert f"error: cannot write {path} (" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder"]
    assert list((tmp_path / "a-folder").iterdir()) == []
