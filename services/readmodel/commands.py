"""Entrypoints for `shouwang projector` and `shouwang support-api` (the operator read API).

Thin: the CLI has parsed the arguments and read the Settings; `bootstrap` builds and runs the
rest. It is imported by the handler that runs, so building the CLI's parser imports no client
library (tests/unit/test_cli.py).
"""

from __future__ import annotations

import asyncio

from services.platform.config import Settings


def run_projector(settings: Settings) -> int:
    """`shouwang projector`: project the topics into the read model until SIGINT/SIGTERM."""
    from services.readmodel.bootstrap import serve_projector

    asyncio.run(serve_projector(settings))
    return 0


def run_support_api(settings: Settings) -> int:
    """`shouwang support-api`: the operator API over the read model until SIGINT/SIGTERM."""
    from services.readmodel.bootstrap import serve_api

    asyncio.run(serve_api(settings))
    return 0
