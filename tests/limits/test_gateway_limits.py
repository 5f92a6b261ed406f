"""Per-key limits through running gateways that share one real redis-server: what clients see."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from google import genai
from google.genai import errors, types

from lib.keys.document import hash_key
from tests.support.env import SECRETS, start_gateway
from tests.support.procstats import worker_pid
from tests.support.redis_server import RedisServer

KEY = {
    name: f"sg_limits-{name}-" + "E" * 32
    for name in ("rpm", "tpm", "lease", "day", "count", "old")
}
SECRETS.update(KEY.values())
PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
BODY = {
    "contents": [{"parts": [{"text": "count me"}]}],
    "generationConfig": {"maxOutputTokens": 50},
}


def _document() -> dict:
    limits = {
        "rpm": {"requestsPerMinute": 50},
        "tpm": {"tokensPerMinute": 1000},
        "lease": {"concurrentStreams": 1},
        "day": {"tokensPerDay": 1_000_000},
        "count": {"requestsPerMinute": 3, "tokensPerDay": 5},
    }
    keys = [
        {"id": f"lim-{name}", "sha256": hash_key(KEY[name]), "limits": limit}
        for name, limit in limits.items()
    ]
    keys.append(
        {
            "id": "lim-old",
            "sha256": hash_key(KEY["old"]),
            "expiresAt": "2020-01-01T00:00:00Z",
        }
    )
    return {"keys": keys}


@pytest.fixture(scope="module")
def limits_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "keys.json"
    path.write_text(json.dumps(_document()))
    return path


def _env(keys: Path, redis: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "STREAMGATE_UPSTREAM": "echo",
        "STREAMGATE_ECHO_DELAY_MS": "0",
        "STREAMGATE_KEYS": str(keys),
        "STREAMGATE_LIMITS": redis.url,
        **extra,
    }


@pytest.fixture(scope="module")
def gateways(workdir: Path, limits_keys: Path, redis_server: RedisServer):
    """Four instances of the gateway, as Cloud Run would run them, over one Redis."""
    env = _env(limits_keys, redis_server, STREAMGATE_LEASE_TTL_S="2")
    started = [start_gateway(workdir, f"limits-{i}", env) for i in range(4)]
    yield started
    for gw in started:
        gw.stop()


def _post(gw, key: str, body: dict = BODY, **kwargs) -> requests.Response:
    return requests.post(
        gw.url(PATH + "?alt=sse"),
        json=body,
        headers={"x-goog-api-key": key},
        timeout=30,
        **kwargs,
    )


def _hammer(
    gateways, key: str, clients_per_instance: int = 25
) -> list[requests.Response]:
    barrier = threading.Barrier(len(gateways) * clients_per_instance)

    def one(gw) -> requests.Response:
        barrier.wait(10)
        return _post(gw, key)

    targets = [gw for gw in gateways for _ in range(clients_per_instance)]
    with ThreadPoolExecutor(len(targets)) as pool:
        return list(pool.map(one, targets))


def test_requests_per_minute_holds_exactly_across_four_instances(gateways):
    responses = _hammer(gateways, KEY["rpm"])
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 50, 429: 50}
    refused = next(r for r in responses if r.status_code == 429)
    error = refused.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in error["details"]}
    assert (
        details["QuotaFailure"]["violations"][0]["quotaId"] == "RequestsPerMinutePerKey"
    )
    assert details["RetryInfo"]["retryDelay"].endswith("s")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "RateLimit-Policy" in refused.headers
    ok = next(r for r in responses if r.status_code == 200)
    assert "RateLimit" in ok.headers and ok.text.endswith("\r\n\r\n")


@pytest.fixture(scope="module")
def slow_gateways(workdir: Path, limits_keys: Path, redis_server: RedisServer):
    """Two instances whose streams last ~0.5 s, so every admitted stream is in flight at once."""
    env = _env(limits_keys, redis_server, STREAMGATE_ECHO_DELAY_MS="100")
    started = [start_gateway(workdir, f"limits-slow-{i}", env) for i in range(2)]
    yield started
    for gw in started:
        gw.stop()


def test_tokens_per_minute_overshoot_under_concurrency_is_within_10_percent(
    slow_gateways,
):
    """100 concurrent streams, each reserving its prompt plus maxOutputTokens (50) against 1,000
    tokens a minute: what is admitted, reserved or used, stays within the limit + 10 %."""
    body = {
        "contents": [{"parts": [{"text": "count me in please"}]}],
        "generationConfig": {"maxOutputTokens": 50},
    }
    barrier = threading.Barrier(100)

    def one(gw) -> requests.Response:
        barrier.wait(10)
        return _post(gw, KEY["tpm"], body)

    with ThreadPoolExecutor(100) as pool:
        responses = list(pool.map(one, [gw for gw in slow_gateways for _ in range(50)]))
    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert admitted and refused
    used = 0
    for resp in admitted:
        last = [
            part for part in resp.text.split("\r\n\r\n") if "totalTokenCount" in part
        ]
        used += json.loads(last[-1][len("data: ") :])["usageMetadata"][
            "totalTokenCount"
        ]
    # Each reservation is at least maxOutputTokens + the prompt's estimate (>= 1 token).
    assert len(admitted) * (50 + 1) <= 1000 * 1.1
    assert used <= 1000 * 1.1
    quota_ids = {
        v["quotaId"]
        for d in refused[0].json()["error"]["details"]
        if d["@type"].endswith("QuotaFailure")
        for v in d["violations"]
    }
    assert quota_ids == {"TokensPerMinutePerKey"}


def test_a_killed_instance_frees_its_stream_lease_within_the_ttl(
    workdir: Path, limits_keys: Path, redis_server: RedisServer, gateways
):
    slow = start_gateway(
        workdir,
        "limits-killed",
        _env(
            limits_keys,
            redis_server,
            STREAMGATE_ECHO_DELAY_MS="1000",
            STREAMGATE_LEASE_TTL_S="2",
        ),
    )
    long_body = {"contents": [{"parts": [{"text": " ".join(["word"] * 30)}]}]}
    resp = _post(slow, KEY["lease"], long_body, stream=True)
    assert resp.status_code == 200
    next(resp.iter_content(chunk_size=None))
    busy = _post(gateways[0], KEY["lease"])
    assert busy.status_code == 429
    assert "ConcurrentStreamsPerKey" in busy.text
    worker = worker_pid(slow.proc.pid)
    slow.proc.send_signal(signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    while _post(gateways[0], KEY["lease"]).status_code == 429:
        assert time.monotonic() - killed_at < 2 + 2, "the lease outlived its TTL"
        time.sleep(0.2)
    slow.stop()


def test_an_expired_key_gets_401_saying_so(gateways):
    resp = _post(gateways[0], KEY["old"])
    assert resp.status_code == 401
    assert "expired" in resp.json()["error"]["message"]


def _count(gw, key: str) -> requests.Response:
    return requests.post(
        gw.url(PATH.replace("streamGenerateContent", "countTokens")),
        json=BODY,
        headers={"x-goog-api-key": key},
        timeout=30,
    )


def test_counting_tokens_counts_against_requests_per_minute_not_token_budgets(gateways):
    key = KEY["count"]
    # One stream spends more than the day's 5 tokens (its reservation was capped to them).
    long = {**BODY, "contents": [{"parts": [{"text": "count me " * 10}]}]}
    assert _post(gateways[0], key, long).status_code == 200
    spent = _post(gateways[1], key)
    assert spent.status_code == 429 and "TokensPerDay" in spent.text
    # Counting generates nothing: the spent budget does not refuse it, the minute's requests do.
    counted = [_count(gw, key) for gw in gateways[:2]]
    assert [r.status_code for r in counted] == [200, 200]
    assert all(r.json()["totalTokens"] > 0 for r in counted)
    refused = _count(gateways[2], key)
    assert refused.status_code == 429
    quota = refused.json()["error"]["details"]
    assert "RequestsPerMinutePerKey" in json.dumps(quota)
    assert "TokensPerDay" not in json.dumps(quota)


def test_an_expired_key_cannot_count_tokens(gateways):
    resp = _count(gateways[0], KEY["old"])
    assert resp.status_code == 401
    assert "expired" in resp.json()["error"]["message"]


def test_the_sdk_raises_its_client_error_with_429_and_the_status(gateways):
    client = genai.Client(
        api_key=KEY["rpm"],
        http_options=types.HttpOptions(base_url=gateways[1].url("/")),
    )
    with pytest.raises(errors.ClientError) as caught:
        for _ in client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hi"
        ):
            pass
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"


def test_with_the_store_stopped_rates_fall_back_per_instance_and_budgets_fail_closed(
    workdir: Path, limits_keys: Path, tmp_path: Path
):
    redis = RedisServer(tmp_path).start()
    gw = start_gateway(workdir, "limits-outage", _env(limits_keys, redis))
    try:
        assert _post(gw, KEY["day"]).status_code == 200
        redis.stop()
        # Per minute: counted per instance, still served, with a warning in the log.
        assert _post(gw, KEY["lease"]).status_code == 200
        # A budget: refused, never guessed.
        budget = _post(gw, KEY["day"])
        assert budget.status_code == 503
        assert budget.json()["error"]["status"] == "UNAVAILABLE"
        assert "WARNING" in gw.log_text()
    finally:
        gw.stop()


def test_a_new_limit_takes_effect_within_the_key_cache_ttl(
    workdir: Path, tmp_path: Path, redis_server: RedisServer
):
    """No redeploy: the key document gains a limit, and within STREAMGATE_KEYS_TTL_S it holds."""
    keys = tmp_path / "keys.json"
    entry = {"id": "lim-new", "sha256": hash_key(KEY["tpm"])}
    keys.write_text(json.dumps({"keys": [entry]}))
    gw = start_gateway(
        workdir, "limits-new", _env(keys, redis_server, STREAMGATE_KEYS_TTL_S="1")
    )
    try:
        assert [_post(gw, KEY["tpm"]).status_code for _ in range(3)] == [200] * 3
        entry["limits"] = {"requestsPerMinute": 1}
        keys.write_text(json.dumps({"keys": [entry]}))
        time.sleep(1.5)
        statuses = [_post(gw, KEY["tpm"]).status_code for _ in range(3)]
        assert statuses == [200, 429, 429]
    finally:
        gw.stop()
