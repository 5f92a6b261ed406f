"""A key's limits (the `limits` object of a key entry): parsing, the quota names, UTC day and month windows."""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

MICRO = 1_000_000
MINUTE_MS = 60_000


class LimitsError(ValueError):
    """A `limits` value or an expiry that can't be used; the message names the field."""


@dataclass(frozen=True)
class Quota:
    """One kind of limit: its key-document field, Google-style quota id and metric, header policy name."""

    field: str
    quota_id: str
    metric: str
    policy: str
    kind: str  # "window" (sliding 60 s), "lease" (open streams) or "counter" (UTC day/month)
    budget: (
        bool  # budgets fail closed when the store is unreachable; rate limits fall back
    )
    usd: bool = False
    period: str = "minute"


RPM = Quota(
    "requestsPerMinute",
    "RequestsPerMinutePerKey",
    "streamgate/requests_per_minute",
    "rpm",
    "window",
    False,
)
TPM = Quota(
    "tokensPerMinute",
    "TokensPerMinutePerKey",
    "streamgate/tokens_per_minute",
    "tpm",
    "window",
    False,
)
STREAMS = Quota(
    "concurrentStreams",
    "ConcurrentStreamsPerKey",
    "streamgate/concurrent_streams",
    "streams",
    "lease",
    False,
    period="stream",
)
TPD = Quota(
    "tokensPerDay",
    "TokensPerDayPerKey",
    "streamgate/tokens_per_day",
    "tpd",
    "counter",
    True,
    period="day",
)
TPMO = Quota(
    "tokensPerMonth",
    "TokensPerMonthPerKey",
    "streamgate/tokens_per_month",
    "tpmo",
    "counter",
    True,
    period="month",
)
USD_DAY = Quota(
    "usdPerDay",
    "UsdPerDayPerKey",
    "streamgate/micro_usd_per_day",
    "usd-day",
    "counter",
    True,
    usd=True,
    period="day",
)
USD_MONTH = Quota(
    "usdPerMonth",
    "UsdPerMonthPerKey",
    "streamgate/micro_usd_per_month",
    "usd-month",
    "counter",
    True,
    usd=True,
    period="month",
)
QUOTAS: tuple[Quota, ...] = (RPM, TPM, STREAMS, TPD, TPMO, USD_DAY, USD_MONTH)
TOKEN_QUOTAS = (TPM, TPD, TPMO)


@dataclass(frozen=True)
class Limits:
    """A key's limits; None means no limit. USD amounts are kept as integer micro-USD."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_streams: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    micro_usd_per_day: int | None = None
    micro_usd_per_month: int | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def value(self, quota: Quota) -> int | None:
        """The limit for `quota` (micro-USD for a USD quota), or None."""
        return getattr(self, _ATTRS[quota.field])

    def active(self) -> tuple[Quota, ...]:
        return tuple(q for q in QUOTAS if self.value(q) is not None)

    @property
    def has_usd(self) -> bool:
        return any(q.usd for q in self.active())

    def smallest_token_limit(self) -> int | None:
        values = [v for q in TOKEN_QUOTAS if (v := self.value(q)) is not None]
        return min(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        """The key document's camelCase object; USD back in dollars; unset limits omitted."""
        out: dict[str, Any] = {}
        for quota in QUOTAS:
            value = self.value(quota)
            if value is not None:
                out[quota.field] = value / MICRO if quota.usd else value
        return out

    def replace(self, changes: dict[str, int | None]) -> Limits:
        """A copy with the given camelCase fields set (None clears one)."""
        values = {_ATTRS[q.field]: self.value(q) for q in QUOTAS}
        for name, value in changes.items():
            values[_ATTRS[name]] = value
        return Limits(**values)

    def without_budgets(self) -> Limits:
        """Only the request limits (per minute, concurrency): what a call that generates nothing is
        held to, whatever the key's token and USD limits have left."""
        spent = [q.field for q in QUOTAS if q.usd or q in TOKEN_QUOTAS]
        return self.replace(dict.fromkeys(spent))


_ATTRS = {
    "requestsPerMinute": "requests_per_minute",
    "tokensPerMinute": "tokens_per_minute",
    "concurrentStreams": "concurrent_streams",
    "tokensPerDay": "tokens_per_day",
    "tokensPerMonth": "tokens_per_month",
    "usdPerDay": "micro_usd_per_day",
    "usdPerMonth": "micro_usd_per_month",
}
FIELDS: dict[str, Quota] = {q.field: q for q in QUOTAS}


def parse_value(quota: Quota, value: Any, where: str) -> int:
    """One limit: a positive integer, or for USD a positive number of dollars (returned as micro-USD)."""
    if quota.usd:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value <= 0 or value > 1e9:
            raise LimitsError(f"{where} must be a positive number of US dollars")
        return max(1, round(value * MICRO))
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**53:
        raise LimitsError(f"{where} must be a positive integer")
    return value


def parse_limits(raw: Any, where: str = "limits", label: str = "") -> Limits:
    """The `limits` object of a key entry; errors read `{where}.{field}{label} must ...`."""
    if raw is None:
        return Limits()
    if not isinstance(raw, dict):
        raise LimitsError(f"{where}{label} must be an object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise LimitsError(f"{where}{label} has unknown fields: {', '.join(unknown)}")
    changes = {
        name: parse_value(FIELDS[name], value, f"{where}.{name}{label}")
        for name, value in raw.items()
    }
    return Limits().replace(changes)


def parse_utc(text: Any, where: str = "expiresAt") -> datetime:
    """An ISO-8601 time with an explicit offset (`Z`), or a date (midnight UTC); returned in UTC."""
    if not isinstance(text, str):
        raise LimitsError(f"{where} must be an ISO-8601 UTC time string")
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise LimitsError(
            f"{where} is not an ISO-8601 time (e.g. 2027-01-01T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise LimitsError(f"{where} needs a UTC offset (e.g. 2027-01-01T00:00:00Z)")
    return moment.astimezone(UTC)


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of(now: datetime) -> str:
    """The UTC day `now` falls in, as `YYYY-MM-DD` (the name of a daily window)."""
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def days_back(now: datetime, count: int) -> list[str]:
    """The last `count` UTC days (at least one), oldest first, ending on `now`'s day."""
    return [day_of(now - timedelta(days=i)) for i in reversed(range(max(1, count)))]


def month_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def window_end(now: datetime, period: str) -> datetime:
    """When the UTC day or month containing `now` ends."""
    now = now.astimezone(UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return start + timedelta(days=1)
    days = calendar.monthrange(now.year, now.month)[1]
    return start.replace(day=1) + timedelta(days=days)


def window_name(quota: Quota, now: datetime) -> str:
    """The store's name for `quota`'s current window: `rpm`, or `tpd:2026-12-01`, `usd-month:2026-12`."""
    if quota.period == "day":
        return f"{quota.policy}:{day_of(now)}"
    if quota.period == "month":
        return f"{quota.policy}:{month_of(now)}"
    return quota.policy
