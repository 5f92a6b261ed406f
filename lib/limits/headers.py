"""The IETF RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers-11) and Retry-After."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lib.limits.policy import Quota

DAY_S = 86_400
# Draft 11 registers only "requests", "content-bytes" and "concurrent-requests" as quota units, so
# tokens and micro-USD are named in a vendor-prefixed parameter, as the draft asks for extensions.
_UNITS = {"tpm": "tokens", "tpd": "tokens", "tpmo": "tokens"}


@dataclass(frozen=True)
class LimitState:
    """One limit as one admission saw it: the limit, what remains, seconds until more frees (None: a lease)."""

    quota: Quota
    limit: int
    remaining: int
    reset_s: int | None
    window_s: int | None


def whole_seconds(ms: int) -> int:
    """Milliseconds rounded up to whole seconds, at least 1 (Retry-After and `t` are integers)."""
    return max(1, math.ceil(ms / 1000))


def _unit(quota: Quota) -> str:
    if quota.kind == "lease":
        return ';qu="concurrent-requests"'
    if quota.usd:
        return ';sg-unit="micro-usd"'
    if quota.policy in _UNITS:
        return f';sg-unit="{_UNITS[quota.policy]}"'
    return ""


def policy_item(state: LimitState) -> str:
    window = "" if state.window_s is None else f";w={state.window_s}"
    return f'"{state.quota.policy}";q={state.limit}{window}{_unit(state.quota)}'


def limit_item(state: LimitState) -> str:
    reset = "" if state.reset_s is None else f";t={state.reset_s}"
    return f'"{state.quota.policy}";r={max(0, state.remaining)}{reset}'


def rate_limit_headers(states: Sequence[LimitState]) -> dict[str, str]:
    """`RateLimit-Policy` and `RateLimit` for every limit of an admission; nothing for a key without limits."""
    if not states:
        return {}
    return {
        "RateLimit-Policy": ", ".join(policy_item(s) for s in states),
        "RateLimit": ", ".join(limit_item(s) for s in states),
    }
