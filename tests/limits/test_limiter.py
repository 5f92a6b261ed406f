"""The limiter's answers: Google's 429 shape, RateLimit fields, 403 for unpriced models, free keys stay free."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from lib.config import ConfigError
from lib.errors import Forbidden
from lib.limits.base import Check, QuotaExceeded, Verdict
from lib.limits.chooser import open_limiter, store_kind
from lib.limits.estimate import TokenEstimate
from lib.limits.headers import LimitState, rate_limit_headers
from lib.limits.limiter import Limiter
from lib.limits.memory import MemoryStore
from lib.limits.policy import RPM, STREAMS, TPM, USD_DAY, parse_limits

NOW = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
EST = TokenEstimate(10, 90)


class CountingStore(MemoryStore):
    """The memory store, counting admissions (to show which requests reach the store)."""

    def __init__(self) -> None:
        super().__init__()
        self.admits = 0

    async def admit(
        self,
        key_id: str,
        admission_id: str,
        checks: Sequence[Check],
        now_ms: int | None,
    ) -> Verdict:
        self.admits += 1
        return await super().admit(key_id, admission_id, checks, now_ms)


def refusal(limits: dict, times: int, model: str = "gemini-2.5-flash") -> QuotaExceeded:
    async def scenario() -> QuotaExceeded:
        limiter = Limiter(MemoryStore())
        try:
            for _ in range(times):
                await limiter.admit("team-a", parse_limits(limits), model, EST, now=NOW)
        except QuotaExceeded as exc:
            return exc
        raise AssertionError("never refused")

    return asyncio.run(scenario())


def test_a_refusal_is_googles_429_with_quota_failure_and_retry_info():
    exc = refusal({"requestsPerMinute": 2, "tokensPerDay": 1000}, 3)
    assert exc.status_code == 429
    body = json.loads(exc.to_json())
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "RequestsPerMinutePerKey" in body["error"]["message"]
    failure, info, retry = body["error"]["details"]
    assert failure == {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaId": "RequestsPerMinutePerKey",
                "quotaMetric": "streamgate/requests_per_minute",
                "quotaValue": "2",
                "quotaDimensions": {"keyId": "team-a"},
                "description": "2 requests in any 60 s window per API key",
            }
        ],
    }
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (info["reason"], info["domain"]) == ("RATE_LIMIT_EXCEEDED", "streamgate")
    assert retry == {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "60s",
    }
    assert exc.headers["Retry-After"] == "60"
    assert (
        exc.headers["RateLimit-Policy"]
        == '"rpm";q=2;w=60, "tpd";q=1000;w=86400;sg-unit="tokens"'
    )
    assert exc.headers["RateLimit"] == '"rpm";r=0;t=60, "tpd";r=800;t=3600'


def test_every_limit_a_request_breaks_is_a_violation_and_it_waits_for_the_last():
    exc = refusal({"requestsPerMinute": 1, "tokensPerDay": 150}, 2)
    assert exc.quota_ids == ["RequestsPerMinutePerKey", "TokensPerDayPerKey"]
    # The day ends in an hour; the minute frees in 60 s: all must free, so 3600 s.
    assert exc.retry_after_s == 3600
    assert exc.details[1]["reason"] == "RATE_LIMIT_EXCEEDED"


def test_a_budget_refusal_says_budget():
    exc = refusal({"usdPerDay": 0.0002}, 2)
    assert exc.quota_ids == ["UsdPerDayPerKey"]
    assert exc.details[1]["reason"] == "BUDGET_EXCEEDED"
    violation = exc.details[0]["violations"][0]
    assert violation["quotaMetric"] == "streamgate/micro_usd_per_day"
    assert (violation["quotaValue"], violation["description"]) == (
        "200",
        "$0.0002 per UTC day per API key",
    )


def test_a_usd_budget_on_a_model_without_a_price_is_403_naming_the_model():
    async def scenario() -> None:
        limiter = Limiter(MemoryStore())
        await limiter.admit("a", parse_limits({"usdPerDay": 1}), "endpoints/42", EST)

    with pytest.raises(Forbidden, match="no price is known for model 'endpoints/42'"):
        asyncio.run(scenario())


def test_counting_is_held_to_the_request_limits_only_and_charged_nothing():
    """countTokens on a model without a price, under a USD budget: no 403, and no budget is charged;
    the per-minute requests are, and refuse the third."""
    limits = parse_limits({"usdPerDay": 1, "tokensPerDay": 5, "requestsPerMinute": 2})

    async def scenario() -> list[object]:
        limiter = Limiter(MemoryStore())
        seen: list[object] = []
        for _ in range(3):
            try:
                admission = await limiter.admit_count("c", limits, "endpoints/42", NOW)
            except QuotaExceeded as refused:
                seen.append(refused.quota_ids)
                continue
            seen.append(sorted(c.name.split(":")[0] for c in admission.checks))
            await limiter.settle(admission, None, now=NOW)
        usage = await limiter.usage("c", 1, NOW)
        return [*seen, [(u.requests, u.prompt_tokens, u.micro_usd) for u in usage]]

    assert asyncio.run(scenario()) == [
        ["rpm"],
        ["rpm"],
        ["RequestsPerMinutePerKey"],
        [(2, 0, 0)],
    ]


def test_a_key_without_limits_reaches_the_store_only_to_record_usage():
    store = CountingStore()

    async def scenario() -> tuple[dict, bool, list]:
        limiter = Limiter(store)
        admission = await limiter.admit(
            "free", parse_limits(None), "gemini-2.5-flash", EST
        )
        renewed = await limiter.renew(admission)
        await limiter.settle(
            admission, {"promptTokenCount": 3, "candidatesTokenCount": 4}
        )
        await limiter.settle(admission, {"promptTokenCount": 3})
        return admission.headers(), renewed, await limiter.usage("free", 1)

    headers, renewed, rows = asyncio.run(scenario())
    assert (store.admits, headers, renewed) == (0, {}, False)
    # Settled once: a second settle (a double `finally`) changes nothing.
    assert [(r.requests, r.prompt_tokens, r.output_tokens) for r in rows] == [(1, 3, 4)]


@pytest.mark.parametrize(
    ("states", "policy", "limit"),
    [
        ([LimitState(RPM, 60, 12, 30, 60)], '"rpm";q=60;w=60', '"rpm";r=12;t=30'),
        (
            [LimitState(TPM, 1000, -5, 1, 60)],
            '"tpm";q=1000;w=60;sg-unit="tokens"',
            '"tpm";r=0;t=1',
        ),
        (
            [LimitState(STREAMS, 4, 3, None, None)],
            '"streams";q=4;qu="concurrent-requests"',
            '"streams";r=3',
        ),
        (
            [LimitState(USD_DAY, 5_000_000, 10, 7, 86400)],
            '"usd-day";q=5000000;w=86400;sg-unit="micro-usd"',
            '"usd-day";r=10;t=7',
        ),
    ],
)
def test_ratelimit_fields_follow_draft_11(states, policy, limit):
    assert rate_limit_headers(states) == {
        "RateLimit-Policy": policy,
        "RateLimit": limit,
    }


def test_no_limits_no_fields():
    assert rate_limit_headers([]) == {}


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("", "memory"),
        ("memory", "memory"),
        ("redis://10.0.0.3:6379/0", "redis"),
        ("rediss://:secret@cache.example:6380", "redis"),
        ("dynamodb://streamgate-limits", "dynamodb"),
    ],
)
def test_the_store_is_chosen_by_the_shape_of_streamgate_limits(spec, kind):
    assert store_kind(spec) == kind


@pytest.mark.parametrize(
    "env",
    [
        {"STREAMGATE_LIMITS": "postgres://x"},
        {"STREAMGATE_LIMITS": "dynamodb://"},
        {"STREAMGATE_LEASE_TTL_S": "0"},
        {"STREAMGATE_DEFAULT_OUTPUT_TOKENS": "lots"},
    ],
)
def test_a_bad_setting_is_a_configuration_error(env):
    with pytest.raises(ConfigError):
        open_limiter(env)


def test_settings_reach_the_limiter():
    limiter = open_limiter(
        {"STREAMGATE_LEASE_TTL_S": "5", "STREAMGATE_DEFAULT_OUTPUT_TOKENS": "512"}
    )
    assert (limiter.lease_ttl_ms, limiter.default_output_tokens) == (5000, 512)
    assert limiter.estimate({}, parse_limits({"tokensPerDay": 100})).output == 100
