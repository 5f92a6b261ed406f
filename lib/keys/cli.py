"""The key CLI (`python -m lib.keys`, `streamgate-keys`): new, revoke and list keys in any key store."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from lib.config import ConfigError
from lib.keys.base import KeyStoreError
from lib.keys.chooser import open_key_store
from lib.keys.document import (
    ApiKey,
    KeyDocumentError,
    KeySet,
    hash_key,
    parse_key_document,
)

KEY_PREFIX = "sg_"


class KeyChangeError(ValueError):
    """The change makes no sense for the current key set (duplicate or unknown id)."""


def generate_key() -> str:
    """A new client API key: `sg_` and 32 random bytes, url-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def add_key(keyset: KeySet, key_id: str, digest: str, models: Sequence[str]) -> KeySet:
    """`keyset` plus an enabled key; ids are never reused (a revoked id keeps its audit entry)."""
    for key in keyset.keys:
        if key.id == key_id:
            state = "a disabled key" if key.disabled else "a key"
            raise KeyChangeError(f"'{key_id}' is already {state}; choose another id")
    return KeySet((*keyset.keys, ApiKey(key_id, digest, tuple(models))))


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


def format_keys(keyset: KeySet) -> str:
    """A table of ids, states and model globs; never a hash."""
    rows = [("ID", "STATE", "MODELS")] + [
        (k.id, "disabled" if k.disabled else "active", " ".join(k.models) or "*")
        for k in keyset.keys
    ]
    width = max(len(r[0]) for r in rows)
    return "".join(f"{r[0]:<{width}}  {r[1]:<8}  {r[2]}\n" for r in rows)


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
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="create a key and print it once")
    new.add_argument("--id", required=True)
    new.add_argument(
        "--models", nargs="+", default=[], metavar="GLOB", help="allowed models"
    )
    revoke = commands.add_parser("revoke", help="disable a key (kept for audit)")
    revoke.add_argument("--id", required=True)
    commands.add_parser("list", help="show ids, states and model globs")
    return parser


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> None:
    """Carry out one parsed command; messages for people go to stderr."""
    spec = args.keys or env.get("STREAMGATE_KEYS", "")
    if not spec:
        raise KeyStoreError("no key store: pass --keys SPEC or set STREAMGATE_KEYS")
    store = open_key_store(spec, env)
    if args.command == "list":
        out.write(format_keys(parse_key_document(store.read())))
    elif args.command == "new":
        key = generate_key()
        digest = hash_key(key)
        store.update(lambda keyset: add_key(keyset, args.id, digest, args.models))
        out.write(key + "\n")
        out.flush()
        print(
            f"Created key '{args.id}'. It is shown only this once: store it now.",
            file=sys.stderr,
        )
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
