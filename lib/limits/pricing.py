"""Prices from the vendored genai-prices snapshot, in integer micro-USD; loaded in a thread on first use."""

from __future__ import annotations

import asyncio
import math
import threading
from decimal import Decimal
from typing import Any

from lib.limits.policy import MICRO

PROVIDER = "google"
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
    prices = _prices()
    extracted = prices.extract_usage(
        {"usageMetadata": usage_metadata}, provider_id=PROVIDER
    )
    return _micro(_price(extracted.usage, model))


def estimate_cost(prompt_tokens: int, output_tokens: int, model: str) -> int:
    """The micro-USD cost of `prompt_tokens` in and `output_tokens` out, at the uncached rates."""
    usage = _prices().Usage(input_tokens=prompt_tokens, output_tokens=output_tokens)
    return _micro(_price(usage, model))
