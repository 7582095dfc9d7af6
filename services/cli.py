"""The one command line: `shouwang <command>`; each service adds its commands here."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from services.contract.errors import ContractError
from services.platform.config import Settings, SettingsError, kafka_bootstrap
from services.platform.kafka.security import KafkaSecurity

# Errors main() reports as a refusal (exit 2) whose modules import asyncpg or aiokafka: named
# here, not imported, so that building the parser loads neither (see reported_errors).
_LATE_ERRORS = (
    ("services.platform.postgres.migrate", "MigrationError"),
    ("services.platform.kafka.clients", "KafkaAccessRefused"),
    ("services.audit.archive", "ArchiveError"),  # --archive naming a directory that is not one
)


def _cmd_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from services.contract.schemas import SchemaRegistry

    registry = SchemaRegistry.from_directory()
    for fingerprint, version in sorted(registry.by_fingerprint.items(), key=lambda i: i[1].name):
        current = registry.current[version.name] is version
        print(
            f"{fingerprint.hex()}  {version.name}  {'current' if current else 'history'}  "
            f"{version.source}"
        )
    return 0


def _cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from services.contract.topics import CATALOGUE
    from services.platform.kafka.admin import ensure_topics

    if args.action == "list":
        for topic in CATALOGUE:
            print(
                f"{topic.name:22} {settings.layout.partitions(topic):3}p  key={topic.key:13} "
                f"{topic.event_type}"
            )
        return 0
    bootstrap = kafka_bootstrap(settings)
    created = asyncio.run(ensure_topics(bootstrap, settings.layout))
    print(f"created {len(created)} topic(s): {', '.join(created) or 'none needed'}")
    return 0


def _cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from services.platform.localstack import stack

    if args.action == "up":
        info = stack.up(settings.home)
        print(json.dumps(info, indent=2))
    elif args.action == "down":
        stack.down(settings.home)
    else:
        print(json.dumps(stack.status(settings.home), indent=2))
    return 0


def _readmodel():
    from services.readmodel import commands

    return commands


def _support():
    from services.support import commands

    return commands


def _monitoring():
    from services.monitoring import commands

    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shouwang", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    schemas = commands.add_parser("schemas", help="list contract schemas and fingerprints")
    schemas.set_defaults(run=_cmd_schemas)

    topics = commands.add_parser("topics", help="the topic catalogue")
    topics.add_argument("action", choices=["list", "create"])
    topics.set_defaults(run=_cmd_topics)

    stack = commands.add_parser("stack", help="local Kafka + PostgreSQL without Docker")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(run=_cmd_stack)

    projector = commands.add_parser("projector", help="project topics into the read model")
    projector.set_defaults(run=lambda args, settings: _readmodel().run_projector(settings))
    from services.platform.postgres.commands import add_db_commands

    add_db_commands(commands)

    support = commands.add_parser("support", help="run a support (matching) worker")
    support.set_defaults(
        run=lambda args, settings: _support().run_support(settings, settings.support_app_id)
    )
    support_api = commands.add_parser("support-api", help="run the operator API (read model)")
    support_api.set_defaults(run=lambda args, settings: _readmodel().run_support_api(settings))

    monitoring = commands.add_parser("monitoring", help="run a monitoring (risk) worker")
    monitoring.set_defaults(run=lambda args, settings: _monitoring().run_monitoring(settings))

    from services.tools.simulation.command import add_simulate_command

    add_simulate_command(commands)

    from services.visits.commands import add_commands as add_visits_commands

    add_visits_commands(commands)

    from services.tools.demo.commands import add_commands as add_demo_commands

    add_demo_commands(commands)

    from services.audit.commands import add_commands as add_audit_commands

    add_audit_commands(commands)

    from services.tools.faults.commands import add_commands as add_faults_commands

    add_faults_commands(commands)

    from services.support.catalogue_commands import (
        add_commands as add_operator_commands,
    )

    add_operator_commands(commands)
    from services.audit.actions import add_commands as add_actions_commands

    add_actions_commands(commands)
    from services.personal.commands import add_commands as add_personal_commands

    add_personal_commands(commands)
    return parser


def reported_errors() -> tuple[type[Exception], ...]:
    """The exceptions main() prints as one line and exit 2 rather than a traceback.

    An exception class whose module was never imported cannot have been raised, so the late
    ones are looked up among the loaded modules when an exception arrives.
    """
    found: list[type[Exception]] = [SettingsError, ContractError]
    for module, name in _LATE_ERRORS:
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env()
        # Checked before any command runs, so a wrong Kafka security variable stops start-up
        # with its name instead of surfacing later as a connection failure.
        KafkaSecurity.from_env()
        return args.run(args, settings)
    except reported_errors() as exc:
        print(f"shouwang {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
