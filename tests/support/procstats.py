"""The gunicorn worker seen from outside, through /proc: its pid, open sockets, threads and memory."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcStats:
    """Open sockets, threads and resident memory of one process."""

    sockets: int
    threads: int
    rss_mb: float


def worker_pid(master_pid: int, timeout_s: float = 10.0) -> int:
    """The gunicorn worker (the only child) of the functions-framework process."""
    deadline = time.monotonic() + timeout_s
    children_file = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    while time.monotonic() < deadline:
        children = children_file.read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn master {master_pid} has no worker")


def proc_stats(pid: int) -> ProcStats:
    """Sockets among `/proc/<pid>/fd`, and `Threads` / `VmRSS` from `/proc/<pid>/status`."""
    sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            sockets += os.readlink(fd).startswith("socket:")
        except OSError:
            pass  # closed while we looked
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    rss_kb = int(status["VmRSS"].split()[0])
    return ProcStats(sockets, int(status["Threads"]), round(rss_kb / 1024, 1))


def settle(
    pid: int, sockets: int, threads: int, slack: int = 5, timeout_s: float = 30.0
) -> ProcStats:
    """Poll until the worker has at most `sockets` and `threads` (+ `slack`), or time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = proc_stats(pid)
        back = now.sockets <= sockets + slack and now.threads <= threads + slack
        if back or time.monotonic() > deadline:
            return now
        time.sleep(0.1)
