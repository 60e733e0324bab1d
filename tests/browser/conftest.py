"""Browser fixtures: one headless Debian Chromium per test session (driven by Playwright), axe-core for the
accessibility checks, and helpers that every browser test shares.

Chromium and axe-core are installed when missing (tests/browser/tools.py), in a session fixture, so that the
install stays out of the tests' own timing. Each test opens its own browser context (cookies, language,
viewport), closed at its end; the browser process is shared.

axe-core is injected with `BrowserContext.add_init_script`, which Chromium runs through the DevTools protocol
before the page's own scripts: the gateway's Content-Security-Policy (`script-src 'self'`) does not apply to it,
so the pages are checked under their real CSP. (`Page.add_script_tag` writes an inline <script>, which that CSP
blocks, as it should.)
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from browser.checks import DESKTOP
from browser.tools import CHROMIUM_ARGS, ensure_axe, ensure_chromium

# the services answer in milliseconds, but `make test` runs them on a busy 2-core machine
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    chromium = await asyncio.to_thread(ensure_chromium)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
async def axe_script() -> Path:
    return await asyncio.to_thread(ensure_axe)


@pytest.fixture
async def new_context(
    browser: Browser, axe_script: Path, system: Any
) -> AsyncIterator[Callable[..., Awaitable[BrowserContext]]]:
    """Opens browser contexts on the test gateway (relative URLs work), with axe-core loaded in every page."""
    opened: list[BrowserContext] = []

    async def open_context(viewport: dict[str, int] = DESKTOP, **options: Any) -> BrowserContext:
        context = await browser.new_context(base_url=system.url("gateway"), viewport=viewport, **options)
        context.set_default_timeout(15_000)
        await context.add_init_script(path=str(axe_script))
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        await context.close()
