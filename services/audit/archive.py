"""Archive: topics → Avro object-container files (fastavro), a manifest, and checks of both.

One file per topic-partition and exported range, named `<topic>-<partition>-<first>-<last>.avro`,
holding each record's original offset, timestamp, key, value and headers, plus two fields that
make tampering visible: `previous_offset` (the offset of the record archived before it in that
partition) and `link`, a running sha256 over the partition's records that continues from one
range file to the next. `manifest.json` lists every file with its record count, offsets, final
link and the file's sha256. A later export continues each partition after its last archived
offset. Files are written under a `.partial` name and the manifest is replaced atomically only
once every file of the export is complete, so an interrupted export leaves the archive as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fastavro

from services.audit.chain import record_link
from services.platform.clock import wall_clock
from services.platform.kafka.log import LogRecord, Share

MANIFEST = "manifest.json"
FORMAT = 1
SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "ArchivedRecord",
        "namespace": "shouwang.audit",
        "doc": "One Kafka record as it was in the log, with its tamper-evidence link.",
        "fields": [
            {"name": "offset", "type": "long"},
            {"name": "previous_offset", "type": "long", "doc": "-1 for a partition's first"},
            {"name": "timestamp", "type": "long", "doc": "ms since the epoch"},
            {"name": "timestamp_type", "type": "int"},
            {"name": "key", "type": ["null", "bytes"]},
            {"name": "value", "type": ["null", "bytes"]},
            {
                "name": "headers",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Header",
                        "fields": [
                            {"name": "key", "type": "string"},
                            {"name": "value", "type": ["null", "bytes"]},
                        ],
                    },
                },
            },
            {"name": "link", "type": "string"},
        ],
    }
)


class ArchiveError(RuntimeError):
    """An archive that cannot be read or written."""


@dataclass(frozen=True)
class FileEntry:
    file: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    count: int
    head: str  # link of the last record
    sha256: str
    first_timestamp: int
    last_timestamp: int


@dataclass(frozen=True)
class Finding:
    """One problem `verify` found, located as precisely as the archive allows."""

    file: str
    offset: int | None
    problem: str

    def line(self) -> str:
        at = f" offset {self.offset}" if self.offset is not None else ""
        return f"{self.file}{at}: {self.problem}"


def read_manifest(directory: Path) -> list[FileEntry]:
    path = directory / MANIFEST
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ArchiveError(f"{path}: not JSON: {exc}") from exc
    if data.get("format") != FORMAT:
        raise ArchiveError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
    return [FileEntry(**f) for f in data["files"]]


def _write_manifest(directory: Path, files: list[FileEntry]) -> None:
    path = directory / MANIFEST
    partial = directory / (MANIFEST + ".partial")
    document = {
        "format": FORMAT,
        "written_at": wall_clock().isoformat(),
        "record_schema": json.loads(json.dumps(SCHEMA, default=str)),
        "files": [asdict(f) for f in files],
    }
    partial.write_text(json.dumps(document, indent=1, ensure_ascii=False))
    os.replace(partial, path)


def resume_offsets(files: list[FileEntry]) -> dict[tuple[str, int], int]:
    """Where the next export starts: after each partition's last archived offset."""
    start: dict[tuple[str, int], int] = {}
    for f in files:
        start[(f.topic, f.partition)] = max(start.get((f.topic, f.partition), 0), f.last_offset + 1)
    return start


def _heads(files: list[FileEntry]) -> dict[tuple[str, int], tuple[int, str]]:
    heads: dict[tuple[str, int], tuple[int, str]] = {}
    for f in files:
        tp = (f.topic, f.partition)
        if tp not in heads or f.last_offset > heads[tp][0]:
            heads[tp] = (f.last_offset, f.head)
    return heads


class _OpenFile:
    def __init__(self, directory: Path, topic: str, partition: int, previous: tuple[int, str]):
        self.topic, self.partition = topic, partition
        self.path = directory / f"{topic}-{partition}.avro.partial"
        self.handle = open(self.path, "wb")
        self.writer = fastavro.write.Writer(
            self.handle,
            SCHEMA,
            codec="deflate",
            metadata={"shouwang.topic": topic, "shouwang.partition": str(partition)},
        )
        self.previous_offset, self.head = previous
        self.first: LogRecord | None = None
        self.last: LogRecord | None = None
        self.count = 0

    def write(self, r: LogRecord) -> None:
        link = record_link(self.head, r.offset, r.timestamp, r.key, r.value)
        self.writer.write(
            {
                "offset": r.offset,
                "previous_offset": self.previous_offset,
                "timestamp": r.timestamp,
                "timestamp_type": r.timestamp_type,
                "key": r.key,
                "value": r.value,
                "headers": [{"key": k, "value": v} for k, v in r.headers],
                "link": link,
            }
        )
        self.head, self.previous_offset = link, r.offset
        self.first = self.first or r
        self.last = r
        self.count += 1

    def finish(self, directory: Path) -> FileEntry:
        self.writer.flush()
        self.handle.close()
        assert self.first is not None and self.last is not None
        name = (
            f"{self.topic}-{self.partition}-{self.first.offset:012d}-{self.last.offset:012d}.avro"
        )
        final = directory / name
        os.replace(self.path, final)
        return FileEntry(
            name,
            self.topic,
            self.partition,
            self.first.offset,
            self.last.offset,
            self.count,
            self.head,
            _sha256(final),
            self.first.timestamp,
            self.last.timestamp,
        )

    def abandon(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


async def export(directory: Path, batches: AsyncIterator[list[LogRecord]]) -> list[FileEntry]:
    """Append the records of `batches` (read from `resume_offsets(read_manifest(directory))`)
    to the archive; returns the new files. All or nothing: on any error or interrupt the
    partial files are removed and the manifest is untouched."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before reading)
    existing = read_manifest(directory)
    heads = _heads(existing)
    open_files: dict[tuple[str, int], _OpenFile] = {}
    try:
        async for batch in batches:
            for r in batch:
                tp = (r.topic, r.partition)
                f = open_files.get(tp)
                if f is None:
                    f = open_files[tp] = _OpenFile(
                        directory, r.topic, r.partition, heads.get(tp, (-1, ""))
                    )
                f.write(r)
        new = [f.finish(directory) for _, f in sorted(open_files.items())]
    except BaseException:
        for f in open_files.values():
            f.abandon()
        raise
    if new:
        _write_manifest(directory, existing + new)
    return new


def records(
    directory: Path, topics: set[str] | None = None, share: Share | None = None
) -> Iterator[LogRecord]:
    """Every archived record, per partition in archive order (the order the files hold); with
    `share`, only the records of its partitions."""
    files = read_manifest(directory)
    if not files:
        raise ArchiveError(f"{directory}: no {MANIFEST}, not an archive")
    # An archive does not say how many partitions its topics had (a partition with no records
    # has no file), so a split's co-partitioning is checked by its reader: no household in two.
    files = [
        f
        for f in files
        if (topics is None or f.topic in topics) and (share is None or share.holds(f.partition))
    ]
    for f in sorted(files, key=lambda f: (f.topic, f.partition, f.first_offset)):
        with open(directory / f.file, "rb") as handle:
            for r in fastavro.reader(handle):
                yield LogRecord(
                    f.topic,
                    f.partition,
                    r["offset"],
                    r["timestamp"],
                    r["key"],
                    r["value"],
                    r["timestamp_type"],
                    tuple((h["key"], h["value"]) for h in r["headers"]),
                )


async def batches_of(
    directory: Path, topics: set[str] | None = None, size: int = 5000, share: Share | None = None
):
    batch: list[LogRecord] = []
    for r in records(directory, topics, share):
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def verify(directory: Path) -> tuple[list[Finding], int]:
    """Check every file against the manifest and every record against its link; returns the
    findings (empty when the archive is intact) and the number of records checked."""
    findings: list[Finding] = []
    files = read_manifest(directory)
    if not files:
        return [Finding(MANIFEST, None, "missing or empty: not an archive")], 0
    listed = {f.file for f in files}
    for path in sorted(directory.glob("*.avro")):
        if path.name not in listed:
            findings.append(Finding(path.name, None, "file not listed in the manifest"))
    checked = 0
    previous: dict[tuple[str, int], tuple[int, str]] = {}
    for f in sorted(files, key=lambda f: (f.topic, f.partition, f.first_offset)):
        path = directory / f.file
        if not path.exists():
            findings.append(Finding(f.file, None, "listed in the manifest but missing"))
            continue
        if _sha256(path) != f.sha256:
            findings.append(Finding(f.file, None, "sha256 differs from the manifest: file changed"))
        last_offset, head = previous.get((f.topic, f.partition), (-1, ""))
        if last_offset >= f.first_offset:
            findings.append(
                Finding(
                    f.file, f.first_offset, f"range overlaps the previous one (ends {last_offset})"
                )
            )
        count = 0
        try:
            with open(path, "rb") as handle:
                for r in fastavro.reader(handle):
                    count += 1
                    problem = _check(r, last_offset, head)
                    if problem:
                        findings.append(Finding(f.file, r["offset"], problem))
                    last_offset = max(last_offset, r["offset"])
                    head = r["link"]
        except Exception as exc:  # fastavro raises many types for a damaged container
            findings.append(Finding(f.file, None, f"unreadable: {type(exc).__name__}: {exc}"))
        checked += count
        if count != f.count:
            findings.append(Finding(f.file, None, f"{count} records, manifest says {f.count}"))
        if head != f.head:
            findings.append(Finding(f.file, None, "final link differs from the manifest"))
        previous[(f.topic, f.partition)] = (f.last_offset, f.head)
    return findings, checked


def _check(r: dict[str, Any], last_offset: int, head: str) -> str | None:
    if r["offset"] <= last_offset:
        return f"out of order: offset {r['offset']} after {last_offset} (reordered)"
    if r["previous_offset"] != last_offset:
        if r["previous_offset"] > last_offset:
            return (
                f"record(s) missing before this one (removed or moved): it was archived after "
                f"offset {r['previous_offset']}, the archive now has {last_offset} before it"
            )
        return f"reordered: archived after offset {r['previous_offset']}, now after {last_offset}"
    if record_link(head, r["offset"], r["timestamp"], r["key"], r["value"]) != r["link"]:
        return "altered: key, value, offset or timestamp differ from what was archived"
    return None
