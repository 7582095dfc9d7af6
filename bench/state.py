"""B7: the monitoring worker's state: table bytes per household, worker RSS at N households
(memory and RocksDB stores) and recovery time from the tables' changelogs.

Method. The county (`bench.data`) is folded in memory through `service.apply_record`, as
the worker does, giving one table row (`table_codec.dump_row`) and one summary per household:
their sizes are the bytes-per-household figures, against the household's own Avro input frames.
For N households the two changelog topics of a fresh app id are then filled directly: household
i gets the row and summary of county household `i mod len(county)` with the household id
replaced by a synthetic id of the same length (`DJ9` + 9 digits, a prefix the county never
uses), so the rows have the county's size distribution, not one template's. They are produced
keyed and partitioned as faust writes them (raw bytes, murmur2 of the key), and the worker's
consumer group is committed at the input topics' end offsets first, so it recovers and then
has nothing to process. The worker (`shouwang monitoring`, a subprocess) is started on that
app id with a fresh home; "recovered" is faust's "Worker ready" after "Done reading from
changelog topics" in its log, checked by reading sample households (first, last and spread)
through its web view. Peak RSS is `VmHWM` of /proc/<pid>/status at that moment. A RocksDB run
is then stopped (SIGTERM) and its faust data directory measured on disk.

The baseline for recovery is a raw aiokafka read of the same changelog topics in the same run.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.data import Dataset
from bench.fold import NOW
from bench.replay import raw_read
from bench.report import Figure
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_EXPECTED as EXPECTED
from services.monitoring.adapters import avro_translation as avro
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.adapters.table_codec import RowCache, dump_row, dump_summary, load_row
from services.monitoring.entrypoints.app import INPUT_TOPICS, changelog_topics, ticks_topic
from services.monitoring.service import Position, apply_record
from services.platform.localstack.ports import free_ports
from services.platform.localstack.processes import stop_child
from services.tools.workers import (
    issue_view_token,
    monitoring_env,
    start_monitoring_worker,
    view_headers,
)

TARGET_HOUSEHOLDS, TARGET_SECONDS = 1_000_000, 60.0
TARGET_RATE = TARGET_HOUSEHOLDS / TARGET_SECONDS
TARGET = f"1M households in <= {TARGET_SECONDS:.0f} s (>= {TARGET_RATE:,.0f} households/s)"
READY_SECONDS = 5400  # generous: 1M households took ~20 min before the batch recovery, ~45 s now
SYNTHETIC_PREFIX = "DJ9"
RESTORING = "Restoring state from changelog topics"
DONE_READING = "Done reading from changelog topics"
READY = "Worker ready"


@dataclass(frozen=True)
class Template:
    household_id: bytes
    row: bytes
    summary: bytes
    input_bytes: int  # the household's Avro input frames


@dataclass
class WorkerRun:
    households: int
    store: str
    ready_s: float  # process start → recovered and ready
    restore_s: float | None  # "Restoring state" → "Done reading" (None: nothing to restore)
    hwm_kib: int  # VmHWM at ready
    disk_bytes: int | None = None  # RocksDB data directory after a clean stop


def templates(data: Dataset, codec: Codec) -> list[Template]:
    """Each county household's row and summary after folding all of its events."""
    policies = load_policies()
    outcomes, inputs = {}, {}
    for r in data.records(set(EXPECTED)):
        decoded = codec.decode(r.value, expected=EXPECTED[r.topic])
        event = avro.event_from(decoded.event_type, decoded.record)
        hid = event.household_id
        outcomes[hid] = apply_record(
            outcomes[hid].row if hid in outcomes else None,
            event,
            Position(r.topic, r.partition, r.offset),
            r.value,
            policies,
            NOW,
            event_clock=True,
        )
        inputs[hid] = inputs.get(hid, 0) + len(r.value)
    return [
        Template(hid.encode(), dump_row(o.row), dump_summary(o.summary), inputs[hid])
        for hid, o in sorted(outcomes.items())
    ]


def synthetic_id(i: int, length: int) -> bytes:
    digits = length - len(SYNTHETIC_PREFIX)
    if i >= 10**digits:
        raise ValueError(f"household {i} does not fit a {length}-character synthetic id")
    return f"{SYNTHETIC_PREFIX}{i:0{digits}d}".encode()


def synthetic(templates_: list[Template], i: int) -> tuple[bytes, bytes, bytes]:
    """Household i: (key, row, summary) from template i mod len, its id replaced everywhere."""
    t = templates_[i % len(templates_)]
    key = synthetic_id(i, len(t.household_id))
    return key, t.row.replace(t.household_id, key), t.summary.replace(t.household_id, key)


def _percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def create_changelogs(bootstrap: str, app_id: str, partitions: int) -> None:
    """The app's table changelogs and ticks topic as `monitoring.commands.prepare_topics`
    creates them (compacted, household partitions), once every partition has a leader."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [*changelog_topics(app_id), ticks_topic(app_id)]
        await admin.create_topics(
            [NewTopic(n, partitions, 1, topic_configs={"cleanup.policy": "compact"}) for n in names]
        )
        async with asyncio.timeout(120):
            while True:
                described = await admin.describe_topics(names)
                if all(
                    d["partitions"]
                    and not d["error_code"]
                    and all(p["leader"] >= 0 for p in d["partitions"])
                    for d in described
                ):
                    return
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def fill_changelogs(
    bootstrap: str, app_id: str, templates_: list[Template], households: int
) -> int:
    """Produce `households` rows and summaries to the app's changelog topics; returns records."""
    rows_topic, summaries_topic = changelog_topics(app_id)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for i in range(households):
            key, row, summary = synthetic(templates_, i)
            pending.append(await producer.send(rows_topic, row, key=key))
            pending.append(await producer.send(summaries_topic, summary, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                sent += len(pending)
                pending = []
        await asyncio.gather(*pending)
        sent += len(pending)
    finally:
        await producer.stop()
    return sent


async def _commit_inputs_at_end(bootstrap: str, group: str) -> None:
    """The worker's group starts at the inputs' end: it recovers, then has nothing to do."""
    from bench.worker import _end_offsets

    ends = await _end_offsets(bootstrap, [t.name for t in INPUT_TOPICS])
    # Never subscribed, so it never joins the group: a manual assignment commits as a
    # stand-alone client, which the empty group accepts (a member would be fenced on rebalance).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit(ends)
    finally:
        await consumer.stop()


def vm_hwm_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no VmHWM in /proc/{pid}/status")
    return int(match.group(1))


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _get(port: int, household: bytes, secret: str) -> int:
    url = f"http://127.0.0.1:{port}/v1/households/{household.decode()}"
    request = urllib.request.Request(url, headers=view_headers(secret))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            json.load(response)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def run_worker(
    bootstrap: str,
    root: Path,
    app_id: str,
    households: int,
    templates_: list[Template],
    *,
    rocksdb: bool,
    database_url: str,
    view_secret: str,
    extra_env: dict[str, str] | None = None,
) -> WorkerRun:
    home = root / f"{app_id}-{'rocksdb' if rocksdb else 'memory'}-{uuid.uuid4().hex[:6]}"
    home.mkdir(parents=True)
    (port,) = free_ports(1)
    env = monitoring_env(
        bootstrap,
        home,
        app_id,
        port,
        rocksdb=rocksdb,
        **{
            # the sweep reads every summary: kept out of the recovery being measured
            "SHOUWANG_MONITORING_SWEEP_SECONDS": "86400",
            # READY, RESTORING, DONE_READING are faust's and mode's INFO lines, quiet by default
            "SHOUWANG_LOG_LEVEL": "INFO,faust=INFO,mode=INFO",
            "DATABASE_URL": database_url,  # the token table of the household view
            **(extra_env or {}),
        },
    )
    log_path = home / "worker.log"
    started = time.perf_counter()
    process = start_monitoring_worker(env, log_path)
    try:
        restoring_at = done_at = None
        deadline = started + READY_SECONDS
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"worker exited with {process.returncode}: {tail}")
            now = time.perf_counter()
            if now > deadline:
                raise RuntimeError(f"worker not ready in {READY_SECONDS} s ({households} rows)")
            text = log_path.read_text(errors="replace")
            if restoring_at is None and RESTORING in text:
                restoring_at = now
            if done_at is None and DONE_READING in text:
                done_at = now
            after = text[text.find(DONE_READING) :] if done_at is not None else text
            if (done_at is not None or households == 0) and READY in after:
                ready_s = now - started
                break
            time.sleep(0.1)  # polling the child's log, not a test
        hwm = vm_hwm_kib(process.pid)
        if households:
            samples = sorted({0, households - 1, *range(0, households, max(1, households // 20))})
            for i in samples:
                key = synthetic_id(i, len(templates_[i % len(templates_)].household_id))
                status = _get(port, key, view_secret)
                if status != 200:
                    raise RuntimeError(f"household {key!r} answered {status} after recovery")
        run = WorkerRun(
            households,
            "rocksdb" if rocksdb else "memory",
            ready_s,
            (done_at - restoring_at) if restoring_at and done_at else None,
            hwm,
        )
    finally:
        stop_child(process, 120)
    if rocksdb:
        run.disk_bytes = disk_bytes(home / "faust")
    return run


async def measure(stack, data: Dataset, codec: Codec, sizes: tuple[int, ...]) -> list[Figure]:
    t = templates(data, codec)
    figures = sizing(t) + codec_figures(t, data, codec)
    partitions = stack.layout.household_partitions
    empty_id = f"bench-state-{uuid.uuid4().hex[:8]}"
    await create_changelogs(stack.bootstrap, empty_id, partitions)
    await _commit_inputs_at_end(stack.bootstrap, empty_id)
    view = {"database_url": stack.database_url}
    view["view_secret"] = await issue_view_token(stack.database_url, "bench-state")
    empty = await asyncio.to_thread(
        run_worker, stack.bootstrap, stack.root, empty_id, 0, t, rocksdb=False, **view
    )
    runs: list[tuple[WorkerRun, float, int]] = []
    for n in sizes:
        app_id = f"bench-state-{uuid.uuid4().hex[:8]}"
        await create_changelogs(stack.bootstrap, app_id, partitions)
        produced = await fill_changelogs(stack.bootstrap, app_id, t, n)
        started = time.perf_counter()
        read = await raw_read(stack.bootstrap, list(changelog_topics(app_id)))
        raw_s = time.perf_counter() - started
        if read != produced:
            raise RuntimeError(f"raw read {read} changelog records, produced {produced}")
        await _commit_inputs_at_end(stack.bootstrap, app_id)
        for rocksdb in (False, True):
            run = await asyncio.to_thread(
                run_worker, stack.bootstrap, stack.root, app_id, n, t, rocksdb=rocksdb, **view
            )
            runs.append((run, raw_s, read))
    return figures + worker_figures(empty, runs)


def sizing(t: list[Template]) -> list[Figure]:
    rows = [len(x.row) for x in t]
    summaries = [len(x.summary) for x in t]
    inputs = [x.input_bytes for x in t]
    mean = sum(rows) / len(rows)
    input_mean = sum(inputs) / len(inputs)
    summary_mean = sum(summaries) / len(summaries)
    note = (
        f"{len(t)} county households after all their events; the summary table adds "
        f"{summary_mean:,.0f} B mean ({_percentile(summaries, 0.99)} B p99)"
    )
    return [
        Figure(
            "B7",
            "monitoring table row, serialized, mean",
            mean,
            "bytes/household",
            "the household's Avro input frames",
            input_mean,
            count=len(t),
            note=note,
        ),
        Figure(
            "B7",
            "monitoring table row, serialized, p99",
            _percentile(rows, 0.99),
            "bytes/household",
            "the household's Avro input frames (p99)",
            _percentile(inputs, 0.99),
            count=len(t),
        ),
    ]


def _median_seconds(work, passes: int = 3) -> float:
    """Median CPU seconds (`time.process_time`) of `passes` runs of `work()`."""
    times = []
    for _ in range(passes):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return sorted(times)[len(times) // 2]


def codec_figures(t: list[Template], data: Dataset, codec: Codec) -> list[Figure]:
    """The row codec's CPU time per county row (`dump_row` with every event encoded, as for a
    row first written; `load_row`, as on a cache miss after recovery), against the contract's
    decode of the same households' input frames."""
    rows = [load_row(x.row) for x in t]
    frames = [r.value for r in data.records(set(EXPECTED))]
    baseline = _median_seconds(lambda: [codec.decode(f) for f in frames]) / len(t) * 1e6
    encode = _median_seconds(lambda: [dump_row(r) for r in rows]) / len(t) * 1e6
    decode = _median_seconds(lambda: [load_row(x.row) for x in t]) / len(t) * 1e6
    cache = RowCache()
    for row in rows:
        cache.dump(row.state.household_id.encode(), row)
    cached = (
        _median_seconds(lambda: [cache.dump(r.state.household_id.encode(), r) for r in rows])
        / len(t)
        * 1e6
    )
    base = "Codec.decode of the household's Avro input frames"
    note = f"{len(t)} county rows, median of 3 passes, CPU time"
    return [
        Figure(
            "B7",
            "monitoring table row encode (dump_row)",
            encode,
            "µs/row",
            base,
            baseline,
            count=len(t),
            note=f"{note}; with each event's bytes cached (RowCache, as the "
            f"worker rewrites a row) {cached:.1f} µs/row",
        ),
        Figure(
            "B7",
            "monitoring table row decode (load_row)",
            decode,
            "µs/row",
            base,
            baseline,
            count=len(t),
            note=note,
        ),
    ]


def worker_figures(empty: WorkerRun, runs: list[tuple[WorkerRun, float, int]]) -> list[Figure]:
    figures = []
    for run, _, _ in runs:
        n = run.households
        grown = max(0, run.hwm_kib - empty.hwm_kib) * 1024 / n
        figures.append(
            Figure(
                "B7",
                f"worker peak RSS (VmHWM), {n:,} households, {run.store} store",
                run.hwm_kib / 1024,
                "MiB",
                "the same worker with empty tables",
                empty.hwm_kib / 1024,
                count=n,
                note=f"{grown:,.0f} B/household above the empty worker",
            )
        )
    for run, raw_s, read in runs:
        n = run.households
        restore = f"{run.restore_s:.1f} s" if run.restore_s is not None else "-"
        figures.append(
            Figure(
                "B7",
                f"recovery from changelog, {n:,} households, {run.store} store",
                n / run.ready_s,
                "households/s",
                "raw aiokafka read of the same changelogs",
                n / raw_s,
                TARGET if n >= TARGET_HOUSEHOLDS else None,
                n / run.ready_s >= TARGET_RATE if n >= TARGET_HOUSEHOLDS else None,
                n,
                run.ready_s,
                f"process start → ready {run.ready_s:.1f} s (changelog reading {restore}; "
                f"empty worker start → ready {empty.ready_s:.1f} s); raw read of {read:,} "
                f"records {raw_s:.1f} s",
            )
        )
    memory = sorted((r for r, _, _ in runs if r.store == "memory"), key=lambda r: r.households)
    if memory and memory[-1].households < TARGET_HOUSEHOLDS:
        figures.append(extrapolated(empty, memory))
    for run, _, _ in runs:
        if run.disk_bytes is not None:
            figures.append(
                Figure(
                    "B7",
                    f"RocksDB on disk after recovery, {run.households:,} households",
                    run.disk_bytes / run.households,
                    "bytes/household",
                    count=run.households,
                    note=f"{run.disk_bytes / 2**20:,.1f} MiB for both tables, after a clean stop",
                )
            )
    return figures


def extrapolated(empty: WorkerRun, memory: list[WorkerRun]) -> Figure:
    """1M households' recovery, linear through the two largest memory runs (or the largest and
    the empty worker): a labelled estimate, never a measurement."""
    low = memory[-2] if len(memory) > 1 else empty
    high = memory[-1]
    per = (high.ready_s - low.ready_s) / (high.households - low.households)
    estimate = high.ready_s + per * (TARGET_HOUSEHOLDS - high.households)
    verdict = "within" if estimate <= TARGET_SECONDS else "over"
    return Figure(
        "B7",
        "recovery of 1M households, memory store: EXTRAPOLATED, not measured",
        estimate,
        "s",
        target=f"<= {TARGET_SECONDS:.0f} s",
        note=(
            f"linear through the {low.households:,}-household ({low.ready_s:.1f} s) and "
            f"{high.households:,}-household ({high.ready_s:.1f} s) runs; {verdict} the target "
            "if recovery stays linear"
        ),
    )
