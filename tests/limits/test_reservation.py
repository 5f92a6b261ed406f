"""What a request reserves (its prompt estimate and output cap) and what it costs (genai-prices)."""

from __future__ import annotations

import asyncio

import pytest

from lib.limits import pricing
from lib.limits.estimate import (
    MEDIA_PART_TOKENS,
    estimate_tokens,
    output_cap,
    prompt_tokens,
)
from lib.limits.policy import Limits

TEXT = {"contents": [{"role": "user", "parts": [{"text": "x" * 400}]}]}


@pytest.mark.parametrize(
    ("body", "tokens"),
    [
        ({}, 0),
        (TEXT, 100),
        ({"contents": [{"parts": [{"text": "é" * 10}]}]}, 5),
        (
            {"contents": [{"parts": [{"inlineData": {"data": "A" * 9999}}]}]},
            MEDIA_PART_TOKENS,
        ),
        ({**TEXT, "systemInstruction": {"parts": [{"text": "y" * 40}]}}, 110),
        ({**TEXT, "system_instruction": {"parts": [{"text": "y" * 40}]}}, 110),
        ({"contents": "not a list"}, 0),
        ({"contents": [{"parts": [{"text": "abc"}, 7, {"text": None}]}]}, 1),
    ],
)
def test_the_prompt_estimate_is_text_bytes_over_four(body, tokens):
    assert prompt_tokens(body) == tokens


@pytest.mark.parametrize(
    ("config", "cap"),
    [
        ({}, None),
        ({"generationConfig": {"maxOutputTokens": 256}}, 256),
        ({"generationConfig": {"max_output_tokens": 300}}, 300),
        # The largest cap wins: a tiny camelCase cap does not hide a large snake_case one.
        (
            {"generationConfig": {"maxOutputTokens": 1, "max_output_tokens": 10000}},
            10000,
        ),
        (
            {
                "generation_config": {"maxOutputTokens": 50},
                "generationConfig": {"maxOutputTokens": 70},
            },
            70,
        ),
        ({"generationConfig": {"maxOutputTokens": 100, "candidateCount": 3}}, 300),
        ({"generationConfig": {"maxOutputTokens": "many"}}, None),
        ({"generationConfig": {"maxOutputTokens": True}}, None),
        ({"generationConfig": {"maxOutputTokens": 0}}, None),
    ],
)
def test_the_output_cap_is_the_largest_one_declared(config, cap):
    assert output_cap(config) == cap


@pytest.mark.parametrize(
    ("limits", "default", "output"),
    [
        (Limits(), 4096, 4096),
        (Limits(tokens_per_minute=1000), 4096, 1000),
        (Limits(tokens_per_minute=100_000, tokens_per_day=500), 4096, 500),
        (Limits(requests_per_minute=5), 2048, 2048),
    ],
)
def test_without_a_cap_the_default_is_capped_by_the_smallest_token_limit(
    limits, default, output
):
    estimate = estimate_tokens(TEXT, limits, default)
    assert (estimate.prompt, estimate.output, estimate.total) == (
        100,
        output,
        100 + output,
    )


def test_a_declared_cap_is_kept_even_above_the_limit():
    body = {**TEXT, "generationConfig": {"maxOutputTokens": 8192}}
    assert estimate_tokens(body, Limits(tokens_per_minute=1000)).output == 8192


@pytest.fixture(scope="module", autouse=True)
def _prices_loaded() -> None:
    asyncio.run(pricing.load())


@pytest.mark.parametrize(
    ("usage", "model", "micro_usd"),
    [
        ({"promptTokenCount": 1_000_000}, "gemini-2.5-flash", 300_000),
        ({"candidatesTokenCount": 1_000_000}, "gemini-2.5-flash", 2_500_000),
        # Thinking is billed as output.
        ({"thoughtsTokenCount": 1_000_000}, "gemini-2.5-flash", 2_500_000),
        # Cached prompt tokens at the cache-read rate ($0.03/M on flash).
        (
            {"promptTokenCount": 1_000_000, "cachedContentTokenCount": 1_000_000},
            "gemini-2.5-flash",
            30_000,
        ),
        # Over 200k prompt tokens, 2.5 Pro's higher tier applies to the whole prompt.
        ({"promptTokenCount": 300_000}, "gemini-2.5-pro", 750_000),
        ({"promptTokenCount": 100_000}, "gemini-2.5-pro", 125_000),
        ({"promptTokenCount": 1}, "no-such-model", 0),
    ],
)
def test_costs_come_from_genai_prices_in_micro_usd(usage, model, micro_usd):
    assert pricing.cost(usage, model) == micro_usd


def test_estimates_round_up_and_unknown_models_are_reported():
    assert pricing.estimate_cost(1, 0, "gemini-2.5-flash") == 1
    assert pricing.estimate_cost(1000, 1000, "gemini-2.5-flash") == 2800
    assert pricing.known("gemini-2.5-flash")
    assert not pricing.known("endpoints/1234567")
    assert pricing.version() == "0.2.3"
