"""What `shouwang support` runs: the faust worker that `bootstrap` builds, started."""

from __future__ import annotations

import logging

from services.platform.config import Settings
from services.platform.kafka.faust.running import run_worker as run_faust_worker
from services.support.bootstrap import support_worker

# The logger keeps the name it had when this lived in commands.py: a worker's log lines read as
# before.
log = logging.getLogger("services.support.commands")


def run_worker(settings: Settings, app_id: str) -> int:
    """Build the worker for `app_id` and run it until it is stopped."""
    built = support_worker(settings, app_id)
    log.info(
        "support worker %s: catalogue %s, %d measures",
        app_id,
        built.catalogue.id,
        len(built.catalogue.measures),
    )
    run_faust_worker(built.app)
    return 0
