"""The dashboard served in-process on a loopback port, and Debian's chromium driven by Playwright.

Playwright's own browser download is never used: it launches /usr/bin/chromium (scripts/setup.sh
--k8s installs it), so the tests need no network.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, async_playwright

from shoal.dashboard.app import create_app
from shoal.dashboard.settings import DashboardSettings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
TOKEN = "test-token-0123456789abcdef"
CLEANUP_SECONDS = 30


@contextlib.asynccontextmanager
async def serve_dashboard(**settings: Any) -> AsyncIterator[str]:
    """Run the dashboard on 127.0.0.1 (a free port); yield its base URL."""
    base: dict[str, Any] = {"sample_seconds": 0.2}
    base.update(settings)
    runner = web.AppRunner(create_app(DashboardSettings.model_validate(base)), shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        # Bounded, so a hang here is named in the failure instead of ending in the test timeout.
        async with asyncio.timeout(CLEANUP_SECONDS):
            await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            async with asyncio.timeout(CLEANUP_SECONDS):
                await browser.close()
