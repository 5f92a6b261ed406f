"""Process accounting from /proc: CPU time, resident memory and thread count of a process tree."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Self

_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces or parentheses; fields start after the last ')'.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree(pid: int) -> list[int]:
    """`pid` and its living descendants (a gunicorn master and its workers, nginx and its workers)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(_stat_fields(int(entry))[1])
            except (OSError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def cpu_ms(pids: list[int]) -> float:
    """User + system CPU milliseconds used so far by `pids` (threads included)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total * _TICK_MS


def status(pid: int, name: str) -> int:
    """One numeric field of /proc/<pid>/status (VmRSS in kB, Threads), 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pids: list[int]) -> float:
    """Summed VmRSS of `pids`, in MiB."""
    return sum(status(pid, "VmRSS") for pid in pids) / 1024


class PeakSampler:
    """Samples RSS and thread count of a process tree on a thread until stopped; keeps the peaks."""

    def __init__(self, root: int, every_s: float = 0.5) -> None:
        self.pids, self.every_s = tree(root), every_s
        self.peak_rss_mb = 0.0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        pids = self.pids
        self.peak_rss_mb = max(self.peak_rss_mb, rss_mb(pids))
        self.peak_threads = max(
            self.peak_threads, sum(status(p, "Threads") for p in pids)
        )

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()
