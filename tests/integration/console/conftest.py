"""The console and the visits API running as deployed, for this directory's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.console_system import ConsoleSystem, running_console


@pytest.fixture(scope="module")
async def console_system(
    kafka_bootstrap: str, database_url: str, stack_tmp_dir: Path
) -> AsyncIterator[ConsoleSystem]:
    async with running_console(kafka_bootstrap, database_url, stack_tmp_dir) as system:
        yield system
