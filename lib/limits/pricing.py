"""Prices from the vendored genai-prices snapshot, in integer micro-USD; loaded in a thread on first use."""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lib.limits.policy import MICRO

PROVIDER = "google"
# The usageMetadata counts that set a price (genai-prices maps them: thoughts are output, cached
# prompt tokens are billed at the cache-read rate, tool-use prompt tokens are input).
_COUNTED = (
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "toolUsePromptTokenCount",
)
_loaded: dict[str, Any] = {}
_lock = threading.Lock()


def _load_sync() -> Any:
    """Import genai-prices and build its price table (~0.5 s of CPU, once per process)."""
    with _lock:
        if "module" not in _loaded:
            import genai_prices

            # Builds the bundled snapshot, so later look-ups are only dictionary work.
            genai_prices.calc_price(
                genai_prices.Usage(input_tokens=1),
                "gemini-2.5-flash",
                provider_id=PROVIDER,
            )
            _loaded["module"] = genai_prices
        return _loaded["module"]


async def load() -> None:
    """Make the price table ready without blocking the event loop (a no-op once loaded)."""
    if "module" not in _loaded:
        await asyncio.to_thread(_load_sync)


def _prices() -> Any:
    return _loaded.get("module") or _load_sync()


def version() -> str:
    """The genai-prices version the prices come from (kept beside each ledger for reconciliation)."""
    return str(_prices().__version__)


@functools.lru_cache(maxsize=1024)
def known(model: str) -> bool:
    """True if the price table has `model` (the model actually called)."""
    return _price(_prices().Usage(input_tokens=1), model) is not None


def _price(usage: Any, model: str) -> Decimal | None:
    try:
        calc = _prices().calc_price(usage, model, provider_id=PROVIDER)
    except LookupError:
        return None
    return calc.total_price


def _micro(price: Decimal | None) -> int:
    return 0 if price is None else math.ceil(price * MICRO)


def cost(usage_metadata: dict[str, Any], model: str) -> int:
    """The micro-USD cost of a response's last `usageMetadata` (0 for an unknown model), rounded up."""
    counts = tuple(
        value if isinstance(value := usage_metadata.get(name), int) else 0
        for name in _COUNTED
    )
    return _cost(model, counts, _today())


# A price look-up is ~0.3 ms of Python; requests repeat their shapes, so the answers are kept (per day,
# as genai-prices has date-bounded prices).
@functools.lru_cache(maxsize=4096)
def _cost(model: str, counts: tuple[int, ...], day: str) -> int:
    metadata = {name: value for name, value in zip(_COUNTED, counts) if value}
    extracted = _prices().extract_usage(
        {"usageMetadata": metadata}, provider_id=PROVIDER
    )
    return _micro(_price(extracted.usage, model))


@functools.lru_cache(maxsize=4096)
def _estimate(model: str, prompt_tokens: int, output_tokens: int, day: str) -> int:
    usage = _prices().Usage(input_tokens=prompt_tokens, output_tokens=output_tokens)
    return _micro(_price(usage, model))


def estimate_cost(prompt_tokens: int, output_tokens: int, model: str) -> int:
    """The micro-USD cost of `prompt_tokens` in and `output_tokens` out, at the uncached rates."""
    return _estimate(model, prompt_tokens, output_tokens, _today())


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")
