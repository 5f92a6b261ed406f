"""One key's counters as plain JSON-able data, and the admission algorithm over them (memory and DynamoDB).

The state is `{"w": {name: [[expires_ms, amount, id], ...]}, "l": {name: {id: expires_ms}},
"c": {name: [value, expires_ms]}}`: sliding-window logs, stream leases and UTC day/month counters.
The Redis store runs the same algorithm in Lua (lib/limits/redis.py); tests hold the two to one behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.limits.base import Adjustment, Check, Outcome, Verdict

# A day or month counter outlives its window by a day, so a late settle still lands in it.
COUNTER_GRACE_MS = 86_400_000
KeyState = dict[str, Any]


def new_state() -> KeyState:
    return {"w": {}, "l": {}, "c": {}}


def prune(state: KeyState, now_ms: int) -> None:
    """Forget entries that left their window, expired leases and ended counters."""
    for name in list(state["w"]):
        state["w"][name] = [e for e in state["w"][name] if e[0] > now_ms]
        if not state["w"][name]:
            del state["w"][name]
    for name in list(state["l"]):
        state["l"][name] = {i: t for i, t in state["l"][name].items() if t > now_ms}
        if not state["l"][name]:
            del state["l"][name]
    for name in [n for n, (_, t) in state["c"].items() if t <= now_ms]:
        del state["c"][name]


def used(state: KeyState, check: Check) -> int:
    if check.kind == "window":
        return sum(e[1] for e in state["w"].get(check.name, ()))
    if check.kind == "lease":
        return len(state["l"].get(check.name, ()))
    return state["c"].get(check.name, [0])[0]


def retry_ms(state: KeyState, check: Check, in_use: int, now_ms: int) -> int:
    """How long until `check.amount` more fits: entries leave oldest first, leases expire, the window ends."""
    if check.kind == "window":
        freed = 0
        for expires, amount, _ in sorted(state["w"].get(check.name, ())):
            freed += amount
            if in_use - freed + check.amount <= check.limit:
                return expires - now_ms
        return check.window_ms
    if check.kind == "lease":
        expiries = sorted(state["l"].get(check.name, {}).values())
        over = in_use - check.limit
        return expiries[over] - now_ms if 0 <= over < len(expiries) else check.window_ms
    return check.window_ms


def _charge(state: KeyState, check: Check, admission_id: str, now_ms: int) -> None:
    if check.kind == "window":
        entry = [now_ms + check.window_ms, check.amount, admission_id]
        state["w"].setdefault(check.name, []).append(entry)
    elif check.kind == "lease":
        state["l"].setdefault(check.name, {})[admission_id] = now_ms + check.window_ms
    else:
        expires = now_ms + check.window_ms + COUNTER_GRACE_MS
        state["c"].setdefault(check.name, [0, expires])[0] += check.amount


def _reset_ms(state: KeyState, check: Check, now_ms: int) -> int:
    if check.kind == "window":
        log = state["w"].get(check.name)
        return min(e[0] for e in log) - now_ms if log else 0
    return 0 if check.kind == "lease" else check.window_ms


def admit(
    state: KeyState, checks: Sequence[Check], admission_id: str, now_ms: int
) -> Verdict:
    """Charge every check, or none of them when any would go over its limit."""
    prune(state, now_ms)
    before = [used(state, c) for c in checks]
    fits = [u + c.amount <= c.limit for u, c in zip(before, checks)]
    if not all(fits):
        outcomes = tuple(
            Outcome(
                u,
                0 if ok else retry_ms(state, c, u, now_ms),
                _reset_ms(state, c, now_ms),
            )
            for u, c, ok in zip(before, checks, fits)
        )
        return Verdict(False, outcomes)
    for check in checks:
        _charge(state, check, admission_id, now_ms)
    return Verdict(
        True,
        tuple(
            Outcome(u + c.amount, 0, _reset_ms(state, c, now_ms))
            for u, c in zip(before, checks)
        ),
    )


def renew(
    state: KeyState, name: str, admission_id: str, ttl_ms: int, now_ms: int
) -> bool:
    """Extend a live lease; False when it already expired (it is not taken again)."""
    prune(state, now_ms)
    leases = state["l"].get(name, {})
    if admission_id not in leases:
        return False
    leases[admission_id] = now_ms + ttl_ms
    return True


def settle(
    state: KeyState,
    admission_id: str,
    adjustments: Sequence[Adjustment],
    release: str | None,
    now_ms: int,
) -> None:
    """Replace reservations by what was used (only in windows that still hold them); free the lease."""
    prune(state, now_ms)
    for adj in adjustments:
        if adj.kind == "window":
            for entry in state["w"].get(adj.name, ()):
                if entry[2] == admission_id:
                    entry[1] = adj.actual
        elif adj.kind == "counter" and adj.name in state["c"]:
            state["c"][adj.name][0] += adj.actual - adj.reserved
    if release is not None and release in state["l"]:
        state["l"][release].pop(admission_id, None)
        if not state["l"][release]:
            del state["l"][release]
