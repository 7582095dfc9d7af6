"""B1: visits over HTTP (single records and batches, acks=all) against a raw aiokafka producer of
the same records, and Kafka's own ProducerPerformance as the machine's ceiling.

The API runs in this process (aiohttp, the real `build_app` over the real Kafka sink), with an
operator token in memory and no database: token and directory look-ups are cached in the
service too, so what is measured is JSON → validation → Avro → broker ack. The HTTP client
shares the process (and the 2 cores) with the server.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from bench.data import LAYOUT, Dataset
from bench.report import Figure
from services.contract.codec import Codec
from services.contract.topics import VISITS
from services.platform.auth.revocations import Revocations
from services.platform.auth.tokens import CachedTokens, InMemoryTokenStore, hash_secret, new_token
from services.platform.collector import young_generation_at_least
from services.platform.kafka.producer import KafkaSink
from services.platform.localstack.jars import resolve_classpath
from services.platform.localstack.ports import free_ports
from services.platform.personal.keys import CachedKeys, InMemoryKeyStore
from services.platform.personal.sealer import PersonalSealer
from services.platform.quotas import QuotaOverride
from services.tools.simulation import Event
from services.tools.simulation import records as rec
from services.tools.simulation.sinks.api import request_json
from services.visits.adapters.directory import CachedDirectory, InMemoryDirectory
from services.visits.entrypoints.http import YOUNG_GENERATION, Dependencies, build_app
from services.visits.entrypoints.openapi import load_document
from services.visits.metrics import VisitsMetrics
from services.visits.service import Limits

SECRET = "sw_bench_operator"
CONCURRENCY = 16  # clients posting single records at once
BATCH = 500  # records per batch request (the API's default limit)
BATCH_CONCURRENCY = 2
CEILING_TOPIC = "bench.ceiling"
TARGET_BATCH_RATIO = 0.5


def _visits(data: Dataset, count: int) -> list[dict[str, Any]]:
    visits = [e for e in data.events if e.event_type == rec.VISIT]
    if not visits:
        raise RuntimeError("the dataset has no visits")
    out = []
    while len(out) < count:
        out.extend(dict(e.record) for e in visits[: count - len(out)])
    return out


def _fresh(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same records under new event ids (so no phase is answered as a duplicate)."""
    return [{**r, "event_id": str(uuid.uuid4())} for r in records]


def _complete_feed() -> Revocations:
    """No revocations in the bench: a feed that has read everything (frozen clock)."""
    feed = Revocations(clock=lambda: 0.0)
    feed.read_up_to(0.0)
    return feed


async def _serve(bootstrap: str, codec: Codec) -> tuple[web.AppRunner, str, KafkaSink]:
    store = InMemoryTokenStore()
    # The write path is measured, not a token's rate limit (services/visits/admission.py).
    unlimited = QuotaOverride(rate_per_second=1_000_000 - 1, burst=1_000_000)
    await store.issue(new_token("operator", "op-bench", quota=unlimited), hash_secret(SECRET))
    sink = KafkaSink(bootstrap)
    deps = Dependencies(
        codec=codec,
        sink=sink,
        tokens=CachedTokens(store, _complete_feed(), ttl=300),
        directory=CachedDirectory(InMemoryDirectory()),
        sealer=PersonalSealer(CachedKeys(InMemoryKeyStore())),
        metrics=VisitsMetrics(CollectorRegistry()),
        openapi=load_document(),
        limits=Limits(max_body_bytes=8 * 1024 * 1024, max_batch=BATCH),
    )
    runner = web.AppRunner(build_app(deps), access_log=None)
    await runner.setup()
    (port,) = free_ports(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}", sink


def _json(record: dict[str, Any]) -> dict[str, Any]:
    return request_json(Event(rec.VISIT, record))


async def _http_single(session, base: str, bodies: list[dict]) -> float:
    queue = list(reversed(bodies))

    async def client() -> None:
        while queue:
            body = queue.pop()
            async with session.post(f"{base}/v1/visits", json=body) as r:
                if r.status != 202:
                    raise RuntimeError(f"POST /v1/visits: {r.status} {await r.text()}")
                await r.read()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def _http_batch(session, base: str, bodies: list[dict]) -> float:
    chunks = [bodies[i : i + BATCH] for i in range(0, len(bodies), BATCH)]
    chunks.reverse()

    async def client() -> None:
        while chunks:
            chunk = chunks.pop()
            async with session.post(f"{base}/v1/visits:batch", json={"records": chunk}) as r:
                if r.status != 202:
                    raise RuntimeError(f"POST /v1/visits:batch: {r.status} {await r.text()}")
                await r.read()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(BATCH_CONCURRENCY)))
    return time.perf_counter() - started


async def _raw(bootstrap: str, codec: Codec, records: list[dict], single: bool) -> float:
    """aiokafka, acks=all, idempotent: encode and send the same records.

    `single`: CONCURRENCY senders each waiting for its ack (like single POSTs); otherwise every
    record is sent at once and the acks gathered (like batches).
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
    await producer.start()
    try:
        await producer.send_and_wait(VISITS.name, codec.encode(rec.VISIT, records[0]), b"warm")
        started = time.perf_counter()
        if single:
            queue = list(reversed(records))

            async def sender() -> None:
                while queue:
                    r = queue.pop()
                    frame = codec.encode(rec.VISIT, r)
                    await producer.send_and_wait(VISITS.name, frame, r["household_id"].encode())

            await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
        else:
            futures = [
                await producer.send(
                    VISITS.name, codec.encode(rec.VISIT, r), r["household_id"].encode()
                )
                for r in records
            ]
            await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _ceiling(bootstrap: str, records: int, size: int) -> tuple[float, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if CEILING_TOPIC not in await admin.list_topics():
            await admin.create_topics(
                [NewTopic(CEILING_TOPIC, LAYOUT.household_partitions, LAYOUT.replication_factor)]
            )
            await asyncio.sleep(1.0)
    finally:
        await admin.close()
    command = [
        "java",
        "-cp",
        resolve_classpath(),
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        CEILING_TOPIC,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
        "enable.idempotence=true",
    ]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=600, check=False
    )
    lines = [ln for ln in done.stdout.splitlines() if "records sent" in ln]
    match = re.search(r"([\d.]+) records/sec", lines[-1]) if lines else None
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"ProducerPerformance failed: {done.stdout[-500:]} {done.stderr[-800:]}")
    return float(match.group(1)), lines[-1].strip()


async def measure(stack, data: Dataset, codec: Codec, mode) -> list[Figure]:
    records = _visits(data, mode.ingest_records)
    size = round(sum(len(codec.encode(rec.VISIT, r)) for r in records) / len(records))
    n = len(records)
    runner, base, sink = await _serve(stack.bootstrap, codec)
    headers = {"Authorization": f"Bearer {SECRET}"}
    try:
        connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
        async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
            base = ""  # the session has the base URL
            await _http_single(session, base, [_json(r) for r in _fresh(records[:1])])  # warm
            single_bodies = [_json(r) for r in _fresh(records)]
            single_s = await _http_single(session, base, single_bodies)
            batch_bodies = [_json(r) for r in _fresh(records)]
            batch_s = await _http_batch(session, base, batch_bodies)
    finally:
        await runner.cleanup()
        await sink.close()
    # The baseline under the collector setting the API serves with (its young generation), so
    # neither pays full collections over the bench's county that the other is spared.
    with young_generation_at_least(YOUNG_GENERATION):
        raw_single_s = await _raw(stack.bootstrap, codec, _fresh(records), single=True)
        raw_batch_s = await _raw(stack.bootstrap, codec, _fresh(records), single=False)
    ceiling, ceiling_line = await _ceiling(stack.bootstrap, mode.perf_records, size)
    single, batch = n / single_s, n / batch_s
    raw_single, raw_batch = n / raw_single_s, n / raw_batch_s
    return [
        Figure(
            "B1",
            f"HTTP single POSTs ({CONCURRENCY} concurrent), acks=all",
            single,
            "records/s",
            f"raw aiokafka send_and_wait x{CONCURRENCY}",
            raw_single,
            count=n,
            seconds=single_s,
        ),
        Figure(
            "B1",
            f"HTTP batches of {BATCH} ({BATCH_CONCURRENCY} concurrent), acks=all",
            batch,
            "records/s",
            "raw aiokafka producer, pipelined",
            raw_batch,
            f">= {TARGET_BATCH_RATIO:.0%} of raw",
            batch / raw_batch >= TARGET_BATCH_RATIO,
            n,
            batch_s,
        ),
        Figure(
            "B1",
            "raw aiokafka producer, pipelined (the baseline)",
            raw_batch,
            "records/s",
            f"Kafka ProducerPerformance ({size} B records), the ceiling",
            ceiling,
            count=n,
            seconds=raw_batch_s,
            note=ceiling_line,
        ),
    ]
