"""Faults under load: 200 concurrent streams through the gateway while the fake upstream fails in each
way it can (500, 429 with RetryInfo, a drop mid-stream, a stall past the idle timeout, a slow first
byte, an error element). Every client ends with a complete stream or a well-formed Google error,
and afterwards the gunicorn worker's sockets, threads and memory are back where they were."""

from __future__ import annotations

import pytest

from tests.support.env import KEYS, SECRETS, gemini_env, start_gateway
from tests.support.fakes import FakeUpstream
from tests.support.faults import FAULT_KINDS, StreamResult, fault_scenario, run_streams
from tests.support.hardening import leaked, record, scaled
from tests.support.procstats import proc_stats, settle, worker_pid

PROMPT = "load-prompt: forty lanterns cross the ford at dusk (never logged)"
SECRETS.add(PROMPT)
CLIENTS = 200
THREADS = 256


@pytest.fixture(scope="module")
def fake():
    upstream = FakeUpstream().start()
    for kind in FAULT_KINDS:
        upstream.script(f"fault-{kind}", fault_scenario(kind))
    yield upstream
    upstream.stop()  # also releases the stalled responses


@pytest.fixture(scope="module")
def gateway(workdir, keys_file, fake):
    env = gemini_env(
        keys_file,
        fake,
        STREAMGATE_IDLE_TIMEOUT_S="1",
        STREAMGATE_CONNECT_TIMEOUT_S="5",
        THREADS=str(THREADS),
    )
    gw = start_gateway(workdir, "faults-load", env)
    yield gw
    gw.stop()


def test_every_stream_under_faults_completes_or_ends_in_a_google_error(gateway):
    pid = worker_pid(gateway.proc.pid)
    idle = proc_stats(pid)
    # Fill gthread's pool first (its threads stay for the worker's life, by design): stalled
    # streams each hold a thread for the idle timeout, so all CLIENTS overlap.
    warm = run_streams(
        gateway.url(""), CLIENTS, KEYS["team-a"], PROMPT, kinds=("stall",)
    )
    assert warm.count("lost") == 0, warm.lost[:5]
    before = settle(pid, idle.sockets, THREADS)

    result = StreamResult()
    for _ in range(scaled(1)):
        run = run_streams(gateway.url(""), CLIENTS, KEYS["team-a"], PROMPT)
        result.outcomes.update(run.outcomes)
        result.lost += run.lost
        result.error_bodies += run.error_bodies
    after = settle(pid, idle.sockets, before.threads)

    hits = leaked(result.error_bodies, SECRETS)
    record(
        "load",
        streams=sum(result.outcomes.values()),
        completed=result.count("complete"),
        errored=result.count("errored"),
        lost=result.count("lost"),
        sockets_before=before.sockets,
        sockets_after=after.sockets,
        threads_before=before.threads,
        threads_after=after.threads,
        rss_before=before.rss_mb,
        rss_after=after.rss_mb,
        by_kind={f"{k} {o}": n for (k, o), n in sorted(result.outcomes.items())},
    )
    record("leaks", where="faults under load", hits=len(hits))
    assert result.lost == []
    for kind in ("http-500", "http-429", "drop", "stall", "error-mid"):
        assert result.outcomes[(kind, "complete")] == 0, (
            kind
        )  # the upstream never finished
    assert result.outcomes[("ok", "complete")] > 0
    assert hits == []
    assert after.sockets <= idle.sockets + 5, (idle, after)
    assert after.threads <= before.threads + 5, (before, after)
    assert after.threads <= THREADS + 10, after
    assert after.rss_mb - before.rss_mb < 50, (before, after)
