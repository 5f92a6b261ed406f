"""Usage rows added up per key, UTC day and model, the keys and models ranked by what they spent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lib.limits.base import UsageRecord

# Sums of rows: a UsageRecord whose counts are totals (UsageRecord.total), named only as needed.
NOTHING = UsageRecord("", "", "")


@dataclass
class KeyUsage:
    """One key's rows: its total, per UTC day and per model."""

    key_id: str
    total: UsageRecord = NOTHING
    days: dict[str, UsageRecord] = field(default_factory=dict)
    models: dict[str, UsageRecord] = field(default_factory=dict)


def token_stack(t: UsageRecord) -> tuple[int, int, int, int]:
    """The token columns' parts, bottom first: uncached prompt, cached prompt, output, thoughts."""
    cached = min(t.cached_tokens, t.prompt_tokens)
    return (t.prompt_tokens - cached, cached, t.output_tokens, t.thoughts_tokens)


def spent_most(item: tuple[str, UsageRecord]) -> tuple[int, int, str]:
    """The sort key that puts the most USD first, then the most tokens, then the name."""
    name, totals = item
    return (-totals.micro_usd, -totals.tokens, name)


def _totals_by(rows: list[UsageRecord], part: str) -> dict[str, UsageRecord]:
    groups: dict[str, list[UsageRecord]] = {}
    for row in rows:
        groups.setdefault(getattr(row, part), []).append(row)
    return {name: UsageRecord.total(group) for name, group in groups.items()}


def summarize(rows: Iterable[UsageRecord], days: Sequence[str]) -> list[KeyUsage]:
    """The rows of `days` per key, the keys ordered by USD spent, then tokens, then id."""
    wanted = set(days)
    per_key: dict[str, list[UsageRecord]] = {}
    for row in rows:
        if row.day in wanted:
            per_key.setdefault(row.key_id, []).append(row)
    keys = {
        key_id: KeyUsage(
            key_id,
            UsageRecord.total(own, key_id),
            _totals_by(own, "day"),
            _totals_by(own, "model"),
        )
        for key_id, own in per_key.items()
    }
    ranked = sorted(((k.key_id, k.total) for k in keys.values()), key=spent_most)
    return [keys[key_id] for key_id, _ in ranked]
