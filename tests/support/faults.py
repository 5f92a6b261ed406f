"""Streams under faults: the fake upstream's script per fault kind, and a load of clients that classifies each stream."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from tests.support.fakes import Scenario, chunk
from tests.support.hardening import classify_stream

FAULT_KINDS = (
    "ok",
    "slow-first-byte",
    "http-500",
    "http-429",
    "drop",
    "stall",
    "error-mid",
)
FAULT_CHUNKS = 6


def fault_scenario(kind: str) -> Scenario:
    """The fake upstream's script for one fault kind (model `fault-<kind>`)."""
    chunks = [chunk(f"part {i} ") for i in range(FAULT_CHUNKS - 1)]
    chunks.append(chunk("end", last=True))
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}
    scripts = {
        "ok": {},
        "slow-first-byte": {"first_byte_delay_s": 0.3},
        "http-500": {"status": 500},
        "http-429": {
            "status": 429,
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [retry],
            },
        },
        "drop": {"drop_after": 3},
        "stall": {"stall_after": 2},
        "error-mid": {"error_after": 3},
    }
    return Scenario(chunks=chunks, delay_s=0.05, **scripts[kind])


@dataclass
class StreamResult:
    """What every client of a load run saw."""

    outcomes: Counter = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    error_bodies: list[bytes] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(n for (_, o), n in self.outcomes.items() if o == outcome)


def stream_once(
    base_url: str, kind: str, sse: bool, key: str, prompt: str
) -> tuple[str, str, bytes]:
    """One client: stream `fault-<kind>` and classify what arrived (a hang is 'lost')."""
    path = f"/v1beta/models/fault-{kind}:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    try:
        resp = requests.post(
            base_url + path + ("?alt=sse" if sse else ""),
            json=body,
            headers={"x-goog-api-key": key},
            timeout=(10, 30),
        )
    except requests.RequestException as exc:
        return "lost", f"{type(exc).__name__}: {exc}", b""
    ctype = resp.headers.get("content-type", "")
    outcome, detail = classify_stream(
        resp.status_code, ctype, resp.content, path, FAULT_CHUNKS
    )
    return outcome, detail, resp.content if outcome != "complete" else b""


def run_streams(
    base_url: str,
    clients: int,
    key: str,
    prompt: str,
    kinds: Sequence[str] = FAULT_KINDS,
) -> StreamResult:
    """`clients` concurrent streams, round-robin over `kinds` and both framings."""
    result = StreamResult()
    jobs = [(kinds[i % len(kinds)], bool(i // len(kinds) % 2)) for i in range(clients)]
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [
            pool.submit(stream_once, base_url, k, sse, key, prompt) for k, sse in jobs
        ]
        for (kind, _), future in zip(jobs, futures):
            outcome, detail, body = future.result()
            result.outcomes[(kind, outcome)] += 1
            if outcome == "lost":
                result.lost.append(f"{kind}: {detail}")
            if body:
                result.error_bodies.append(body)
    return result
