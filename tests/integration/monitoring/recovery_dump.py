"""A monitoring worker that recovers its tables from their changelogs, writes every key and
value of both tables to a file, and exits: what a restarted worker holds, byte for byte.

    python tests/integration/monitoring/recovery_dump.py BOOTSTRAP APP_ID OUT memory|rocksdb \
        [--stock]

The app is `monitoring.app.build_app`'s, as `shouwang monitoring` builds it; `--stock` leaves
out `faust_recovery` (faust's own recovery, for comparison). OUT gets JSON: table name ->
{key hex: value hex}, plus the recovery's tracked offsets.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))


def write(path: str, data: dict) -> None:
    Path(path).write_text(json.dumps(data))


def main() -> None:
    bootstrap, app_id, out, store, *flags = sys.argv[1:]
    import faust
    from prometheus_client import CollectorRegistry

    from services.contract.codec import Codec
    from services.contract.topics import TopicLayout
    from services.monitoring.adapters.policy_files import load_policies
    from services.monitoring.entrypoints import app as monitoring_app
    from services.monitoring.metrics import MonitoringMetrics
    from services.platform.kafka.faust import recovery as faust_recovery

    if "--stock" in flags:
        monitoring_app.faust_recovery = type("Stock", (), {"install": staticmethod(lambda a: a)})
    app = monitoring_app.build_app(
        app_id=app_id,
        bootstrap=bootstrap,
        codec=Codec.default(),
        policies=load_policies(),
        metrics=MonitoringMetrics(CollectorRegistry()),
        layout=TopicLayout(),
        store=f"{store}://",
        datadir=Path(tempfile.mkdtemp(prefix="recovery-dump-")),
        sweep_seconds=86400,
        event_clock=True,
    )
    batched = isinstance(app.tables.recovery, faust_recovery.BatchRecovery)
    assert batched != ("--stock" in flags)

    @app.timer(0.2)
    async def dump_when_recovered() -> None:
        recovery = app.tables.recovery
        if not recovery.completed.is_set() or app.in_recovery or app.rebalancing:
            return
        tables = {}
        for name, table in app.tables.items():
            tables[name] = {k.hex(): v.hex() for k, v in table.items()}
        offsets = {f"{tp.topic}:{tp.partition}": o for tp, o in recovery.active_offsets.items()}
        write(out, {"tables": tables, "offsets": offsets})
        os._exit(0)  # at once: nothing after recovery belongs in the dump

    faust.Worker(app, loglevel="INFO", override_logging=False).execute_from_commandline()


if __name__ == "__main__":
    main()
