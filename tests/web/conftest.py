"""A real Chromium (Debian's ``chromium``, driven by Playwright) for the dashboard tests: one browser for the
session, a fresh context (cookies, storage) per test.

Playwright's own browser download cannot work here, so ``scripts/setup.sh`` installs Debian's package and
Playwright launches it by path. Without it the browser tests skip on a developer's machine and fail under CI
(``CI=true``): a CI run must never pass without having run them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.tasks import cancel_and_wait

CHROMIUM = Path(os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("SWITCHBOARD_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


def _require_browser() -> None:
    problem = None
    if not CHROMIUM.is_file():
        problem = f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError as exc:
            problem = f"playwright is not installed: {exc}"
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI: {problem}", pytrace=False)
    pytest.skip(problem)


class Browser:
    """Chromium launching in the background while the other fixtures start (PostgreSQL, the server): the first
    ``new_context`` waits for the launch. The fixture owns the launch task: it is awaited or cancelled on exit."""

    def __init__(self, launch: asyncio.Task[Any]) -> None:
        self._launch = launch

    async def new_context(self, **options: Any) -> Any:
        return await (await self._launch).new_context(**options)


@pytest.fixture(scope="session")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    """Chromium with a fresh profile (Playwright gives every launch a new temporary user-data-dir)."""
    _require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launch = asyncio.create_task(pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True))
        try:
            yield Browser(launch)
        finally:
            await cancel_and_wait(launch)
            if not launch.cancelled() and launch.exception() is None:
                await launch.result().close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
