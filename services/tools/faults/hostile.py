"""Scenario "hostile": one token floods the visits API with slow bodies; another must not notice.

The visits service runs as deployed (`shouwang visits`, its default admission settings). A
department feed's token holds 256 connections that each send a write's headers and then trickle
its body a byte at a time (issue 21: the attack that once had an operator's writes answered 429
27 times of 30). An attacker answered (429, or 408 once the body deadline passes) closes and
opens a new connection a trickle later, so 256 stay held. Meanwhile an operator token writes
hardship reports, a few at a time, as an operator's import would.

Checks: at least 99% of the operator's writes answered 2xx and their p99 under 1 s; the flood
was refused by the feed token's own limits (429 `token_concurrency` on /metrics), never by the
broker slots the operator needs; every write answered 202 is in `household.hardships`; the API
still answers afterwards. The full form runs past SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS and also
requires the held bodies to have been answered 408.

Then the schema fuzzer with every check it has (`fuzzing.py`: `--checks all`, stateful where
the document's links allow) against the API that was attacked, with the operator's token:
zero failures (FUZZ_EXAMPLES cases per operation, 10 in the quick form). The other APIs
(operator, monitoring view, console) are fuzzed the same way by tests/integration/test_api_fuzz.py.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
from services.platform.config import VisitsSettings
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_ports
from services.tools.faults.feed import (
    HardshipClient,
    hardship_template,
    missing_from_log,
    random_id,
)
from services.tools.faults.fuzzing import VISITS_OPERATIONS, fuzz, summary
from services.tools.faults.processes import visits_worker
from services.tools.faults.stack import LAYOUT, PrivateStack
from services.tools.faults.verdict import Result, wait_for

SLOW_BODIES = 256
TRICKLE_SECONDS = 2.0  # one byte of body this often
BODY_BYTES = 4096  # what each slow request announces in Content-Length
WRITERS = 4  # the operator's concurrent writes
MIN_2XX_SHARE = 0.99
MAX_P99_SECONDS = 1.0
FUZZ_EXAMPLES = 50  # per operation in the full form; the quick form draws 10


async def issue_token(database_url: str, kind: str, holder: str, types: tuple[str, ...]) -> str:
    """A fresh token stored in the token table (as the harness issues observe.VIEW's)."""
    secret = new_secret()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        token = new_token(kind, holder, (), types)
        await PostgresTokenStore(pool).issue(token, hash_secret(secret))
    finally:
        await pool.close()
    return secret


class SlowBodies:
    """`count` connections held open by one token, each trickling a write's body."""

    def __init__(self, port: int, secret: str, count: int, trickle: float):
        self.port, self.count, self.trickle = port, count, trickle
        self.head = (
            "POST /v1/hardships HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {secret}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {BODY_BYTES}\r\n\r\n"
        ).encode()
        self.answers: Counter[str] = Counter()
        self.open = 0
        self.peak_open = 0

    async def hold(self, stop_at: float) -> None:
        await asyncio.gather(*(self._one(stop_at) for _ in range(self.count)))

    async def _one(self, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError as exc:
                self.answers[type(exc).__name__] += 1
                await asyncio.sleep(self.trickle)
                continue
            self.open += 1
            self.peak_open = max(self.peak_open, self.open)
            status_line = asyncio.ensure_future(reader.readline())
            try:
                writer.write(self.head)
                while not status_line.done() and time.monotonic() < stop_at:
                    writer.write(b" ")  # JSON allows leading white space: a valid, slow body
                    await writer.drain()
                    await asyncio.wait({status_line}, timeout=self.trickle)
                if status_line.done():
                    line = status_line.result().split()
                    self.answers[line[1].decode() if len(line) > 1 else "closed"] += 1
            except OSError as exc:
                self.answers[type(exc).__name__] += 1
            finally:
                status_line.cancel()
                self.open -= 1
                writer.close()
            # An answered attacker comes back a trickle later: the connections stay held.
            await asyncio.sleep(self.trickle)


async def _metric(http: aiohttp.ClientSession, base: str, name: str, **labels: str) -> float:
    async with http.get(f"{base}/metrics") as answer:
        text = await answer.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else math.inf


async def run(stack: PrivateStack, quick: bool, seed: int) -> Result:
    result = Result("hostile")
    started = time.monotonic()
    rng = random.Random(seed)
    body_timeout = VisitsSettings().body_timeout_seconds
    # The full form outlasts the body deadline, so the held bodies are answered 408 too.
    flood_seconds, writes = (15.0, 300) if quick else (body_timeout * 2 + 10, 2000)
    await ensure_topics(stack.bootstrap, LAYOUT)
    (port,) = free_ports(1)
    visits = visits_worker(stack, port)  # the default admission settings
    base = f"http://127.0.0.1:{port}"
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    acknowledged: set[str] = set()
    try:
        feed = await issue_token(stack.database_url, "feed", "feed-hostile", ("HardshipReported",))
        operator = await issue_token(stack.database_url, "operator", "op-hostile", ())
        template = hardship_template(seed % 10_000 + 5)
        visits.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            api = HardshipClient(http, base, operator, template)
            await wait_for(api.ready, 120, "the visits API to be ready", 0.5, [visits])
            # One write first, not counted: the producer starts on the first write, not this.
            warm, _ = await api.post(random_id(rng), "HOSTILE-WARM")
            if warm != "202":
                raise AssertionError(f"the operator's first write was answered {warm}")
            flood = SlowBodies(port, feed, SLOW_BODIES, TRICKLE_SECONDS)
            stop_at = time.monotonic() + flood_seconds
            attack = asyncio.ensure_future(flood.hold(stop_at))
            await wait_for(
                lambda: flood.peak_open >= SLOW_BODIES or attack.done(),
                30,
                f"{SLOW_BODIES} slow-body connections to be open",
                0.1,
                [visits],
            )
            left = list(range(writes))
            # Paced so the writes span the flood rather than finishing in its first seconds.
            gap = (stop_at - time.monotonic()) * 0.8 * WRITERS / writes

            async def writer() -> None:
                while left and time.monotonic() < stop_at:
                    n = left.pop()
                    event_id = random_id(rng)
                    sent = time.monotonic()
                    status, _ = await api.post(event_id, f"HOSTILE{n:05d}")
                    latencies.append(time.monotonic() - sent)
                    statuses[status] += 1
                    if status == "202":
                        acknowledged.add(event_id)
                    await asyncio.sleep(gap)

            await asyncio.gather(*(writer() for _ in range(WRITERS)))
            held_while_writing = flood.open
            await attack
            shed = {
                f"{kind}/{reason}": await _metric(
                    http,
                    base,
                    "shouwang_visits_shed_requests_total",
                    token_kind=kind,
                    reason=reason,
                )
                for kind, reason in (
                    ("feed", "token_concurrency"),
                    ("feed", "token_rate"),
                    ("feed", "overloaded"),
                    ("operator", "overloaded"),
                )
            }
            timeouts = await _metric(
                http, base, "shouwang_visits_body_timeouts_total", token_kind="feed"
            )
            alive = await api.ready()
        sent = sum(statuses.values())
        ok = sum(n for s, n in statuses.items() if s.startswith("2"))
        share = ok / sent if sent else 0.0
        late = p99(latencies)
        result.counts["slow_bodies_held"] = f"{flood.peak_open} (at the end {held_while_writing})"
        result.counts["flood"] = f"{flood_seconds:.0f} s"
        result.counts["operator_writes"] = sent
        result.counts["operator_2xx"] = f"{ok} ({share:.1%})"
        # none answered: no p99 to show (inf), and the checks below say why that fails
        result.counts["operator_p99_ms"] = round(late * 1000) if math.isfinite(late) else "none"
        result.counts["operator_max_ms"] = round(max(latencies, default=0) * 1000)
        result.counts["operator_answers"] = dict(sorted(statuses.items()))
        result.counts["attacker_answers"] = dict(sorted(flood.answers.items()))
        result.counts["shed"] = {k: int(v) for k, v in shed.items()}
        result.counts["body_timeouts"] = int(timeouts)
        result.check(sent >= writes // 2, f"only {sent} operator writes were sent in the flood")
        result.check(
            share >= MIN_2XX_SHARE, f"{share:.1%} of the operator's writes answered 2xx (< 99%)"
        )
        result.check(late < MAX_P99_SECONDS, f"operator writes' p99 {late:.3f} s (>= 1 s)")
        result.check(
            flood.peak_open >= SLOW_BODIES, f"only {flood.peak_open} slow bodies were held"
        )
        result.check(
            shed["feed/token_concurrency"] > 0, "the feed's flood was never refused by its own cap"
        )
        result.check(
            shed["feed/overloaded"] + shed["operator/overloaded"] == 0,
            "the flood reached the broker slots (429 overloaded)",
        )
        if not quick:
            result.check(timeouts > 0, "no held body was answered 408 after the body deadline")
        result.check(bool(alive), "the visits API does not answer /readyz after the flood")

        await missing_from_log(result, stack.bootstrap, acknowledged)
        await fuzzed(result, stack, base, operator, 10 if quick else FUZZ_EXAMPLES, seed)
    except AssertionError as exc:
        result.failures.append(str(exc))
    finally:
        visits.stop()
        result.seconds = time.monotonic() - started
    return result


async def fuzzed(
    result: Result, stack: PrivateStack, base: str, token: str, examples: int, seed: int
) -> None:
    """The fuzzer against the visits API after the flood: every check, zero failures."""
    config = stack.run_dir / "schemathesis-hostile.toml"
    await asyncio.to_thread(config.write_text, VISITS_OPERATIONS, encoding="utf-8")
    report = stack.run_dir / "fuzz-hostile.txt"
    code, text = await fuzz(
        f"{base}/openapi.json", token, config, report, visits=True, examples=examples, seed=seed
    )
    cases = next((line.strip() for line in text.splitlines() if " generated, " in line), "?")
    result.counts["fuzzer"] = f"{cases} (every check; exit {code})"
    result.check(code == 0, f"the schema fuzzer failed (exit {code}):\n{summary(text)}")
