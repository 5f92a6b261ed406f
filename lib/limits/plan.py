"""What an admission checks and charges (one Check per limit of the key), and what a finished stream used."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lib.limits.base import Check
from lib.limits.policy import (
    MINUTE_MS,
    TOKEN_QUOTAS,
    Limits,
    Quota,
    window_end,
    window_name,
)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _counter_window(now: datetime, period: str) -> tuple[int, int]:
    """(ms left in the UTC day or month, its whole length in ms)."""
    end = window_end(now, period)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight if period == "day" else midnight.replace(day=1)
    return max(1, ms(end) - ms(now)), ms(end) - ms(start)


def plan(
    limits: Limits, tokens: int, micro_usd: int, now: datetime, lease_ttl_ms: int
) -> tuple[Check, ...]:
    """The checks an admission makes: one per limit the key has, each with what it charges."""
    checks = []
    for quota in limits.active():
        amount = micro_usd if quota.usd else tokens if quota in TOKEN_QUOTAS else 1
        window, span = MINUTE_MS, 0
        if quota.kind == "lease":
            window = lease_ttl_ms
        elif quota.kind == "counter":
            window, span = _counter_window(now.astimezone(UTC), quota.period)
        name = window_name(quota, now)
        checks.append(
            Check(quota, name, limits.value(quota) or 0, amount, window, span)
        )
    return tuple(checks)


def smallest(limits: Limits, quotas: Sequence[Quota]) -> int | None:
    values = [v for q in quotas if (v := limits.value(q)) is not None]
    return min(values) if values else None


def usage_counts(usage: dict[str, Any] | None) -> dict[str, int] | None:
    """Token counts from a stream's last `usageMetadata`; None when the stream ended without one."""
    if not isinstance(usage, dict):
        return None
    names = {
        "prompt": "promptTokenCount",
        "output": "candidatesTokenCount",
        "thoughts": "thoughtsTokenCount",
        "cached": "cachedContentTokenCount",
        "tool": "toolUsePromptTokenCount",
    }
    counts = {k: usage.get(v) for k, v in names.items()}
    clean = {k: v if isinstance(v, int) and v >= 0 else 0 for k, v in counts.items()}
    return clean if any(isinstance(v, int) for v in counts.values()) else None
