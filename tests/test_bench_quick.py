"""The benchmark itself runs: every target, scenario and measurement at tiny sizes (no timing verdicts)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def test_quick_benchmark_runs_end_to_end(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--no-chart",
            "--out-dir",
            str(tmp_path),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = (tmp_path / "RESULTS.md").read_text()
    assert "## Targets" in results
    assert "gateway" in results and "direct" in results
