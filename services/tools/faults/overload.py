"""Scenario "overload": flood the visits API while the broker cannot keep up, and check the API
sheds load (429 + Retry-After) with bounded memory, and that every 2xx it gave is in the log.

The visits service runs as a deployment runs it (`shouwang visits`, a feed token issued with
`shouwang tokens issue`). Many concurrent clients post hardship reports as fast as they are
answered, honouring Retry-After; part-way through, the broker is frozen (SIGSTOP: alive, but
acknowledging nothing) for a while and thawed (SIGCONT), so acknowledgements stop while requests
keep coming. That is "Kafka cannot keep up" in its plainest form.

Checks: answers are only 202, 429 (with Retry-After) or 503 (with Retry-After; the broker did
not acknowledge in time, nothing is promised); 429s happened while the broker was frozen (load
was shed, not queued); the service's resident memory stayed under a bound; the service still
answers; every event id answered 202 is in `household.hardships`.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp

from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_ports
from services.tools.faults.feed import (
    HardshipClient,
    hardship_template,
    issue_feed_token,
    missing_from_log,
    random_id,
)
from services.tools.faults.processes import visits_worker
from services.tools.faults.stack import LAYOUT, PrivateStack
from services.tools.faults.verdict import Result, wait_for

MAX_IN_FLIGHT = 32  # the service's admission limit in this scenario
MEMORY_BOUND_MB = 400  # resident set of the visits process, whatever the flood


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def run(stack: PrivateStack, quick: bool, seed: int) -> Result:
    result = Result("overload")
    started = time.monotonic()
    rng = random.Random(seed)
    flood_seconds, freeze_seconds, clients = (20.0, 8.0, 96) if quick else (120.0, 30.0, 192)
    await ensure_topics(stack.bootstrap, LAYOUT)
    (port,) = free_ports(1)
    visits = visits_worker(
        stack,
        port,
        SHOUWANG_VISITS_MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
        SHOUWANG_VISITS_REQUEST_TIMEOUT_SECONDS="5",
        # The feed's own limits lifted: this scenario is about the broker slots all share (the
        # per-token limits have their own scenario, hostile.py).
        SHOUWANG_VISITS_FEED_CONCURRENCY="10000",
        SHOUWANG_VISITS_FEED_RATE="100000",
        SHOUWANG_VISITS_FEED_BURST="100000",
    )
    base = f"http://127.0.0.1:{port}"
    statuses: Counter[str] = Counter()
    acknowledged: set[str] = set()
    shed_while_frozen = 0
    frozen = False
    peak_mb = 0.0
    try:
        secret = issue_feed_token(stack)
        template = hardship_template(seed % 10_000 + 3)
        visits.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            api = HardshipClient(http, base, secret, template)
            await wait_for(api.ready, 120, "the visits API to be ready", 0.5, [visits])
            stop_at = time.monotonic() + flood_seconds

            async def client(n: int) -> None:
                nonlocal shed_while_frozen
                while time.monotonic() < stop_at:
                    event_id = random_id(rng)
                    status, retry_after = await api.post(
                        event_id, f"FLOOD{n:03d}{rng.randrange(1000):03d}"
                    )
                    statuses[status] += 1
                    if status == "202":
                        acknowledged.add(event_id)
                    elif status in ("429", "503"):
                        if retry_after is None:
                            statuses[f"{status} without Retry-After"] += 1
                        if status == "429" and frozen:
                            shed_while_frozen += 1
                        await asyncio.sleep(float(retry_after or 1))
                    else:
                        await asyncio.sleep(1.0)

            async def watch_memory() -> None:
                nonlocal peak_mb
                while time.monotonic() < stop_at + 5:
                    pid = visits.process.pid if visits.process else None
                    if pid:
                        peak_mb = max(peak_mb, rss_mb(pid))
                    await asyncio.sleep(0.25)

            async def freeze_broker() -> None:
                nonlocal frozen
                await asyncio.sleep(flood_seconds / 4)
                pid = stack.kafka.pid
                if pid is None:
                    raise RuntimeError("the broker is not running")
                os.kill(pid, signal.SIGSTOP)
                frozen = True
                try:
                    await asyncio.sleep(freeze_seconds)  # the fault: no acknowledgements
                finally:
                    os.kill(pid, signal.SIGCONT)
                    frozen = False

            await asyncio.gather(
                freeze_broker(), watch_memory(), *(client(n) for n in range(clients))
            )
            try:
                await wait_for(api.ready, 60, "the visits API after the flood", 0.5, [visits])
                alive = True
            except AssertionError:
                alive = False
        result.counts["flood"] = f"{clients} clients for {flood_seconds:.0f} s"
        result.counts["broker_frozen"] = f"{freeze_seconds:.0f} s"
        result.counts["answers"] = dict(sorted(statuses.items()))
        result.counts["shed_while_frozen"] = shed_while_frozen
        result.counts["peak_rss_mb"] = round(peak_mb)
        unexpected = {s: n for s, n in statuses.items() if s not in ("202", "429", "503")}
        result.check(not unexpected, f"answers other than 202, 429 or 503: {unexpected}")
        result.check(shed_while_frozen > 0, "no request was shed (429) while the broker was frozen")
        result.check(
            peak_mb < MEMORY_BOUND_MB,
            f"the visits process grew to {peak_mb:.0f} MB (bound {MEMORY_BOUND_MB} MB)",
        )
        result.check(bool(alive), "the visits API does not answer /readyz after the flood")

        await missing_from_log(result, stack.bootstrap, acknowledged)
    except AssertionError as exc:
        result.failures.append(str(exc))
    finally:
        if stack.kafka.pid is not None:
            os.kill(stack.kafka.pid, signal.SIGCONT)  # never leave the broker frozen
        visits.stop()
        result.seconds = time.monotonic() - started
    return result
