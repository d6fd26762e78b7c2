"""A real stack (the workspace included) and Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.conftest import gateway_settings
from tests.system.conftest import RunningStack, running_stack

__all__ = ["RunningStack", "gateway_settings", "running_stack"]

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium under Playwright; a missing browser skips, or fails under CI=true."""
    if not CHROMIUM.exists():
        message = "needs Debian's chromium (apt-get install -y chromium); .ci/run installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()
