"""Runs every scenario against direct, nginx and the gateway, interleaved round by round."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.loadclient import Plan, run_load
from bench.procstat import PeakSampler, cpu_ms, rss_mb, status
from bench.profile import recording
from bench.servers import (
    GATEWAY_PATH,
    Server,
    make_keys_file,
    start_fake,
    start_gateway,
    start_nginx,
)
from bench.startup import ImportTime, cold_start, import_time
from bench.stats import RoundStats, Scenario, Summary

TARGETS = ("direct", "nginx", "gateway")
_WORKER_CONNECTIONS = 1000  # gunicorn's default; functions-framework does not set it


@dataclass
class Options:
    """What to run; the defaults are the full benchmark."""

    scenarios: tuple[Scenario, ...]
    threads: int = 80
    long_threads: int = 1000
    startup_runs: int = 5
    quick: bool = False
    profile_dir: Path | None = None


@dataclass
class Results:
    """Everything measured in one run."""

    options: Options
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    summaries: dict[tuple[str, str, str], Summary] = field(default_factory=dict)
    memory: list[tuple[str, float, int]] = field(default_factory=list)
    load_avg: list[str] = field(default_factory=list)
    cold_starts: list[float] = field(default_factory=list)
    imports: list[ImportTime] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    nginx_version: str = ""

    def summary(self, scenario: str, framing: str, target: str) -> Summary | None:
        return self.summaries.get((scenario, framing, target))

    @property
    def errors(self) -> int:
        return sum(sum(s.errors.values()) for s in self.summaries.values())


def _measure(server: Server, plan: Plan) -> RoundStats:
    pids = server.pids()
    before = cpu_ms(pids)
    run = asyncio.run(run_load(plan))
    return RoundStats.of(run, cpu_ms(pids) - before)


def _plan(server: Server, key: str, scenario: Scenario, framing: str) -> Plan:
    timeout = scenario.chunks * scenario.interval_ms / 1000 + scenario.ramp_s + 60
    return Plan(
        server.port, GATEWAY_PATH, key, framing, scenario.chunks, scenario.interval_ms,
        scenario.concurrency, scenario.requests, scenario.ramp_s, timeout,
    )  # fmt: skip


def _load_avg() -> str:
    """The 1-minute load average: other work on the machine skews every number."""
    return Path("/proc/loadavg").read_text().split()[0]


def _warm(server: Server, key: str) -> None:
    for framing in ("sse", "array"):
        plan = Plan(server.port, GATEWAY_PATH, key, framing, 2, 1, 2, 4)
        run = asyncio.run(run_load(plan))
        failed = [r.error for r in run.results if r.error]
        if failed:
            raise RuntimeError(f"{server.name} fails its warm-up: {failed[0]}")


class Bench:
    """Owns the processes of one run; `run` fills a Results."""

    def __init__(self, workdir: Path, options: Options) -> None:
        self.workdir, self.options = workdir, options
        self.results = Results(options)
        self.keys = make_keys_file(workdir)
        self.servers: dict[str, Server] = {}

    def run(self) -> Results:
        self.results.load_avg.append(_load_avg())
        try:
            self._start_peers()
            self.servers["gateway"] = self._gateway(self.options.threads)
            for scenario in self.options.scenarios:
                if scenario.key != "long":
                    self._rounds(scenario)
            self._stop("gateway")
            long = [s for s in self.options.scenarios if s.key == "long"]
            if long:
                self.servers["gateway"] = self._gateway(self.options.long_threads)
                self._long(long[0])
                self._stop("gateway")
            self._startup()
        finally:
            for name in list(self.servers):
                self._stop(name)
        self.results.finished = datetime.now(UTC)
        self.results.load_avg.append(_load_avg())
        return self.results

    def _start_peers(self) -> None:
        fake = self.servers["direct"] = start_fake(self.workdir)
        try:
            nginx = self.servers["nginx"] = start_nginx(self.workdir, fake.port)
            self.results.nginx_version = nginx.notes["version"]
        except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
            self.results.notes.append(f"nginx skipped: {exc}")
        for server in list(self.servers.values()):
            _warm(server, self.keys[0])

    def _gateway(self, threads: int) -> Server:
        gateway = start_gateway(
            self.workdir, self.keys[1], self.servers["direct"].port, threads
        )
        _warm(gateway, self.keys[0])
        time.sleep(0.5)
        self._memory("gateway (ASGI), idle after warm-up", gateway)
        return gateway

    def _memory(self, label: str, server: Server) -> None:
        pids = server.pids()
        threads = sum(status(p, "Threads") for p in pids)
        self.results.memory.append((label, rss_mb(pids), threads))

    def _stop(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            server.stop()

    def _targets(self) -> list[tuple[str, Server]]:
        return [(t, self.servers[t]) for t in TARGETS if t in self.servers]

    def _record(
        self, scenario: Scenario, framing: str, target: str, stats: RoundStats
    ) -> None:
        key = (scenario.key, framing, target)
        self.results.summaries.setdefault(key, Summary()).rounds.append(stats)
        errors = sum(stats.errors.values())
        print(
            f"  {scenario.key:5} {framing:5} {target:8} "
            f"chunk p50 {statistics.median(stats.latencies) if stats.latencies else float('nan'):7.3f} ms  "
            f"ttfb p50 {statistics.median(stats.ttfb) if stats.ttfb else float('nan'):7.3f} ms  "
            f"merged {stats.merged:4}  errors {errors}  {stats.throughput:7.1f} req/s",
            flush=True,
        )

    def _run_one(
        self, scenario: Scenario, framing: str, target: str, server: Server, first: bool
    ) -> RoundStats:
        plan = _plan(server, self.keys[0], scenario, framing)
        profile = self.options.profile_dir
        if profile is None or target != "gateway" or not first or scenario.key == "c1":
            return _measure(server, plan)
        worker = next(
            (p for p in server.pids() if p != server.proc.pid), server.proc.pid
        )
        with recording(worker, profile / f"gateway-{scenario.key}-{framing}"):
            return _measure(server, plan)

    def _rounds(self, scenario: Scenario) -> None:
        print(f"{scenario.title}", flush=True)
        for index in range(scenario.rounds):
            for framing in scenario.framings:
                for target, server in self._targets():
                    stats = self._run_one(scenario, framing, target, server, index == 0)
                    self._record(scenario, framing, target, stats)
                    time.sleep(0.2)

    def _long(self, scenario: Scenario) -> None:
        print(f"{scenario.title}", flush=True)
        framing = scenario.framings[0]
        for index in range(scenario.rounds):
            for target, server in self._targets():
                with PeakSampler(server.proc.pid) as peak:
                    stats = self._run_one(scenario, framing, target, server, index == 0)
                self._record(scenario, framing, target, stats)
                label = f"{server.name}, peak under {scenario.concurrency} streams"
                self.results.memory.append((label, peak.peak_rss_mb, peak.peak_threads))
                time.sleep(1.0)
        gateway = self.servers["gateway"]
        self._memory(f"{gateway.name}, idle after the long streams", gateway)

    def _startup(self) -> None:
        runs = self.options.startup_runs
        print(f"start-up: {runs} cold starts, {runs} imports of main", flush=True)
        for _ in range(runs):
            self.results.cold_starts.append(
                cold_start(self.keys, self.servers["direct"].port, self.options.threads)
            )
        for _ in range(runs):
            self.results.imports.append(import_time())
