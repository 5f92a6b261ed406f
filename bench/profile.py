"""`--profile DIR`: py-spy samples the gateway worker while a scenario runs; collapsed stacks plus a summary."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def py_spy() -> str | None:
    return shutil.which(
        "py-spy", path=str(Path(sys.executable).parent)
    ) or shutil.which("py-spy")


def summarize(raw: Path, top: int = 25) -> str:
    """The functions with the most samples on top of the stack (self) and anywhere in it (inclusive)."""
    own, anywhere, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n
    lines = [f"{total} samples (threads holding the GIL)", "", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in anywhere.most_common(top * 2)]
    return "\n".join(lines) + "\n"


@contextmanager
def recording(pid: int, out: Path, rate: int = 250) -> Iterator[None]:
    """Sample `pid`'s GIL-holding thread until the block ends; writes `out`.txt and `out`.top.txt."""
    binary = py_spy()
    if binary is None:
        print(
            "py-spy is missing (pip install -r bench/requirements.txt): no profile",
            file=sys.stderr,
        )
        yield
        return
    raw = out.with_suffix(".txt")
    cmd = [
        binary,
        "record",
        "-p",
        str(pid),
        "-r",
        str(rate),
        "--nonblocking",
        "--gil",
        "-f",
        "raw",
        "-o",
        str(raw),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # let py-spy attach before the load starts
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if raw.exists():
            out.with_suffix(".top.txt").write_text(summarize(raw))
