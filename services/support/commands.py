"""Entrypoint for `shouwang support`: start the faust worker that `bootstrap` builds."""

from __future__ import annotations

import logging

from services.platform.config import Settings

log = logging.getLogger(__name__)
APP_ID = "shouwang-support"


def run_support(settings: Settings, app_id: str = APP_ID) -> int:
    # faust and the app are imported by the command that runs them, not by the CLI's parser.
    import faust

    from services.support.bootstrap import support_worker

    built = support_worker(settings, app_id)
    log.info(
        "support worker %s: catalogue %s, %d measures",
        app_id,
        built.catalogue.id,
        len(built.catalogue.measures),
    )
    worker = faust.Worker(built.app, loglevel="INFO", override_logging=False)
    worker.execute_from_commandline()
    return 0
