"""`python -m bench [--quick]`: the relay vs nginx vs the upstream directly, in one run (see docs/performance.md)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from bench.fakeupstream import raise_fd_limit
from bench.report import render
from bench.runner import Bench, Options
from bench.stats import FULL, QUICK
from bench.targets import checks

BENCH_DIR = Path(__file__).resolve().parent


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of a few seconds (numbers not meaningful)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="where RESULTS.md and latency.png go (default: bench/, or a temp dir with --quick)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("THREADS") or 80),
        help="gateway THREADS (default $THREADS or 80, as deployed)",
    )
    parser.add_argument(
        "--long-threads",
        type=int,
        default=1000,
        help="gateway THREADS for the long-stream scenario (>= its streams)",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds of the c=1 and c=100 scenarios (default 3)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the gateway worker in the first c=100 and long rounds; stacks go to DIR",
    )
    parser.add_argument(
        "--no-chart",
        action="store_true",
        help="skip latency.png (no matplotlib needed)",
    )
    return parser.parse_args(argv)


def _options(args: argparse.Namespace) -> Options:
    scenarios = QUICK if args.quick else FULL
    if args.rounds:
        scenarios = tuple(
            s if s.key == "long" else type(s)(**{**s.__dict__, "rounds": args.rounds})
            for s in scenarios
        )
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    return Options(
        scenarios,
        args.threads,
        args.long_threads,
        1 if args.quick else 5,
        args.quick,
        args.profile,
    )


def main(argv: list[str] | None = None) -> int:
    """Run, write RESULTS.md (+ latency.png), print the verdicts; exit 1 if any request failed."""
    args = _args(argv)
    raise_fd_limit()
    out_dir = args.out_dir or (
        Path(tempfile.gettempdir()) / "streamgate-bench-quick"
        if args.quick
        else BENCH_DIR
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="streamgate-bench-") as workdir:
        results = Bench(Path(workdir), _options(args)).run()
    command = (
        "make bench"
        if not args.quick and argv is None and len(sys.argv) == 1
        else shlex.join(
            ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]
        )
    )
    (out_dir / "RESULTS.md").write_text(render(results, command))
    if not args.no_chart:
        try:
            from bench.chart import draw

            draw(results, out_dir / "latency.png")
        except ImportError:
            print(
                "matplotlib is missing: no chart (pip install -r bench/requirements.txt)",
                file=sys.stderr,
            )
    print(f"\nwrote {out_dir / 'RESULTS.md'}")
    for check in checks(results):
        print(
            f"{check.verdict:4}  {check.name}: {check.measured} (asked {check.target})"
        )
    if results.errors:
        print(f"{results.errors} request(s) failed", file=sys.stderr)
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
