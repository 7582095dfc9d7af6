"""Entrypoints for `shouwang projector` and `shouwang support-api` (the operator read API).

Thin: the CLI has parsed the arguments and read the Settings; `bootstrap` builds and runs the
rest.
"""

from __future__ import annotations

import argparse
import asyncio

from services.platform.config import Settings

# bootstrap is imported by the handler that runs, not here: it needs asyncpg, aiokafka, aiohttp
# and prometheus_client, and the CLI imports this module to build its parser
# (tests/unit/test_cli.py).


def run_projector(args: argparse.Namespace, settings: Settings) -> int:
    """`shouwang projector`: project the topics into the read model until SIGINT/SIGTERM."""
    from services.readmodel.bootstrap import serve_projector  # lazy: see above

    asyncio.run(serve_projector(settings))
    return 0


def run_support_api(args: argparse.Namespace, settings: Settings) -> int:
    """`shouwang support-api`: the operator API over the read model until SIGINT/SIGTERM."""
    from services.readmodel.bootstrap import serve_api  # lazy: see above

    asyncio.run(serve_api(settings))
    return 0
