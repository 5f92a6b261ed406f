"""The usage page's SVG charts: human numbers, round axis steps, columns and bars drawn from what they're given."""

from __future__ import annotations

import re

import pytest

from lib.keys.svg_charts import (
    Bar,
    Column,
    Series,
    axis_ticks,
    bar_list,
    column_chart,
    format_count,
    format_usd,
)

ONE = (Series("tokens", "#000"),)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (7, "7"),
        (999, "999"),
        (1_000, "1k"),
        (1_234, "1.2k"),
        (9_960, "10k"),
        (12_345, "12k"),
        (123_456, "123k"),
        (999_499, "999k"),
        (999_999, "1M"),
        (3_400_000, "3.4M"),
        (255_000_000, "255M"),
        (1_200_000_000, "1.2B"),
        (4_500_000_000_000, "4500B"),
    ],
)
def test_counts_read_as_a_person_would_say_them(value, shown):
    assert format_count(value) == shown


@pytest.mark.parametrize(
    ("micro_usd", "shown"),
    [
        (0, "$0"),
        (1, "$0.000001"),
        (812, "$0.000812"),
        (12_300, "$0.0123"),
        (12_345, "$0.0123"),
        (99_999, "$0.10"),
        (100_000, "$0.10"),
        (500_000, "$0.50"),
        (882_000, "$0.88"),
        (1_000_000, "$1"),
        (8_000_000, "$8"),
        (12_345_678, "$12.35"),
        (999_994_999, "$999.99"),
        (1_234_567_890, "$1,235"),
    ],
)
def test_dollars_show_cents_and_three_figures_below_ten_cents(micro_usd, shown):
    assert format_usd(micro_usd) == shown


@pytest.mark.parametrize(
    ("highest", "ticks"),
    [
        (0, [0]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 5, 10]),
        (98, [0, 25, 50, 75, 100]),
        (5_100_000, [0, 2_000_000, 4_000_000, 6_000_000]),
        (7_250_000, [0, 2_000_000, 4_000_000, 6_000_000, 8_000_000]),
    ],
)
def test_axis_steps_are_round_and_reach_the_highest_value(highest, ticks):
    assert axis_ticks(highest) == ticks


def _columns(*totals: int) -> list[Column]:
    return [
        Column(f"d{i}", f"label{i}", f"wd{i}", (t,), f"tip {i}")
        for i, t in enumerate(totals)
    ]


def _heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'class="bar"[^>]* height="([\d.]+)"', svg)]


def test_columns_are_as_tall_as_their_values_and_a_zero_day_is_still_there():
    svg = column_chart("t", _columns(100, 0, 50, 200), ONE, format_count, unit="u")
    assert svg.count('<g class="day"') == 4
    heights = _heights(svg)
    assert heights[1] == 0 and heights[3] == pytest.approx(2 * heights[0], abs=0.2)
    assert heights[0] == pytest.approx(2 * heights[2], abs=0.2)
    assert "<title>tip 1</title>" in svg and ">label1<" in svg and ">wd1<" in svg


def test_stacked_parts_add_up_to_the_column():
    series = (Series("a", "#111"), Series("b", "#222"), Series("c", "#333"))
    columns = [Column("d", "l", "", (30, 0, 10), "tip")]
    svg = column_chart("t", columns, series, format_count, unit="u")
    a, b, c = _heights(svg)
    assert b == 0 and a == pytest.approx(3 * c, abs=0.2)
    # One legend entry per series, and the column's total above it.
    assert [f">{name}<" in svg for name in "abc"] == [True] * 3
    assert '<text class="value"' in svg and ">40<" in svg


def test_value_labels_are_left_out_when_they_would_overlap():
    few = column_chart("t", _columns(1_234_567, 2), ONE, format_count, unit="u")
    many = column_chart("t", _columns(*[1_234_567] * 60), ONE, format_count, unit="u")
    assert '<text class="value"' in few and '<text class="value"' not in many


def test_an_all_zero_chart_draws_its_note_and_no_height():
    svg = column_chart(
        "usd", _columns(0, 0), ONE, format_usd, unit="USD", empty_note="nothing"
    )
    assert set(_heights(svg)) == {0.0} and ">nothing<" in svg


def test_bars_are_as_long_as_their_values_and_names_are_escaped():
    bars = [
        Bar("<b>big</b>", 400, "$4", "big & costly"),
        Bar("small", 100, "$1", "small"),
    ]
    svg = bar_list("m", bars, "#000", note="+ 2 more")
    widths = [float(w) for w in re.findall(r'class="bar"[^>]* width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(4 * widths[1], abs=0.2)
    assert "&lt;b&gt;big&lt;/b&gt;" in svg and "<b>" not in svg
    assert "<title>big &amp; costly</title>" in svg and ">+ 2 more<" in svg


def test_a_long_model_name_is_cut_with_an_ellipsis_and_kept_whole_in_its_tooltip():
    name = "gemini-" + "x" * 60
    svg = bar_list("m", [Bar(name, 1, "$1", name)], "#000")
    assert f">{name[:29]}…<" in svg and f"<title>{name}</title>" in svg
