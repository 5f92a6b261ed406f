"""Terraform as data: the stacks' paths, and their HCL parsed (python-hcl2) and merged per root module."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from tests.support.paths import ROOT

TERRAFORM = ROOT / "terraform"
STACKS = ("gcp", "aws")
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
SCRIPT = TERRAFORM / "gcp/scripts/streaming_gateway.py"


def tf_files() -> list[Path]:
    return sorted(TERRAFORM.rglob("*.tf"))


@functools.cache
def load(path: Path) -> dict[str, Any]:
    """One parsed file (cached: parsing is slow; callers must not modify the result)."""
    with path.open() as f:
        return hcl2.load(f, serialization_options=OPTIONS)


@functools.cache
def load_stack(stack: str) -> dict[str, Any]:
    """All blocks of a root module, merged: {"resource": {type: {name: body}}, ...}."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}}
    merged["locals"] = {}
    for path in sorted((TERRAFORM / stack).glob("*.tf")):
        doc = load(path)
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    merged[kind].setdefault(rtype, {}).update(named)
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                merged[kind].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
    return merged


def strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("__")}
