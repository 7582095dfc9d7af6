"""A server that cannot be reached, or that refuses us, told in one line: which, where, and why.

The CLI exits 3 with that line instead of a traceback. The exception may come from deep in a
client library (aiokafka's "Unable to bootstrap", asyncpg's refused socket, aiohttp's
ClientConnectorError), so it is recognised here by its type, or by the library whose frames
raised an OSError, and told with the address and the variable that names the server. Nothing
here imports a client library: a library that was never imported cannot have raised.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.platform.config import Settings
from services.platform.postgres.database import DUTY_SETTINGS

KAFKA_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"
DATABASE_VARIABLE = "DATABASE_URL"
# The variable of each duty's URL (config.Settings reads them), by Settings field.
_DUTY_VARIABLES = {
    field: f"SHOUWANG_{duty.upper()}_DATABASE_URL" for duty, field in DUTY_SETTINGS.items()
}


@dataclass
class ServerUnreachable(Exception):
    """Raised by a start-up probe: `server` at `where` (named by `variable`) did not answer."""

    server: str
    where: str
    variable: str
    detail: str
    refused: bool = False
    message: str | None = None  # when the cause says it all already (KafkaAccessRefused)

    def __str__(self) -> str:
        if self.message:
            return self.message
        verb = "was refused by" if self.refused else "cannot reach"
        return f"{verb} {self.server} at {self.where} ({self.variable}): {self.detail}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 10:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _raised_in(exc: BaseException, package: str) -> bool:
    return any(
        frame.f_globals.get("__name__", "").startswith(package)
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _loaded(module: str, name: str) -> type | None:
    found = sys.modules.get(module)
    return getattr(found, name, None) if found is not None else None


def _kafka(settings: Settings, exc: BaseException, refused: bool = False) -> ServerUnreachable:
    where = settings.kafka_bootstrap or f"the local stack's broker under {settings.home}"
    detail = _first_line(exc)
    if "Unable to bootstrap" in detail:  # aiokafka's, with the address list repeated
        detail = "no bootstrap server answered"
    return ServerUnreachable("Kafka", where, KAFKA_VARIABLE, detail, refused)


def _address(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}"


def _postgres(settings: Settings, exc: BaseException, refused: bool = False) -> ServerUnreachable:
    detail = _first_line(exc)
    named = [(DATABASE_VARIABLE, settings.database_url)] + [
        (variable, getattr(settings, field)) for field, variable in _DUTY_VARIABLES.items()
    ]
    named = [(variable, _address(url)) for variable, url in named if url]
    if not named:
        where = f"the local stack's PostgreSQL under {settings.home}"
        return ServerUnreachable("PostgreSQL", where, DATABASE_VARIABLE, detail, refused)
    # The error names the address it tried when it can ("Connect call failed ('h', p)"): the
    # variable whose URL has that address is the one to fix.
    for variable, address in named:
        host, _, port = address.rpartition(":")
        if f"'{host}', {port})" in detail or address in detail:
            return ServerUnreachable("PostgreSQL", address, variable, detail, refused)
    variables = " or ".join(dict.fromkeys(v for v, _ in named))
    addresses = ", ".join(dict.fromkeys(a for _, a in named))
    return ServerUnreachable("PostgreSQL", addresses, variables, detail, refused)


def recognise(exc: BaseException, settings: Settings | None) -> ServerUnreachable | None:
    """The server `exc` says is unreachable or refusing, or None when it is about something else."""
    for link in _chain(exc):
        if isinstance(link, ServerUnreachable):
            return link
    if settings is None:
        return None
    kafka_types = tuple(
        t
        for t in (
            _loaded("aiokafka.errors", "KafkaConnectionError"),
            _loaded("services.platform.kafka.producer", "BrokerUnavailable"),
        )
        if t is not None
    )
    kafka_refusal = _loaded("services.platform.kafka.clients", "KafkaAccessRefused")
    pg_refusals = tuple(
        t
        for t in (
            _loaded("asyncpg.exceptions", name)
            for name in (
                "InvalidPasswordError",
                "InvalidAuthorizationSpecificationError",
                "InvalidCatalogNameError",
                "CannotConnectNowError",
                "TooManyConnectionsError",
            )
        )
        if t is not None
    )
    http_error = _loaded("aiohttp", "ClientConnectorError")
    for link in _chain(exc):
        if kafka_refusal is not None and isinstance(link, kafka_refusal):
            refusal = _kafka(settings, link, refused=True)
            refusal.message = str(link)  # "Kafka at h:p refused SCRAM-SHA-256 ... as 'u' ..."
            return refusal
        if kafka_types and isinstance(link, kafka_types):
            return _kafka(settings, link)
        if pg_refusals and isinstance(link, pg_refusals):
            return _postgres(settings, link, refused=True)
        if http_error is not None and isinstance(link, http_error):
            key = link.connection_key
            where = f"{key.host}:{key.port}"
            return ServerUnreachable(
                "the HTTP server", where, "the command's URL", _first_line(link)
            )
        if isinstance(link, OSError | TimeoutError):
            if _raised_in(link, "asyncpg"):
                return _postgres(settings, link)
            if _raised_in(link, "aiokafka"):
                return _kafka(settings, link)
    return None


async def probe_database(url: str, connect_timeout: float = 10.0) -> None:
    """Connect once and close, for a service that would otherwise wait for PostgreSQL forever:
    its error (refused, timed out, login refused) reaches `recognise`, which names the URL's
    variable by the address."""
    import asyncpg  # here, not at the top: see the module docstring

    conn = await asyncpg.connect(url, timeout=connect_timeout)
    await conn.close()
