"""The limits store contract: checks, verdicts, usage records, the Admission value and the quota error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from lib.errors import TooManyRequests
from lib.limits.estimate import TokenEstimate
from lib.limits.headers import LimitState, rate_limit_headers, whole_seconds
from lib.limits.policy import MICRO, Limits, Quota

ERROR_DOMAIN = "streamgate"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


class StoreUnavailable(RuntimeError):
    """The shared store did not answer (refused, timed out, or failed); the fallback decides what follows."""


@dataclass(frozen=True)
class Check:
    """One limit to check and charge at admission: `amount` more of `name` must stay within `limit`.

    `window_ms` is the sliding window (kind "window"), the lease TTL ("lease"), or the time left in the
    UTC day or month ("counter"); `span_ms` is a counter's whole day or month.
    """

    quota: Quota
    name: str
    limit: int
    amount: int
    window_ms: int
    span_ms: int = 0

    @property
    def kind(self) -> str:
        return self.quota.kind


@dataclass(frozen=True)
class Outcome:
    """What the store saw for one check: `used` (after charging when admitted), and when it frees."""

    used: int
    retry_ms: int = 0
    reset_ms: int = 0


@dataclass(frozen=True)
class Verdict:
    """All-or-nothing: every check was charged (`admitted`) or none was."""

    admitted: bool
    outcomes: tuple[Outcome, ...]
    # Counted by this instance alone, because the shared store was unreachable (the fallback).
    local: bool = False


@dataclass(frozen=True)
class Adjustment:
    """At settle: the `reserved` amount charged to `name` becomes `actual` (if its window still holds it)."""

    kind: str
    name: str
    reserved: int
    actual: int


# Each usage count's name as the stores keep it (a Redis hash field, a DynamoDB attribute).
STORED_COUNTS = {
    "requests": "requests",
    "prompt_tokens": "promptTokens",
    "output_tokens": "outputTokens",
    "thoughts_tokens": "thoughtsTokens",
    "cached_tokens": "cachedTokens",
    "micro_usd": "microUsd",
}
# How long the stores keep a day's usage.
USAGE_TTL_S = 400 * 86_400


@dataclass(frozen=True)
class UsageRecord:
    """What one key spent on one model on one UTC day."""

    key_id: str
    day: str
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    micro_usd: int = 0

    COUNTS = tuple(STORED_COUNTS)

    @classmethod
    def total(
        cls,
        rows: Iterable[UsageRecord],
        key_id: str = "",
        day: str = "",
        model: str = "",
    ) -> UsageRecord:
        """One record whose counts are the sums of `rows`' (named as given)."""
        rows = list(rows)
        sums = {name: sum(getattr(r, name) for r in rows) for name in cls.COUNTS}
        return cls(key_id, day, model, **sums)

    @property
    def tokens(self) -> int:
        """Prompt (cached included), output and thoughts tokens."""
        return self.prompt_tokens + self.output_tokens + self.thoughts_tokens

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS}

    def to_json(self) -> dict[str, Any]:
        """The `usage --json` object: exactly these names, `usd` in dollars."""
        return {
            "id": self.key_id,
            "day": self.day,
            "model": self.model,
            "requests": self.requests,
            "promptTokens": self.prompt_tokens,
            "outputTokens": self.output_tokens,
            "thoughtsTokens": self.thoughts_tokens,
            "cachedTokens": self.cached_tokens,
            "usd": self.micro_usd / MICRO,
        }


class LimitStore(Protocol):
    """Where counters live. Every method is one atomic step; a store that can't be reached raises StoreUnavailable.

    `now_ms` None means the store's own clock (Redis: the server's `TIME`); tests pass a clock they control.
    """

    async def admit(
        self,
        key_id: str,
        admission_id: str,
        checks: Sequence[Check],
        now_ms: int | None,
    ) -> Verdict: ...

    async def renew(
        self, key_id: str, name: str, admission_id: str, ttl_ms: int, now_ms: int | None
    ) -> bool: ...

    async def settle(
        self,
        key_id: str,
        admission_id: str,
        adjustments: Sequence[Adjustment],
        release: str | None,
        record: UsageRecord | None,
        now_ms: int | None,
    ) -> None: ...

    async def usage(
        self, key_id: str | None, days: Sequence[str]
    ) -> list[UsageRecord]: ...

    async def close(self) -> None: ...


def _limit_state(check: Check, outcome: Outcome) -> LimitState:
    if check.kind == "lease":
        return LimitState(
            check.quota, check.limit, check.limit - outcome.used, None, None
        )
    span = check.window_ms if check.kind == "window" else check.span_ms
    return LimitState(
        check.quota,
        check.limit,
        check.limit - outcome.used,
        whole_seconds(outcome.reset_ms),
        whole_seconds(span),
    )


@dataclass
class Admission:
    """One admitted request: what it reserved and where, until `settle` (mutable only in `settled`)."""

    id: str
    key_id: str
    model: str
    limits: Limits
    estimate: TokenEstimate
    at: datetime
    tokens: int = 0
    micro_usd: int = 0
    checks: tuple[Check, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    local: bool = False
    settled: bool = field(default=False, compare=False)

    def lease(self) -> Check | None:
        return next((c for c in self.checks if c.kind == "lease"), None)

    def states(self) -> list[LimitState]:
        return [_limit_state(c, o) for c, o in zip(self.checks, self.outcomes)]

    def headers(self) -> dict[str, str]:
        """`RateLimit-Policy` and `RateLimit` for a success (empty for a key without limits)."""
        return rate_limit_headers(self.states())


def _describe(check: Check) -> str:
    quota, limit = check.quota, check.limit
    if quota.kind == "lease":
        return f"{limit} concurrent streams per API key"
    if quota.kind == "window":
        unit = "requests" if quota.policy == "rpm" else "tokens"
        return f"{limit} {unit} in any 60 s window per API key"
    amount = f"${limit / MICRO:g}" if quota.usd else f"{limit} tokens"
    return f"{amount} per UTC {quota.period} per API key"


class QuotaExceeded(TooManyRequests):
    """429 RESOURCE_EXHAUSTED in Google's shape: QuotaFailure, ErrorInfo, RetryInfo, Retry-After, RateLimit."""

    def __init__(
        self,
        key_id: str,
        refused: Sequence[tuple[Check, Outcome]],
        states: Sequence[LimitState],
    ) -> None:
        retry_s = whole_seconds(max(o.retry_ms for _, o in refused))
        first = refused[0][0].quota
        message = (
            f"Quota exceeded for quota metric '{first.metric}' and limit '{first.quota_id}' "
            f"of API key '{key_id}'. Please retry in {retry_s}s."
        )
        violations = [
            {
                "quotaId": c.quota.quota_id,
                "quotaMetric": c.quota.metric,
                "quotaValue": str(c.limit),
                "quotaDimensions": {"keyId": key_id},
                "description": _describe(c),
            }
            for c, _ in refused
        ]
        reason = "BUDGET_EXCEEDED" if first.budget else "RATE_LIMIT_EXCEEDED"
        details = [
            {"@type": QUOTA_FAILURE, "violations": violations},
            {
                "@type": ERROR_INFO,
                "reason": reason,
                "domain": ERROR_DOMAIN,
                "metadata": {"quota_limit": first.quota_id, "key_id": key_id},
            },
            {"@type": RETRY_INFO, "retryDelay": f"{retry_s}s"},
        ]
        headers = {"Retry-After": str(retry_s), **rate_limit_headers(states)}
        super().__init__(message, details=details, headers=headers)
        self.retry_after_s = retry_s
        self.quota_ids = [c.quota.quota_id for c, _ in refused]
