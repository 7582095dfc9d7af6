"""A `shouwang monitoring` worker wired exactly as the command wires it (`bootstrap.parts`,
`prepare_topics`, `worker_app`: the default wall-clock mode, its settings from the environment),
except that its clock reads the moment from a file: a test moves the worker's "now" across a
date (e.g. the 2021 policy switch) while the worker runs.

    python tests/integration/monitoring/clock_worker.py CLOCK_FILE
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import faust

    from services.monitoring.bootstrap import parts, prepare_topics, worker_app
    from services.platform.config import Settings

    clock_file = Path(sys.argv[1])

    def clock() -> datetime:
        return datetime.fromisoformat(clock_file.read_text(encoding="utf-8").strip())

    settings = Settings.from_env()
    wired = dataclasses.replace(parts(settings), clock=clock)
    asyncio.run(prepare_topics(wired.bootstrap, settings, wired.own.app_id))
    worker = faust.Worker(worker_app(wired), loglevel="INFO", override_logging=False)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
