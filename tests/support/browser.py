"""Headless Chromium (Debian's `chromium`) under Playwright: open a page, see what it requested and logged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "chromium not found: apt-get install -y chromium (CI's .ci/run does)"
# Debian's browser, not a Playwright download; nothing of its own reaches the network either.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Seen:
    """What one page did while open: every request's URL, console messages, page errors, dialogs."""

    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@contextlib.contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[tuple[Any, Seen]]:
    """A fresh page in a fresh headless Chromium; any request beyond `file:` is recorded and aborted."""
    from playwright.sync_api import sync_playwright

    seen = Seen()

    def route(found: Any) -> None:
        if found.request.url.startswith("file:"):
            found.continue_()
        else:
            found.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.route("**/*", route)
            page = context.new_page()
            page.on("request", lambda request: seen.requests.append(request.url))
            page.on("console", lambda message: seen.console.append(message.text))
            page.on("pageerror", lambda error: seen.errors.append(str(error)))
            page.on("dialog", lambda dialog: seen.dialogs.append(dialog.message))
            yield page, seen
        finally:
            browser.close()
