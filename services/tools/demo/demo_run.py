"""What `shouwang demo` runs: the options handed to the orchestrator, its failures made exit 1."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from services.platform.config import Settings
from services.platform.localstack.errors import LocalStackError
from services.tools.demo.errors import DemoError
from services.tools.demo.orchestrator import DemoOptions, run_demo
from services.tools.demo.supervisor import ServiceDied


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo with the parsed options; a failure is one line on stderr and exit 1."""
    if args.home is not None:
        settings = replace(settings, home=args.home.resolve())
    options = DemoOptions(
        scale=args.scale,
        seed=args.seed,
        until=args.until,
        keep=args.keep,
        out=args.out,
        rate=args.rate,
        settle_timeout=args.timeout,
        workers=args.workers,
    )
    try:
        run_demo(options, settings, say=lambda line: print(line, flush=True))
    except (DemoError, ServiceDied, LocalStackError) as exc:
        print(f"shouwang demo: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
