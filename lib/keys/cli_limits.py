"""The key CLI's limits: the `--rpm ... --expires` flags, the `set` change, compact listing, `usage` report and page."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lib.keys.base import KeyStoreError
from lib.keys.document import ApiKey
from lib.keys.file import replace_file
from lib.keys.usage_page import render_usage_page
from lib.limits.base import StoreUnavailable, UsageRecord
from lib.limits.chooser import open_store, store_kind
from lib.limits.limiter import Limiter
from lib.limits.policy import (
    FIELDS,
    MICRO,
    Limits,
    LimitsError,
    days_back,
    format_utc,
    parse_utc,
    parse_value,
)

# The word that clears a limit or the expiry (`--rpm none`, `--expires none`).
CLEAR = "none"
FLAGS = {
    "--rpm": "requestsPerMinute",
    "--tpm": "tokensPerMinute",
    "--concurrent": "concurrentStreams",
    "--tokens-per-day": "tokensPerDay",
    "--tokens-per-month": "tokensPerMonth",
    "--usd-per-day": "usdPerDay",
    "--usd-per-month": "usdPerMonth",
}
# "Not given" for --expires (None means "clear it").
KEEP: Any = object()


def _limit_type(name: str) -> Callable[[str], int | None]:
    quota = FIELDS[name]

    def parse(text: str) -> int | None:
        if text.lower() == CLEAR:
            return None
        try:
            number = float(text) if quota.usd else int(text)
            return parse_value(quota, number, name)
        except (ValueError, LimitsError):
            kind = "a number of US dollars" if quota.usd else "a positive integer"
            raise argparse.ArgumentTypeError(f"expected {kind} or '{CLEAR}'") from None

    return parse


def _expires_type(text: str) -> datetime | None:
    if text.lower() == CLEAR:
        return None
    try:
        return parse_utc(text, "--expires")
    except LimitsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(f"limits (give '{CLEAR}' to clear one)")
    for flag, name in FLAGS.items():
        group.add_argument(
            flag,
            dest=f"limit_{name}",
            type=_limit_type(name),
            default=KEEP,
            metavar="N",
        )
    group.add_argument(
        "--expires",
        type=_expires_type,
        default=KEEP,
        metavar="TIME",
        help="ISO-8601 UTC, e.g. 2027-01-01T00:00:00Z",
    )


def limit_changes(args: argparse.Namespace) -> dict[str, int | None]:
    """The limits the command line sets or clears (camelCase names)."""
    given = {name: getattr(args, f"limit_{name}") for name in FLAGS.values()}
    return {name: value for name, value in given.items() if value is not KEEP}


def _number(value: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def format_limits(limits: Limits) -> str:
    """`rpm=60 tpm=200k streams=4 tpd=2M usd-day=5` (USD in dollars); `-` for none."""
    parts = []
    for quota in limits.active():
        value = limits.value(quota) or 0
        shown = f"{value / MICRO:g}" if quota.usd else _number(value)
        parts.append(f"{quota.policy}={shown}")
    return " ".join(parts) or "-"


def key_row(key: ApiKey, now: datetime) -> tuple[str, ...]:
    state = "disabled" if key.disabled else "expired" if key.expired(now) else "active"
    expires = format_utc(key.expires_at) if key.expires_at else "-"
    return (
        key.id,
        state,
        " ".join(key.models) or "*",
        format_limits(key.limits),
        expires,
    )


def format_usage(rows: Sequence[UsageRecord]) -> str:
    """A table of usage rows and their total."""
    header = (
        "DAY",
        "ID",
        "MODEL",
        "REQUESTS",
        "PROMPT",
        "OUTPUT",
        "THOUGHTS",
        "CACHED",
        "USD",
    )
    total = UsageRecord.total(rows, day="TOTAL")
    table = [header] + [
        (
            r.day,
            r.key_id,
            r.model,
            *(str(getattr(r, n)) for n in UsageRecord.COUNTS[:-1]),
            f"{r.micro_usd / MICRO:.6f}",
        )
        for r in [*rows, total]
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n"
        for row in table
    )


async def _read_usage(
    spec: str, key_id: str | None, days: int, now: datetime
) -> list[UsageRecord]:
    limiter = Limiter(open_store(spec, timeout_s=5.0))
    try:
        return await limiter.usage(key_id, days, now)
    finally:
        await limiter.close()


def write_usage_page(
    path: str, rows: Sequence[UsageRecord], args: argparse.Namespace, now: datetime
) -> None:
    """`usage --html FILE`: the page written whole or not at all, and one line on stderr saying so."""
    page = render_usage_page(rows, days=args.days, generated_at=now, key_id=args.id)
    data = page.encode()
    try:
        replace_file(Path(path), data)
    except OSError as exc:
        raise KeyStoreError(f"cannot write {path} ({exc.strerror})") from None
    keys = len({r.key_id for r in rows})
    days = len(days_back(now, args.days))
    print(
        f"Wrote {path}: {keys} key{'s' if keys != 1 else ''}, "
        f"{days} UTC day{'s' if days != 1 else ''}, {len(data):,} bytes.",
        file=sys.stderr,
    )


def usage_report(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """The `usage` command's output: JSON rows or a table (nothing for `--html`, which writes a file)."""
    spec = args.limits or env.get("STREAMGATE_LIMITS", "")
    if store_kind(spec) == "memory":
        raise KeyStoreError(
            "usage is kept in the shared limits store: pass --limits URL or set STREAMGATE_LIMITS"
        )
    # One clock for the rows read and the page's period, so midnight can't fall between them.
    now = datetime.now(UTC)
    try:
        rows = asyncio.run(_read_usage(spec, args.id, args.days, now))
    except StoreUnavailable as exc:
        raise KeyStoreError(f"limits store unreachable ({exc})") from None
    if args.html:
        write_usage_page(args.html, rows, args, now)
        return ""
    if args.json:
        return json.dumps([r.to_json() for r in rows], indent=2) + "\n"
    return format_usage(rows)
