"""Archive: export → verify → replay equals the log; tampering is found and located; an
interrupted export leaves the archive as it was."""

from __future__ import annotations

import argparse
import io
import re
from dataclasses import replace
from pathlib import Path

import fastavro
import pytest

from services.audit import archive
from services.audit.commands import run_replay_async
from services.audit.replay import Replay
from services.audit.replay_run import Part
from services.monitoring.adapters.policy_files import load_policies
from services.platform.config import Settings
from services.platform.kafka.log import NotCoPartitioned
from tests.records import at, visit
from tests.seed_households import monitored_then_eliminated, wu_chickens, zhou_uremia
from tests.unit.audit.emitter import CODEC, as_log, emitted

POLICIES = load_policies()


async def batches(records, size=7):
    for i in range(0, len(records), size):
        yield records[i : i + size]


def scenario_log():
    records = zhou_uremia("ar-zhou") + wu_chickens("ar-wu") + monitored_then_eliminated("ar-elim")
    records += [
        visit("ar-elim", at(day), visit_id=day, income=7900)
        for day in ("2020-09-20", "2020-10-20", "2020-11-10")
    ]
    records.sort(key=lambda r: r[1]["recorded_at"])
    return as_log(records)


async def exported(tmp_path: Path):
    log = scenario_log()
    everything = log + emitted(log, POLICIES)
    await archive.export(tmp_path, batches(everything))
    return everything


def summary(records):
    replay = Replay(CODEC, POLICIES)
    for r in records:
        replay.feed(r)
    derived, differences = replay.verify_emitted()
    return [(d.event_id, d.assessment.digest()) for d in derived], differences


async def test_round_trip_verify_and_replay_equal(tmp_path):
    everything = await exported(tmp_path)
    findings, checked = archive.verify(tmp_path)
    assert findings == [] and checked == len(everything)
    back = list(archive.records(tmp_path))
    key = lambda r: (r.topic, r.partition, r.offset)  # noqa: E731
    assert sorted(back, key=key) == sorted(everything, key=key)
    assert summary(back) == summary(everything)
    assert summary(back)[1] == []


async def test_resume_offsets_and_an_overlapping_range_is_reported(tmp_path):
    everything = await exported(tmp_path)
    new = await archive.export(tmp_path, batches(everything))  # as if read from offset 0 again
    # A real export starts at resume_offsets; these ranges overlap and verify says so.
    assert archive.verify(tmp_path)[0]
    assert new
    starts = archive.resume_offsets(archive.read_manifest(tmp_path))
    assert all(offset > 0 for offset in starts.values())


def rewrite(tmp_path: Path, topic: str, change) -> tuple[str, list[dict]]:
    entry = next(f for f in archive.read_manifest(tmp_path) if f.topic == topic and f.count >= 3)
    path = tmp_path / entry.file
    with open(path, "rb") as handle:
        reader = fastavro.reader(handle)
        schema, rows = reader.writer_schema, list(reader)
    rows = change(rows)
    with open(path, "wb") as handle:
        fastavro.writer(handle, schema, rows, codec="deflate")
    return entry.file, rows


@pytest.mark.parametrize("how", ["alter", "remove", "reorder"])
async def test_tampering_is_found_and_located(tmp_path, how):
    await exported(tmp_path)
    target: dict = {}

    def change(rows):
        target["offset"] = rows[1]["offset"]
        if how == "alter":
            value = rows[1]["value"]
            rows[1] = {**rows[1], "value": value[:-1] + bytes([value[-1] ^ 1])}
        elif how == "remove":
            target["offset"] = rows[2]["offset"]
            del rows[1]
        else:  # the first record out of place is the one moved forward
            target["offset"] = rows[2]["offset"]
            rows[1], rows[2] = rows[2], rows[1]
        return rows

    file, _ = rewrite(tmp_path, "household.visits", change)
    findings, _ = archive.verify(tmp_path)
    located = [f for f in findings if f.file == file and f.offset is not None]
    assert located, findings
    assert located[0].offset == target["offset"]
    assert {"alter": "altered", "remove": "removed", "reorder": "moved"}[how] in located[0].problem
    assert any("sha256" in f.problem for f in findings)
    # Replay from the tampered archive: the emitted assessments no longer chain.
    _, differences = summary(list(archive.records(tmp_path)))
    assert any(d.field == "chain_hash" for d in differences)


async def test_an_interrupted_export_leaves_the_archive_as_it_was(tmp_path):
    log = as_log([])
    everything = await exported(tmp_path)
    before = (tmp_path / archive.MANIFEST).read_bytes()

    async def interrupted():
        yield [replace(r, offset=r.offset + 1000) for r in everything[:5]]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await archive.export(tmp_path, interrupted())
    assert (tmp_path / archive.MANIFEST).read_bytes() == before
    assert not list(tmp_path.glob("*.partial"))
    assert archive.verify(tmp_path)[0] == [] and log == []


def replay_options(directory: Path, processes: int) -> argparse.Namespace:
    return argparse.Namespace(start=None, to=None, township=None, household_prefix=None,
                              archive=str(directory), verify=True, no_readmodel=True, policy=None,
                              processes=processes)  # fmt: skip


def answer(output: str) -> list[str]:
    """The replay's answer without its rate, which differs run to run."""
    return [re.sub(r"\(\d[\d,]* events/s\)", "", line) for line in output.splitlines()]


async def test_a_replay_in_shares_gives_the_whole_log_s_answer(tmp_path):
    """`replay --processes N`: N spawned processes, each a share of the partitions; the same
    answer as one process, on every line, and re-derives every emitted assessment."""
    everything = await exported(tmp_path)
    settings = Settings.from_env({})
    answers = []
    for processes in (1, 3, 20):  # 20: more processes than the 12 partitions
        out, err = io.StringIO(), io.StringIO()
        code = await run_replay_async(replay_options(tmp_path, processes), settings, out, err)
        assert code == 0, err.getvalue()
        answers.append(answer(out.getvalue()))
    assert answers[0] == answers[1] == answers[2]
    emitted_count = sum(r.topic == "household.risk" for r in everything)
    assert f"verify: {emitted_count} emitted assessments re-derived from the log" in answers[0]


def test_a_household_in_two_shares_stops_the_replay_instead_of_half_answering():
    one, other = Part(records=3, households={"h1", "h2"}), Part(records=2, households={"h2"})
    with pytest.raises(NotCoPartitioned, match="household h2 .* not co-partitioned"):
        one.add(other)
