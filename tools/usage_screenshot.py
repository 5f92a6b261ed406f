"""docs/usage-page.png: the usage page rendered from a realistic sample, screenshot in headless Chromium.

Run by hand after changing the page (`.venv/bin/python -m tools.usage_screenshot`); needs Debian's
`chromium` and the `playwright` package from requirements-dev.txt. The sample is made here, priced
with the pinned price table, and never touches a store.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lib.keys.usage_page import render_usage_page
from lib.limits import pricing
from lib.limits.base import UsageRecord
from lib.limits.policy import day_of
from tests.support.browser import chromium_page

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "usage-page.png"
GENERATED_AT = datetime(2026, 12, 1, 15, 42, tzinfo=UTC)
DAYS = 7
# key id: (model, requests a day, prompt tokens, output tokens, thoughts tokens, cached share)
SAMPLE = {
    "team-search": [
        ("gemini-2.5-pro", 140, 6_000, 900, 1_400, 0.4),
        ("gemini-2.5-flash", 900, 2_500, 400, 300, 0.2),
        ("gemini-2.5-flash-lite", 300, 1_200, 150, 0, 0.0),
    ],
    "batch-summaries": [
        ("gemini-2.5-flash-lite", 4_000, 9_000, 600, 0, 0.6),
        ("gemini-2.0-flash", 800, 7_000, 500, 0, 0.0),
    ],
    "mobile-app": [
        ("gemini-2.5-flash", 1_500, 800, 250, 120, 0.0),
        ("gemini-2.0-flash-lite", 600, 500, 120, 0, 0.0),
        ("gemini-2.5-pro", 12, 3_000, 700, 900, 0.0),
        ("gemini-3-pro-preview", 5, 4_000, 800, 1_500, 0.0),
        ("gemini-2.0-flash", 40, 900, 200, 0, 0.0),
        ("gemini-1.5-pro", 2, 2_000, 300, 0, 0.0),
    ],
}


def _row(
    rng: random.Random, key_id: str, day: str, weekday: int, profile: tuple
) -> UsageRecord:
    model, per_day, prompt, output, thoughts, cached_share = profile
    # Weekends are quieter; every day wanders a little.
    scale = (0.35 if weekday >= 5 else 1.0) * rng.uniform(0.7, 1.3)
    requests = max(1, round(per_day * scale))
    one = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "thoughtsTokenCount": thoughts,
        "cachedContentTokenCount": int(prompt * cached_share),
    }
    return UsageRecord(
        key_id,
        day,
        model,
        requests=requests,
        prompt_tokens=prompt * requests,
        output_tokens=output * requests,
        thoughts_tokens=thoughts * requests,
        cached_tokens=int(prompt * cached_share) * requests,
        micro_usd=pricing.cost(one, model) * requests,
    )


def sample_rows(now: datetime = GENERATED_AT) -> list[UsageRecord]:
    """A week of three keys' usage: weekday peaks, a key that started mid-week, one idle day."""
    asyncio.run(pricing.load())
    rng = random.Random(7)
    rows = []
    for back in range(DAYS):
        moment = now - timedelta(days=back)
        for key_id, profiles in SAMPLE.items():
            # mobile-app launched four days ago; batch-summaries did not run two days ago.
            if (key_id == "mobile-app" and back > 3) or (
                key_id == "batch-summaries" and back == 2
            ):
                continue
            for profile in profiles:
                rows.append(
                    _row(rng, key_id, day_of(moment), moment.weekday(), profile)
                )
    return rows


def write_screenshot(output: Path = OUTPUT) -> int:
    """Render the sample, screenshot the whole page into `output`; returns the page's size in bytes."""
    page_html = render_usage_page(sample_rows(), days=DAYS, generated_at=GENERATED_AT)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.html"
        path.write_text(page_html)
        with chromium_page(width=1220, height=800) as (page, _):
            page.goto(path.as_uri())
            page.screenshot(path=str(output), full_page=True)
    return len(page_html.encode())


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    size = write_screenshot(target)
    print(f"wrote {target} from a {size:,}-byte page")
