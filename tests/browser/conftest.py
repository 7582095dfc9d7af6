"""A running console (with the visits API) and a Chromium page driven by Playwright.

Playwright's own browser download cannot be reached here: the tests drive the system's
Chromium (`apt-get install chromium`, done by .ci/run), named by SHOUWANG_CHROMIUM or found on
PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.console_system import ConsoleSystem, running_console


def chromium_path() -> str | None:
    named = os.environ.get("SHOUWANG_CHROMIUM")
    if named:
        return named
    return next(
        (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))),
        None,
    )


@pytest.fixture(scope="module")
async def console_system(
    kafka_bootstrap: str, database_url: str, stack_tmp_dir: Path
) -> AsyncIterator[ConsoleSystem]:
    async with running_console(kafka_bootstrap, database_url, stack_tmp_dir) as system:
        yield system


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: `apt-get install chromium` (.ci/run installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            await launched.close()
