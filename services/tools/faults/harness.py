"""The fault harness: run the chosen scenarios on one private stack, print PASS/FAIL each.

Each scenario gets the same private stack (a LocalKafka and a LocalPostgres under a run
directory, stopped at the end); the exit code is 1 when any scenario failed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from services.platform.config import Settings
from services.tools.faults import (
    brokerloss,
    crashes,
    hostile,
    observe,
    outage,
    overload,
    poison,
    scaleout,
)
from services.tools.faults.stack import PrivateStack
from services.tools.faults.verdict import Result
from services.tools.workers import issue_view_token

Scenario = Callable[[PrivateStack, bool, int], Awaitable[Result]]


def scenarios() -> dict[str, Scenario]:
    """In the order they run (the issue's priority order)."""
    return {
        "poison": poison.run,
        "crashes": crashes.run,
        "db-outage": outage.run,
        "overload": overload.run,
        "hostile": hostile.run,
        "scale-out": scaleout.run,
        "broker-loss": brokerloss.run,
    }


# Issue #9's security properties are tests, not fault scenarios: named here so a reader of the
# harness's output knows where they are checked (README "Security").
ELSEWHERE = {
    "security": "personal data sealing, SASL/SCRAM+TLS, database roles, operator actions: "
    "checked by make test (README, Security)",
}


async def run_scenarios(
    names: list[str], quick: bool, seed: int, run_dir: Path, out=sys.stdout
) -> list[Result]:
    chosen = scenarios()
    stack = PrivateStack(run_dir)
    results: list[Result] = []
    print(f"faults: starting a private Kafka and PostgreSQL under {run_dir}", file=out, flush=True)
    stack.start()
    try:
        # Every route of the workers but /metrics needs a token: the household view's.
        observe.VIEW["secret"] = await issue_view_token(stack.database_url, "faults-harness")
        for name in names:
            print(f"faults: running {name} ({'quick' if quick else 'full'})", file=out, flush=True)
            started = time.monotonic()
            try:
                result = await chosen[name](stack, quick, seed)
            except Exception as exc:  # a harness error is a FAIL with its reason, not a crash
                result = Result(name, failures=[f"harness error: {type(exc).__name__}: {exc}"])
                result.seconds = time.monotonic() - started
            print(result.render(), file=out, flush=True)
            results.append(result)
    finally:
        stack.stop()
    return results


def run(args: argparse.Namespace, settings: Settings) -> int:
    names = [args.scenario] if args.scenario else list(scenarios())
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    print(f"faults: seed {seed} (rerun with --seed {seed})", flush=True)
    run_dir = Path(tempfile.mkdtemp(prefix="shouwang-faults-", dir=args.dir))
    results = asyncio.run(run_scenarios(names, args.quick, seed, run_dir))
    failed = [r.name for r in results if not r.passed]
    print()
    for result in results:
        print(result.render())
    if not args.scenario:
        for name, where in ELSEWHERE.items():
            print(f"NOTE {name}: {where}")
    if failed:
        print(f"faults: FAIL ({', '.join(failed)}); logs kept in {run_dir}")
        return 1
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    print("faults: PASS")
    return 0
