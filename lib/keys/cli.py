"""The key CLI (`python -m lib.keys`, `streamgate-keys`): new, set, revoke, list keys; usage from the limits store."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from lib.config import ConfigError
from lib.keys.base import KeyStoreError
from lib.keys.chooser import open_key_store
from lib.keys.cli_limits import (
    KEEP,
    add_limit_flags,
    key_row,
    limit_changes,
    usage_report,
)
from lib.keys.document import (
    ApiKey,
    KeyDocumentError,
    KeySet,
    hash_key,
    parse_key_document,
)
from lib.limits.policy import Limits

KEY_PREFIX = "sg_"


class KeyChangeError(ValueError):
    """The change makes no sense for the current key set (duplicate or unknown id)."""


def generate_key() -> str:
    """A new client API key: `sg_` and 32 random bytes, url-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def add_key(
    keyset: KeySet,
    key_id: str,
    digest: str,
    models: Sequence[str],
    limits: Limits | None = None,
    expires_at: datetime | None = None,
) -> KeySet:
    """`keyset` plus an enabled key; ids are never reused (a revoked id keeps its audit entry)."""
    for key in keyset.keys:
        if key.id == key_id:
            state = "a disabled key" if key.disabled else "a key"
            raise KeyChangeError(f"'{key_id}' is already {state}; choose another id")
    key = ApiKey(key_id, digest, tuple(models), False, limits or Limits(), expires_at)
    return KeySet((*keyset.keys, key))


def set_key(
    keyset: KeySet, key_id: str, changes: dict[str, int | None], expires: Any = KEEP
) -> KeySet:
    """`keyset` with `key_id`'s limits and expiry changed as given (the same keyset if nothing changes)."""
    found = [k for k in keyset.keys if k.id == key_id]
    if not found:
        raise KeyChangeError(f"no key with id '{key_id}'")
    key = found[0]
    changed = dataclasses.replace(
        key,
        limits=key.limits.replace(changes),
        expires_at=key.expires_at if expires is KEEP else expires,
    )
    if changed == key:
        return keyset
    return KeySet(tuple(changed if k.id == key_id else k for k in keyset.keys))


def revoke_key(keyset: KeySet, key_id: str) -> KeySet:
    """`keyset` with `key_id` disabled (the same keyset if it already was)."""
    found = [k for k in keyset.keys if k.id == key_id]
    if not found:
        raise KeyChangeError(f"no key with id '{key_id}'")
    if found[0].disabled:
        return keyset
    return KeySet(
        tuple(
            dataclasses.replace(k, disabled=True) if k.id == key_id else k
            for k in keyset.keys
        )
    )


def format_keys(keyset: KeySet, now: datetime | None = None) -> str:
    """A table of ids, states, model globs and (when any key has them) limits and expiry; never a hash."""
    now = now or datetime.now(UTC)
    rows = [("ID", "STATE", "MODELS", "LIMITS", "EXPIRES")]
    rows += [key_row(k, now) for k in keyset.keys]
    if all(r[3:] == ("-", "-") for r in rows[1:]):
        rows = [r[:3] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    widths[1] = max(widths[1], 8)
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lib.keys", description="Manage streamgate API keys."
    )
    parser.add_argument(
        "--keys",
        metavar="SPEC",
        help="key store: a file path, projects/P/secrets/S, arn:aws:secretsmanager:... "
        "or aws-secretsmanager://NAME (default: $STREAMGATE_KEYS)",
    )
    parser.add_argument(
        "--limits",
        metavar="URL",
        help="limits store for `usage`: redis://..., rediss://... or dynamodb://TABLE "
        "(default: $STREAMGATE_LIMITS)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="create a key and print it once")
    new.add_argument("--id", required=True)
    new.add_argument(
        "--models", nargs="+", default=[], metavar="GLOB", help="allowed models"
    )
    add_limit_flags(new)
    change = commands.add_parser("set", help="change a key's limits or expiry")
    change.add_argument("--id", required=True)
    add_limit_flags(change)
    revoke = commands.add_parser("revoke", help="disable a key (kept for audit)")
    revoke.add_argument("--id", required=True)
    commands.add_parser("list", help="show ids, states, model globs, limits, expiry")
    usage = commands.add_parser("usage", help="usage per key, model and UTC day")
    usage.add_argument("--id", help="one key (default: every key)")
    usage.add_argument("--days", type=int, default=7, help="UTC days back (default 7)")
    shape = usage.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="JSON rows, not a table")
    shape.add_argument(
        "--html",
        metavar="FILE",
        help="write a self-contained HTML page of charts (per key: tokens and USD a day, top models)",
    )
    # Also after the subcommand (`usage --limits URL`); the global flag when absent here.
    usage.add_argument("--limits", metavar="URL", default=argparse.SUPPRESS)
    return parser


def _new(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    key = generate_key()
    digest = hash_key(key)
    limits = Limits().replace(limit_changes(args))
    expires = None if args.expires is KEEP else args.expires
    store.update(
        lambda keyset: add_key(keyset, args.id, digest, args.models, limits, expires)
    )
    out.write(key + "\n")
    out.flush()
    print(
        f"Created key '{args.id}'. It is shown only this once: store it now.",
        file=sys.stderr,
    )


def _set(store: Any, args: argparse.Namespace) -> None:
    changes = limit_changes(args)
    if not changes and args.expires is KEEP:
        raise KeyChangeError("nothing to change: give a limit flag or --expires")
    store.update(lambda keyset: set_key(keyset, args.id, changes, args.expires))
    print(
        f"Updated key '{args.id}'. Gateways apply it within STREAMGATE_KEYS_TTL_S.",
        file=sys.stderr,
    )


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> None:
    """Carry out one parsed command; messages for people go to stderr."""
    if args.command == "usage":
        out.write(usage_report(args, env))
        return
    spec = args.keys or env.get("STREAMGATE_KEYS", "")
    if not spec:
        raise KeyStoreError("no key store: pass --keys SPEC or set STREAMGATE_KEYS")
    store = open_key_store(spec, env)
    if args.command == "list":
        out.write(format_keys(parse_key_document(store.read())))
    elif args.command == "new":
        _new(store, args, out)
    elif args.command == "set":
        _set(store, args)
    else:
        store.update(lambda keyset: revoke_key(keyset, args.id))
        print(
            f"Revoked key '{args.id}'. Gateways refuse it within STREAMGATE_KEYS_TTL_S.",
            file=sys.stderr,
        )


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """The CLI entry point; returns the exit status (0 ok, 1 failed, 2 usage)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        run(args, os.environ if env is None else env, out or sys.stdout)
    except (KeyStoreError, KeyDocumentError, KeyChangeError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
