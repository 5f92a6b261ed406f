"""Where things are: the repository root and the test data folders."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
FIXTURES = DATA / "fixtures"  # copies of ../shared/fixtures
EVENTS = ROOT / "tests" / "events"
