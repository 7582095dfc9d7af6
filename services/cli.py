"""The one command line: `shouwang <command>`; each service adds its commands here."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import textwrap
from importlib import metadata

from services.audit import actions as audit_actions
from services.audit import commands as audit_commands
from services.console import commands as console_commands
from services.contract.errors import ContractError
from services.contract.topics import CATALOGUE
from services.monitoring import commands as monitoring_commands
from services.personal import commands as personal_commands
from services.platform import logs, unreachable
from services.platform.config import Settings, SettingsError, kafka_bootstrap
from services.platform.kafka.security import KafkaSecurity
from services.platform.localstack.errors import LocalStackError
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
        try:
            info = local_stack.up(settings.home)
        except LocalStackError as exc:  # no Java, a port taken, a server died
            print(f"shouwang stack up: {exc}", file=sys.stderr)
            return 3
        print(json.dumps(info, indent=2))
    elif args.action == "down":
        local_stack.down(settings.home)
    else:
        report = local_stack.status(settings.home)
        print(json.dumps(report, indent=2))
        # As `python -m services.platform.localstack status` (and `systemctl status`): 3 when
        # a server of the stack is not running.
        return 0 if all(server.get("running") for server in report.values()) else 3
    return 0


# Read by every command: main() checks them all before the command runs, so a wrong value stops
# any command with the variable's name. References, resolved when a --help is printed.
EVERY_COMMAND_READS = (
    "services.platform.logs:LogSettings.from_env",
    "services.platform.config:Settings.from_env",
    "services.platform.kafka.security:KafkaSecurity.from_env",
)
EXIT_CODES = """exit status:
  0    done
  1    a check found differences or problems (replay --verify, archive verify, bad rows),
       or what was asked for is not there
  2    usage or configuration error: nothing was done
  3    a server (Kafka, PostgreSQL, an API) is unreachable or refused us
  4    tokens revoke: revoked on operator.actions (in force everywhere) with PostgreSQL
       down; run it again once PostgreSQL is back to update the token table
  75   a worker stopped without committing, on an error it cannot retry past: restart it
  130  interrupted (Ctrl-C)"""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose help ends with the environment variables its command reads.

    The list is made when the help is printed, from the readers the command names (its
    `reads` default, and its parents'), see services/platform/environment.py.
    """

    reads: tuple[str, ...] = ()

    def format_help(self) -> str:
        from services.platform.environment import variables_read  # lazy: only for --help

        common = variables_read(EVERY_COMMAND_READS)
        own = [n for n in variables_read(self.reads) if n not in common]
        lines = ["environment variables read:"]
        if own:
            lines.append(_wrapped(own, "by this command"))
        lines.append(_wrapped(common, "by every command, checked at start"))
        extra = "\n".join(lines) + "\n\n" + EXIT_CODES
        return super().format_help().rstrip("\n") + "\n\n" + extra + "\n"


def _wrapped(names: list[str], about: str) -> str:
    text = ", ".join(names) + f" ({about})"
    return textwrap.fill(text, width=96, initial_indent="  ", subsequent_indent="    ")


def _global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    # On the top parser with real defaults, on every subcommand with SUPPRESS, so an option
    # given after the subcommand is honoured and one given before it is not reset.
    keep = {} if top else {"default": argparse.SUPPRESS}
    group = parser.add_argument_group("logging (before or after the command)")
    group.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging (--log-level DEBUG)", **keep
    )
    group.add_argument(
        "--log-level",
        metavar="LEVEL",
        help=f"as ${logs.LEVEL_ENV}: DEBUG, INFO, ... or e.g. INFO,aiokafka=INFO",
        **keep,
    )
    group.add_argument(
        "--log-format", choices=logs.FORMATS, help=f"as ${logs.FORMAT_ENV} (default text)", **keep
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            # A subcommand's own --help opens with the line its parent lists it with.
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                if sub.description is None and choice.help:
                    sub.description = choice.help
            return list(action.choices.items())
    return []


def commands_of(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every runnable command as (words, parser): `("tokens", "issue")`, `("replay",)`, ..."""
    found = []
    for name, sub in _subparsers(parser):
        inner = commands_of(sub, (*path, name))
        found.extend(inner or [((*path, name), sub)])
    return found


def _finish(parser: argparse.ArgumentParser, reads: tuple[str, ...] = ()) -> None:
    """Give each subcommand the global options and its readers (its own and its parents')."""
    for _name, sub in _subparsers(parser):
        own = tuple(sub.get_default("reads") or ())
        sub.reads = tuple(dict.fromkeys(reads + own))
        _global_options(sub, top=False)
        _finish(sub, sub.reads)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="shouwang",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    schemas = commands.add_parser("schemas", help="list contract schemas and fingerprints")
    schemas.set_defaults(run=_cmd_schemas, reads=("services.contract.schemas:SCHEMAS_DIR_ENV",))

    topics = commands.add_parser("topics", help="the topic catalogue: list, create")
    topic_actions = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    topic_actions.add_parser("list", help="each topic, its partitions, key and event type")
    topic_actions.add_parser("create", help="create the missing topics on the broker")
    topics.set_defaults(run=_cmd_topics)

    stack = commands.add_parser("stack", help="local Kafka + PostgreSQL without Docker")
    stack_actions = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    stack_actions.add_parser("up", help="start them under $SHOUWANG_HOME/stack; print the URLs")
    stack_actions.add_parser("down", help="stop them (the data stays)")
    stack_actions.add_parser("status", help="what runs, where; exit 3 when a server is down")
    stack.set_defaults(run=_cmd_stack, reads=("services.platform.localstack.jars:CACHE_DIR_ENV",))

    projector = commands.add_parser("projector", help="project topics into the read model")
    projector.set_defaults(run=readmodel_commands.run_projector)
    postgres_commands.add_db_commands(commands)

    support = commands.add_parser("support", help="run a support (matching) worker")
    support.set_defaults(run=support_commands.run_support)
    support_api = commands.add_parser("support-api", help="run the operator API (read model)")
    support_api.set_defaults(run=readmodel_commands.run_support_api)
    console_commands.add_commands(commands)

    monitoring = commands.add_parser("monitoring", help="run a monitoring (risk) worker")
    monitoring.set_defaults(run=monitoring_commands.run_monitoring, reads=monitoring_commands.READS)

    simulation_command.add_simulate_command(commands)
    visits_commands.add_commands(commands)
    demo_commands.add_commands(commands)
    audit_commands.add_commands(commands)
    faults_commands.add_commands(commands)
    catalogue_commands.add_commands(commands)
    audit_actions.add_commands(commands)
    personal_commands.add_commands(commands)
    _finish(parser)
    return parser


def _version() -> str:
    try:
        return metadata.version("shouwang")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


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


def _log_settings(args: argparse.Namespace) -> logs.LogSettings:
    """The options, else the environment; -v is --log-level DEBUG."""
    env = logs.LogSettings.from_env()  # checked even when an option overrides it
    if args.log_level is None and not args.verbose and args.log_format is None:
        return env
    level = args.log_level or ("DEBUG" if args.verbose else None)
    return logs.LogSettings.parse(
        level if level is not None else os.environ.get(logs.LEVEL_ENV, ""),
        args.log_format or env.format,
        "--log-level" if level is not None else logs.LEVEL_ENV,
        "--log-format",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = None
    as_json = False
    try:
        chosen = _log_settings(args)
        logs.configure(chosen)
        as_json = chosen.format == "json"
        settings = Settings.from_env()
        # Checked before any command runs, so a wrong Kafka security variable stops start-up
        # with its name instead of surfacing later as a connection failure.
        KafkaSecurity.from_env()
        return args.run(args, settings)
    except reported_errors() as exc:
        _report(f"shouwang {_named(args)}: {exc}", as_json)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A server down or refusing is the operator's to fix, not a bug: one line naming the
        # server, where, and the variable that says so. Anything else is a bug: its traceback
        # (in a JSON record when the logs are JSON, so a collector keeps it whole).
        found = unreachable.recognise(exc, settings)
        if found is None:
            if not as_json:
                raise
            logging.getLogger("services.cli").exception("shouwang %s: a bug", _named(args))
            return 1
        _report(f"shouwang {_named(args)}: {found}", as_json)
        return 3


def _named(args: argparse.Namespace) -> str:
    """The command's words as typed: `tokens issue`, `replay`."""
    words = [args.command]
    words += [w for w in (getattr(args, "action", None), getattr(args, "what", None)) if w]
    return " ".join(str(w) for w in words)


def _report(line: str, as_json: bool) -> None:
    """The one line a refused or failed command ends with: a JSON record when logs are JSON."""
    if as_json:
        logging.getLogger("services.cli").error(line)
    else:
        print(line, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
