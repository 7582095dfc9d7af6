"""The problems board: open problems by township and responsible person, overdue first, and the
rectification rate, scoped by the console role.

Scope follows the token, as every other page: a county operator sees every township (or those
its token is narrowed to), a township reviewer the townships of its token, a cadre only the
problems it is responsible for. The board only reads (no form), so a read-only role sees the
same page. A problem links to its household page only where the token may open that page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.console.roles import Role
from services.platform.auth.tokens import Token
from services.readmodel import queries


class OutOfScope(ValueError):
    """A filter naming a township the token may not see."""


@dataclass(frozen=True)
class BoardScope:
    townships: frozenset[str] | None  # None: every township
    township: str | None  # the filter chosen, within `townships`
    responsible: str | None  # a cadre's own problems, or the filter chosen


def scope_of(token: Token, role: Role, township: str | None, responsible: str | None) -> BoardScope:
    """What the board shows for this token and these filters (OutOfScope for a township the
    token may not see). A cadre's board is always its own problems, whatever is asked."""
    if township is not None and not token.permits_township(township):
        raise OutOfScope(township)
    if role.name == "cadre":
        responsible = token.holder
    return BoardScope(role.townships, township, responsible)


async def board(
    pool: asyncpg.Pool, token: Token, scope: BoardScope, today: dt.date
) -> dict[str, Any]:
    """The board's content: open problems (overdue first, then by due date), counts by
    township and responsible person, the rectification by township with the scope's total."""
    args = (pool, today, scope.townships, scope.township, scope.responsible)
    problems = await queries.open_problems(*args)
    for p in problems:
        due = p["due_date"]
        p["days_left"] = None if due is None else (due - today).days
        p["linked"] = token.may_read_household(p["township"])
    people = await queries.open_by_responsible(*args)
    rates = await queries.rectification(*args)
    return {
        "problems": problems,
        "truncated": len(problems) >= queries.BOARD_LIMIT,
        "people": people,
        "rates": rates["townships"],
        "total": rates["total"],
    }
