"""`make run` helper: make a local keys file with one dev key if none exists, and print the key."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

from lib.keys.document import hash_key


def ensure_dev_key(keys_file: Path) -> str:
    """The local dev key (created with its keys file on first use)."""
    key_file = keys_file.with_name("dev-key.txt")
    if keys_file.exists() and key_file.exists():
        return key_file.read_text().strip()
    key = "sg_" + secrets.token_urlsafe(32)
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    doc = {"keys": [{"id": "dev", "sha256": hash_key(key), "disabled": False}]}
    keys_file.write_text(json.dumps(doc, indent=2) + "\n")
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".local/keys.json")
    print(f"streamgate dev key (keys file {path}): {ensure_dev_key(path)}", flush=True)
