"""Servers for the tests: the ones the environment names, else a local Kafka and PostgreSQL.

`KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` select existing servers. Without them the first
test that asks starts a LocalKafka or LocalPostgres on free ports under a temporary directory,
shared by the whole session and stopped at its end. A server that cannot start fails the tests
that need it with the reason; nothing is skipped.

Services refuse to start without a personal-data master key; the session makes one (in the
environment, so child processes get it too) unless the caller gave one.
"""

import base64
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from services.platform.localstack.kafka import LocalKafka
from services.platform.localstack.postgres import LocalPostgres
from services.platform.localstack.provision import Provisioned, provide_database, provide_kafka

# No test may fail for being slow: these machines are shared and noisy. Hypothesis would fail an
# example that took over 200 ms (its default deadline; a broker round trip under load does) and
# a strategy that drew slowly (the too_slow health check). Tests that set their own settings
# inherit deadline=None from this profile.
settings.register_profile("shouwang", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shouwang")


def _traversable_temp_dir(prefix: str, parent: Path | None = None) -> Path:
    # PostgreSQL runs as an unprivileged account when the tests run as root; it must be able to
    # enter this directory, which mkdtemp creates with mode 0700 (as pytest's tmp_path is).
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session", autouse=True)
def personal_master_key() -> Iterator[bytes]:
    """The session's personal-data master key (SHOUWANG_PERSONAL_MASTER_KEY)."""
    from services.platform.personal.keys import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, load_master_key

    if os.environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_FILE_ENV):
        yield load_master_key()
        return
    raw = os.urandom(32)
    os.environ[MASTER_KEY_ENV] = base64.b64encode(raw).decode("ascii")
    try:
        yield raw
    finally:
        os.environ.pop(MASTER_KEY_ENV, None)


@pytest.fixture(scope="session")
def stack_tmp_dir() -> Iterator[Path]:
    """A session directory for server data, under `$SHOUWANG_TEST_TMPDIR` when set.

    .ci/run sets that variable so that it can find, and stop, any server a crashed session
    leaves behind (by the pid files in this directory).
    """
    base = os.environ.get("SHOUWANG_TEST_TMPDIR")
    path = _traversable_temp_dir("shouwang-test-", Path(base) if base else None)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_service(stack_tmp_dir: Path) -> Iterator[Provisioned]:
    """The session's broker: `.url` to reach it, `.server` the LocalKafka if we started one."""
    with provide_kafka(stack_tmp_dir) as provisioned:
        yield provisioned


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_service: Provisioned) -> str:
    """Bootstrap servers of the session's broker, e.g. `127.0.0.1:40123`."""
    return kafka_service.url


@pytest.fixture(scope="session")
def postgres_service(stack_tmp_dir: Path) -> Iterator[Provisioned]:
    """The session's PostgreSQL: `.url`, and `.server` the LocalPostgres if we started one."""
    with provide_database(stack_tmp_dir) as provisioned:
        yield provisioned


@pytest.fixture(scope="session")
def database_url(postgres_service: Provisioned) -> str:
    """URL of the session's database, e.g. `postgresql://postgres@127.0.0.1:40124/shouwang`."""
    return postgres_service.url


@pytest.fixture
def local_kafka_factory(stack_tmp_dir: Path) -> Iterator[Callable[..., LocalKafka]]:
    """Make private, not yet started brokers (for tests that kill or stop one); all are
    stopped at the end of the test. Keyword arguments go to LocalKafka."""
    made: list[LocalKafka] = []

    def make(**options: object) -> LocalKafka:
        kafka = LocalKafka(_traversable_temp_dir("kafka-", stack_tmp_dir), **options)
        made.append(kafka)
        return kafka

    yield make
    for kafka in made:
        kafka.stop()


@pytest.fixture
def local_postgres_factory(stack_tmp_dir: Path) -> Iterator[Callable[..., LocalPostgres]]:
    """Make private, not yet started PostgreSQL servers; all are stopped at the end of the
    test. Keyword arguments go to LocalPostgres."""
    made: list[LocalPostgres] = []

    def make(**options: object) -> LocalPostgres:
        postgres = LocalPostgres(_traversable_temp_dir("postgres-", stack_tmp_dir), **options)
        made.append(postgres)
        return postgres

    yield make
    for postgres in made:
        postgres.stop()
