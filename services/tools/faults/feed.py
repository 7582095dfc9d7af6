"""A department feed for the load scenarios: its token, simulated hardship reports, and a
client that posts them to the visits API as the feed would."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid

import aiohttp

from services.contract.topics import HARDSHIPS
from services.tools.faults.observe import CODEC, read_topics
from services.tools.faults.stack import ROOT, PrivateStack
from services.tools.faults.verdict import Result
from services.tools.simulation import records as rec
from services.tools.simulation.parameters import SimulationParameters
from services.tools.simulation.sinks.api import SERVER_FIELDS
from services.tools.simulation.sinks.jsonl import to_json
from services.tools.simulation.stream import generate


def issue_feed_token(stack: PrivateStack) -> str:
    """A feed token for hardship reports, issued as an operator would (the CLI)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "tokens",
            "issue",
            "--kind",
            "feed",
            "--holder",
            "feed-overload",
            "--event-type",
            "HardshipReported",
        ],
        cwd=ROOT,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("token (shown once"):
            return line.rsplit(" ", 1)[-1]
    raise RuntimeError(f"no token in the output of `shouwang tokens issue`: {done.stdout!r}")


def hardship_template(seed: int) -> dict:
    """One simulated hardship report as the API takes it (server fields left out)."""
    for event in generate(SimulationParameters(seed=seed, scale=0.01)):
        if event.event_type == rec.HARDSHIP:
            record = to_json(event.record)
            return {k: v for k, v in record.items() if k not in SERVER_FIELDS}
    raise RuntimeError("the simulation produced no hardship report")


class HardshipClient:
    """Posts hardship reports to a running visits API as a department feed would."""

    def __init__(self, http: aiohttp.ClientSession, base: str, secret: str, template: dict):
        self.http, self.base, self.template = http, base, template
        self.headers = {"Authorization": f"Bearer {secret}"}

    async def ready(self) -> bool:
        try:
            async with self.http.get(f"{self.base}/readyz") as answer:
                return answer.status == 200
        except aiohttp.ClientError:
            return False

    async def post(self, event_id: str, household: str) -> tuple[str, str | None]:
        """(status or the client error's name, Retry-After) of one report."""
        body = {**self.template, "event_id": event_id, "household_id": household}
        try:
            async with self.http.post(
                f"{self.base}/v1/hardships", json=body, headers=self.headers
            ) as answer:
                await answer.read()
                return str(answer.status), answer.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError) as exc:
            return type(exc).__name__, None


async def missing_from_log(result: Result, bootstrap: str, acknowledged: set[str]) -> None:
    """Every hardship answered 202 must be in the log: counted, and a failed check if not."""
    ids: set[str] = set()
    for record in await read_topics(bootstrap, [HARDSHIPS.name]):
        try:
            ids.add(str(CODEC.decode(record.value).record["event_id"]))
        except Exception:  # another scenario's garbage on the topic: not an acknowledged write
            continue
    missing = acknowledged - ids
    result.counts["acknowledged"] = len(acknowledged)
    result.counts["acknowledged_missing_from_log"] = len(missing)
    result.check(not missing, f"{len(missing)} writes answered 202 are not in the log")


def random_id(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (the scenario's seeded generator)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
