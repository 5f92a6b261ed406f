"""The `limits` object and the UTC windows, as tables (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lib.limits.policy import (
    RPM,
    TPD,
    USD_MONTH,
    Limits,
    LimitsError,
    day_of,
    format_utc,
    parse_limits,
    parse_utc,
    window_end,
    window_name,
)

FULL = {
    "requestsPerMinute": 60,
    "tokensPerMinute": 200000,
    "concurrentStreams": 4,
    "tokensPerDay": 2000000,
    "tokensPerMonth": 40000000,
    "usdPerDay": 5.0,
    "usdPerMonth": 100.0,
}


def test_the_contract_example_parses_and_writes_back_the_same():
    limits = parse_limits(FULL)
    assert limits.requests_per_minute == 60
    assert limits.micro_usd_per_day == 5_000_000
    assert limits.to_dict() == FULL
    assert [q.quota_id for q in limits.active()] == [
        "RequestsPerMinutePerKey",
        "TokensPerMinutePerKey",
        "ConcurrentStreamsPerKey",
        "TokensPerDayPerKey",
        "TokensPerMonthPerKey",
        "UsdPerDayPerKey",
        "UsdPerMonthPerKey",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Limits()),
        ({}, Limits()),
        ({"usdPerDay": 0.25}, Limits(micro_usd_per_day=250_000)),
        ({"usdPerMonth": 3}, Limits(micro_usd_per_month=3_000_000)),
        ({"tokensPerDay": 1}, Limits(tokens_per_day=1)),
    ],
)
def test_every_field_is_optional(raw, expected):
    assert parse_limits(raw) == expected
    assert parse_limits(raw).empty == (expected == Limits())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "limits (k) must be an object"),
        ({"rpm": 5}, "limits (k) has unknown fields: rpm"),
        (
            {"requestsPerMinute": 0},
            "limits.requestsPerMinute (k) must be a positive integer",
        ),
        (
            {"requestsPerMinute": 1.5},
            "limits.requestsPerMinute (k) must be a positive integer",
        ),
        ({"tokensPerDay": "100"}, "limits.tokensPerDay (k) must be a positive integer"),
        (
            {"concurrentStreams": True},
            "limits.concurrentStreams (k) must be a positive integer",
        ),
        (
            {"usdPerDay": -1},
            "limits.usdPerDay (k) must be a positive number of US dollars",
        ),
        (
            {"usdPerMonth": float("nan")},
            "limits.usdPerMonth (k) must be a positive number",
        ),
    ],
)
def test_a_bad_value_is_named_with_its_field(raw, message):
    with pytest.raises(LimitsError) as info:
        parse_limits(raw, "limits", " (k)")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-01T00:00:00Z", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01T02:00:00+02:00", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01", datetime(2027, 1, 1, tzinfo=UTC)),
        (
            "2027-06-30T23:59:59.5Z",
            datetime(2027, 6, 30, 23, 59, 59, 500000, tzinfo=UTC),
        ),
    ],
)
def test_expiry_is_iso_8601_in_utc(text, expected):
    assert parse_utc(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2027-01-01T00:00:00", "needs a UTC offset"),
        ("next tuesday", "is not an ISO-8601 time"),
        (20270101, "must be an ISO-8601 UTC time string"),
    ],
)
def test_a_bad_expiry_is_refused(text, message):
    with pytest.raises(LimitsError, match=message):
        parse_utc(text)


def test_times_are_written_back_in_one_form():
    assert format_utc(parse_utc("2027-01-01T02:00:00+02:00")) == "2027-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("now", "period", "end"),
    [
        (
            datetime(2026, 12, 1, 12, tzinfo=UTC),
            "day",
            datetime(2026, 12, 2, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
            "month",
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (datetime(2028, 2, 10, tzinfo=UTC), "month", datetime(2028, 3, 1, tzinfo=UTC)),
        (
            datetime(2026, 2, 28, 23, tzinfo=UTC),
            "day",
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
    ],
)
def test_days_and_months_are_utc_calendar_windows(now, period, end):
    assert window_end(now, period) == end


def test_window_names_carry_the_window():
    now = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert day_of(now) == "2026-12-01"
    assert window_name(TPD, now) == "tpd:2026-12-01"
    assert window_name(USD_MONTH, now) == "usd-month:2026-12"
    assert window_name(RPM, now) == "rpm"
