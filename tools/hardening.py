"""Hardening: the report (`python -m tools.hardening`) over the hardening tests in `tests/hardening/`.

The tests run bounded versions in CI; their shared helpers live in `tests/support/`. The report runs
the same tests in-process with `HARDENING_SCALE` (default 10) times the examples, streams and clients,
collects what they `record()`, scans every gateway log for the run's secrets and prints the table
quoted in `docs/reliability.md`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.env import SECRETS
from tests.support.hardening import RESULTS_ENV, SCALE_ENV, leaked

TEST_PATHS = ("tests/hardening",)
ROOT = Path(__file__).resolve().parent.parent


# --- the report ----------------------------------------------------------------------------------


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _sum(rows: list[dict[str, Any]], section: str, key: str) -> int:
    return sum(int(r.get(key, 0)) for r in rows if r["section"] == section)


def _first(rows: list[dict[str, Any]], section: str) -> dict[str, Any]:
    return next((r for r in rows if r["section"] == section), {})


def _pair(row: dict[str, Any], *keys: str) -> str:
    return " / ".join(str(row.get(k, "-")) for k in keys)


def render_table(
    rows: list[dict[str, Any]], log_leaks: list[str], secrets: int, scale: float
) -> str:
    """The markdown tables of one report run."""
    load, disc = _first(rows, "load"), _first(rows, "disconnects")
    totals = {
        f"{section}.{key}": _sum(rows, section, key)
        for section, key in (
            ("fuzz", "cases"),
            ("fuzz", "failures"),
            ("paths", "examples"),
            ("paths", "violations"),
            ("paths_http", "sent"),
            ("paths_http", "off_pin"),
        )
    }
    leaks = _sum(rows, "leaks", "hits") + len(log_leaks)
    checks = [
        (
            "fuzz cases run (schemathesis, spec from `tools.openapi`)",
            totals["fuzz.cases"],
        ),
        (
            "fuzz failures (5xx, non-Google 4xx, bad stream, hang)",
            totals["fuzz.failures"],
        ),
        (
            "path property examples / violations",
            _pair(totals, "paths.examples", "paths.violations"),
        ),
        (
            "hostile paths over HTTP / upstream URLs off the pin",
            _pair(totals, "paths_http.sent", "paths_http.off_pin"),
        ),
        (
            "streams under faults: completed / errored / lost",
            _pair(load, "completed", "errored", "lost"),
        ),
        (
            "disconnected clients / upstream closed / sockets left",
            _pair(disc, "clients", "upstream_closed", "sockets_left"),
        ),
        (
            "worker sockets before / after the load",
            _pair(load, "sockets_before", "sockets_after"),
        ),
        (
            "worker threads before / after the load",
            _pair(load, "threads_before", "threads_after"),
        ),
        (
            "worker RSS MB before / after the load",
            _pair(load, "rss_before", "rss_after"),
        ),
        (f"leaked secrets in error bodies and logs ({secrets} sought)", leaks),
    ]
    lines = [
        f"Hardening report {datetime.date.today().isoformat()}, scale {scale:g}",
        "",
        "| check | result |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in checks),
        "",
        "| hostile input | status | outcome |",
        "|---|---|---|",
        *(
            f"| {r['name']} | {r['status']} | {r['outcome']} |"
            for r in rows
            if r["section"] == "hostile"
        ),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the hardening tests at `--scale`, then print the table; non-zero on any failure."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.hardening", description=__doc__
    )
    parser.add_argument(
        "--scale", type=float, default=10.0, help="multiplier (CI uses 1)"
    )
    args = parser.parse_args(argv)
    import pytest

    with tempfile.TemporaryDirectory(prefix="hardening-") as tmp:
        results = Path(tmp) / "results.jsonl"
        os.environ[SCALE_ENV], os.environ[RESULTS_ENV] = f"{args.scale:g}", str(results)
        os.chdir(ROOT)
        code = pytest.main(
            [*TEST_PATHS, "-q", "-p", "no:cacheprovider", f"--basetemp={tmp}/pytest"]
        )
        logs = [p.read_text(errors="replace") for p in Path(tmp).rglob("*.log")]
        log_leaks = leaked(logs, SECRETS)
        rows = _load(results)
    print()
    print(render_table(rows, log_leaks, len(SECRETS), args.scale))
    failed = code != 0 or log_leaks or _first(rows, "load").get("lost", 1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
