"""The one command line: `shouwang <command>`; each service adds its commands here."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from services.audit import actions as audit_actions
from services.audit import commands as audit_commands
from services.contract.errors import ContractError
from services.contract.topics import CATALOGUE
from services.monitoring import commands as monitoring_commands
from services.personal import commands as personal_commands
from services.platform.config import Settings, SettingsError, kafka_bootstrap
from services.platform.kafka.security import KafkaSecurity
from services.platform.postgres import commands as postgres_commands
from services.readmodel import commands as readmodel_commands
from services.support import catalogue_commands
from services.support import commands as support_commands
from services.tools.demo import commands as demo_commands
from services.tools.faults import commands as faults_commands
from services.tools.simulation import command as simulation_command
from services.visits import commands as visits_commands

# Errors main() reports as a refusal (exit 2) whose modules import asyncpg or aiokafka: named
# here, not imported, so that building the parser loads neither (see reported_errors).
_LATE_ERRORS = (
    ("services.platform.postgres.migrate", "MigrationError"),
    ("services.platform.kafka.clients", "KafkaAccessRefused"),
    ("services.audit.archive", "ArchiveError"),  # --archive naming a directory that is not one
)


# The handlers below import what they run when they run, not with the parser: the schema
# registry needs fastavro, topic creation aiokafka, the local stack's process management takes
# longer to import than the parser to build; each command module's run_* does the same for its
# own work (tests/unit/test_cli.py).


def _cmd_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from services.contract.schemas import SchemaRegistry  # lazy: see above

    registry = SchemaRegistry.from_directory()
    for fingerprint, version in sorted(registry.by_fingerprint.items(), key=lambda i: i[1].name):
        current = registry.current[version.name] is version
        print(
            f"{fingerprint.hex()}  {version.name}  {'current' if current else 'history'}  "
            f"{version.source}"
        )
    return 0


def _cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "list":
        for topic in CATALOGUE:
            print(
                f"{topic.name:22} {settings.layout.partitions(topic):3}p  key={topic.key:13} "
                f"{topic.event_type}"
            )
        return 0
    from services.platform.kafka.admin import ensure_topics  # lazy: see above

    bootstrap = kafka_bootstrap(settings)
    created = asyncio.run(ensure_topics(bootstrap, settings.layout))
    print(f"created {len(created)} topic(s): {', '.join(created) or 'none needed'}")
    return 0


def _cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from services.platform.localstack import stack as local_stack  # lazy: see above

    if args.action == "up":
        info = local_stack.up(settings.home)
        print(json.dumps(info, indent=2))
    elif args.action == "down":
        local_stack.down(settings.home)
    else:
        print(json.dumps(local_stack.status(settings.home), indent=2))
    return 0


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
    projector.set_defaults(run=readmodel_commands.run_projector)
    postgres_commands.add_db_commands(commands)

    support = commands.add_parser("support", help="run a support (matching) worker")
    support.set_defaults(run=support_commands.run_support)
    support_api = commands.add_parser("support-api", help="run the operator API (read model)")
    support_api.set_defaults(run=readmodel_commands.run_support_api)

    monitoring = commands.add_parser("monitoring", help="run a monitoring (risk) worker")
    monitoring.set_defaults(run=monitoring_commands.run_monitoring)

    simulation_command.add_simulate_command(commands)
    visits_commands.add_commands(commands)
    demo_commands.add_commands(commands)
    audit_commands.add_commands(commands)
    faults_commands.add_commands(commands)
    catalogue_commands.add_commands(commands)
    audit_actions.add_commands(commands)
    personal_commands.add_commands(commands)
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
