"""What `shouwang catalogue activate` runs, and what a support worker does at start: record on
operator.actions that a catalogue's content is in use, unless the log says so already."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path

from services.contract.catalogue import Catalogue, CatalogueError
from services.contract.catalogue_changes import parse_content
from services.contract.codec import Codec
from services.platform.actions.events import (
    OperatorActionError,
    check_actor,
    check_reason,
    default_actor,
    describe,
)
from services.platform.actions.log import (
    Activation,
    activate_catalogue,
    operator_sink,
    prepare_topic,
)
from services.platform.clock import wall_clock
from services.platform.config import Settings, SettingsError, kafka_bootstrap
from services.platform.kafka.producer import BrokerUnavailable
from services.platform.unreachable import recognise

log = logging.getLogger(__name__)
KAFKA_WAIT_SECONDS = 30.0


def activate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        actor = check_actor(default_actor(getpass.getuser()) if args.actor is None else args.actor)
        reason = check_reason(args.reason)
    except OperatorActionError as exc:
        raise SettingsError(str(exc)) from exc
    try:
        content = args.file.read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read {args.file}: {exc.strerror}") from exc
    bootstrap = kafka_bootstrap(settings)
    try:
        catalogue = parse_content(content, str(args.file))
        activation = asyncio.run(
            record_activation(
                catalogue, content, args.file, actor, "OPERATOR", reason, bootstrap, settings
            )
        )
    except CatalogueError as exc:
        for where, problem in exc.problems:
            print(f"{exc.source}: {where}: {problem}", file=sys.stderr)
        print("shouwang catalogue activate: nothing recorded", file=sys.stderr)
        return 1
    except BrokerUnavailable as exc:
        found = recognise(exc, settings) or exc
        print(f"shouwang catalogue activate: nothing recorded: {found}", file=sys.stderr)
        return 3
    print(_summary(activation))
    return 0


async def record_activation(
    catalogue: Catalogue,
    content: bytes,
    path: Path,
    actor: str,
    source: str,
    reason: str,
    bootstrap: str,
    settings: Settings,
) -> Activation:
    """Record the activation of `catalogue`, parsed from `content`, if the log lacks it
    (see log.py)."""
    sink = operator_sink(bootstrap, KAFKA_WAIT_SECONDS)
    try:
        await prepare_topic(bootstrap, settings.layout, KAFKA_WAIT_SECONDS)
        return await activate_catalogue(
            catalogue,
            content,
            path,
            actor,
            source,
            reason,
            bootstrap,
            Codec.default(),
            sink,
            wall_clock(),
        )
    finally:
        await sink.close()


def activate_at_start(
    settings: Settings, bootstrap: str, app_id: str, catalogue: Catalogue, content: bytes
) -> Activation:
    """What a support worker does before matching with its catalogue: make sure the log says
    this content is in use. An operator who ran `catalogue activate` first is the actor;
    otherwise the worker records it as itself (source SERVICE).

    `catalogue` and `content` are the worker's own, read once from settings.catalogue_path
    (catalogue_changes.load_with_content): read again here, the file could have changed in
    between, and the log would name content the worker does not use."""
    activation = asyncio.run(
        record_activation(
            catalogue,
            content,
            settings.catalogue_path,
            f"service:{app_id}",
            "SERVICE",
            "in use by a support worker; no activation of this content was in the log",
            bootstrap,
            settings,
        )
    )
    log.info("catalogue activation: %s", _summary(activation))
    return activation


def _summary(activation: Activation) -> str:
    sha = activation.content_sha256[:12]
    if activation.recorded is None:
        by = activation.previous["actor"] if activation.previous else "?"
        version = activation.previous["catalogue"]["version"] if activation.previous else "?"
        return (
            f"catalogue {activation.catalogue_id} sha256={sha} is already active "
            f"(version {version}, by {by}); nothing recorded"
        )
    return "recorded " + describe(activation.recorded)
