"""Headless Chromium (Debian's `chromium`) driven by Playwright, for the HTML tests.

The tests skip, saying why, when /usr/bin/chromium or Playwright is missing, unless
KILN_REQUIRE_SERVICES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("KILN_CHROMIUM", "/usr/bin/chromium")
REQUIRE_SERVICES = os.environ.get("KILN_REQUIRE_SERVICES", "") not in ("", "0", "false")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def skip_or_fail(why: str) -> None:
    """Skip saying why; fail instead when KILN_REQUIRE_SERVICES=1 (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{why}; KILN_REQUIRE_SERVICES=1 forbids skipping.")
    pytest.skip(why)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium browser, always closed; or a skip saying why."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright is not installed (it is in kiln-ml[dev])")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, path: Path) -> tuple[Any, list[str]]:
    """Open a local file; return the page and a list that collects console errors,
    page errors and failed requests as they happen."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(path.as_uri(), wait_until="load", timeout=60_000)
    return page, problems
