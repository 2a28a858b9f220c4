"""Browser fixtures: Debian's Chromium (never a downloaded one) driving the real
stack through nginx, exactly as a user reaches it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# A cold worker's first inference takes a few seconds; Playwright's 5 s default is too tight.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def base_url(live_stack) -> str:
    """Relative page.goto("/") lands on the shared stack's nginx."""
    return live_stack.config.url
