"""What `shouwang archive export|verify` runs: append the log to an archive, or check one.

`export` writes `.partial` files and replaces the manifest last, so Ctrl-C leaves nothing
half-done.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from services.audit import archive
from services.audit.explain import moment
from services.audit.progress import Progress
from services.contract.topics import CATALOGUE
from services.platform.config import Settings, kafka_bootstrap
from services.platform.kafka.log import KafkaLog, Range


async def export_or_verify(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO
) -> int:
    """`archive verify DIR` (exit 1 on problems) or `archive export DIR`."""
    directory = Path(args.dir)
    if args.action == "verify":
        findings, checked = archive.verify(directory)
        for f in findings:
            print(f.line(), file=out)
        print(f"archive verify: {checked} records checked, {len(findings)} problem(s)", file=out)
        return 1 if findings else 0
    topics = args.topics or [t.name for t in CATALOGUE]
    existing = archive.read_manifest(directory)
    log = KafkaLog(
        kafka_bootstrap(settings),
        topics,
        Range(
            start_offsets=archive.resume_offsets(existing), end=moment(args.to) if args.to else None
        ),
    )
    progress = Progress(err, "archive")

    async def counted():
        count = 0
        async for batch in log.batches():
            progress.total = log.total
            count += len(batch)
            progress(count)
            yield batch

    new = await archive.export(directory, counted())
    progress.done()
    print(
        f"archive export: {len(new)} file(s), {sum(f.count for f in new)} records "
        f"written to {directory}",
        file=out,
    )
    return 0
