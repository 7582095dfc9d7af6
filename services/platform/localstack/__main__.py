"""`python -m services.platform.localstack up|down|status`: the local stack from a shell."""

import argparse
import json
import sys
from pathlib import Path

from services.platform.localstack import stack
from services.platform.localstack.errors import LocalStackError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.platform.localstack",
        description="Run Kafka (KRaft) and PostgreSQL locally without Docker. Data, logs and "
        "state live in <home>/stack; delete that directory for a clean slate.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--home", type=Path, default=None, help="default: $SHOUWANG_HOME, else ./.shouwang"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            urls = stack.up(args.home)
            print(f"KAFKA_BOOTSTRAP_SERVERS={urls['bootstrap']}")
            print(f"DATABASE_URL={urls['database_url']}")
            print(f"# also in {stack.stack_dir(args.home) / stack.ENV_FILE}", file=sys.stderr)
        elif args.command == "down":
            stack.down(args.home)
        else:
            report = stack.status(args.home)
            print(json.dumps(report, indent=2))
            # Like `systemctl status`: 3 when not everything is running.
            return 0 if all(server["running"] for server in report.values()) else 3
    except LocalStackError as exc:
        # As `shouwang stack`: 3, a server that could not be started, stopped or reached.
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
