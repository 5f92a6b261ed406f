"""Usage rows added up per key, UTC day and model, the keys and models ranked by what they spent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lib.limits.base import UsageRecord


@dataclass
class Totals:
    """Requests, tokens and micro-USD added up over some rows (cached tokens are part of `prompt`)."""

    requests: int = 0
    prompt: int = 0
    output: int = 0
    thoughts: int = 0
    cached: int = 0
    micro_usd: int = 0

    def add(self, row: UsageRecord) -> None:
        self.requests += row.requests
        self.prompt += row.prompt_tokens
        self.output += row.output_tokens
        self.thoughts += row.thoughts_tokens
        self.cached += row.cached_tokens
        self.micro_usd += row.micro_usd

    @classmethod
    def sum(cls, parts: Iterable[Totals]) -> Totals:
        total = cls()
        for part in parts:
            for name, value in vars(part).items():
                setattr(total, name, getattr(total, name) + value)
        return total

    @property
    def tokens(self) -> int:
        return self.prompt + self.output + self.thoughts

    def stack(self) -> tuple[int, int, int, int]:
        """The token columns' parts, bottom first: uncached prompt, cached prompt, output, thoughts."""
        cached = min(self.cached, self.prompt)
        return (self.prompt - cached, cached, self.output, self.thoughts)


@dataclass
class KeyUsage:
    """One key's rows: its total, per UTC day and per model."""

    key_id: str
    total: Totals = field(default_factory=Totals)
    days: dict[str, Totals] = field(default_factory=dict)
    models: dict[str, Totals] = field(default_factory=dict)


def spent_most(item: tuple[str, Totals]) -> tuple[int, int, str]:
    """The sort key that puts the most USD first, then the most tokens, then the name."""
    name, totals = item
    return (-totals.micro_usd, -totals.tokens, name)


def summarize(rows: Iterable[UsageRecord], days: Sequence[str]) -> list[KeyUsage]:
    """The rows of `days` per key, the keys ordered by USD spent, then tokens, then id."""
    wanted = set(days)
    keys: dict[str, KeyUsage] = {}
    for row in rows:
        if row.day not in wanted:
            continue
        key = keys.setdefault(row.key_id, KeyUsage(row.key_id))
        key.total.add(row)
        key.days.setdefault(row.day, Totals()).add(row)
        key.models.setdefault(row.model, Totals()).add(row)
    ranked = sorted(((k.key_id, k.total) for k in keys.values()), key=spent_most)
    return [keys[key_id] for key_id, _ in ranked]
