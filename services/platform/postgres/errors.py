"""Which database errors mean "out of reach now, try again" rather than "this was refused".

Every service that talks to PostgreSQL waits out an outage (the projector), answers 503 (the
read API), or fails closed (tokens); all of them need the same answer to "is the database
gone?", and asyncpg spreads it over several exception families.
"""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions

UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (TimeoutError is an OSError)
    asyncpg.InterfaceError,  # "connection is closed"
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, e.g. closed mid-operation
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, cannot connect now
    # A shutdown's FATAL reaching an idle connection leaves asyncpg's protocol consuming an
    # error; a query sent before it sees the socket close fails with "cannot switch to state
    # 15; another operation (2) is in progress" (asyncpg issue #784; SQLAlchemy treats it as a
    # disconnect, #13241). Seen in the db-outage fault scenario: it killed the projector.
    asyncpg.InternalClientError,
)

# Any failure of a lookup that must not be answered from a guess (a token, a key, a
# township): out of reach, or an error of the database itself.
FAILED: tuple[type[BaseException], ...] = (*UNREACHABLE, asyncpg.PostgresError)
