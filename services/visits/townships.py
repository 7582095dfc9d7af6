"""Which townships and villages exist: those the registries name, as the read model has
projected them.

A token scoped to a township nobody lives in would be refused at every visit, and a misspelt
one ("Gaofen") would look like a working token until the first cadre tried it; `tokens issue`
refuses it at once instead, naming the townships it knows and the nearest spellings.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import asyncpg

from services.platform.config import Settings, SettingsError
from services.platform.postgres.database import database_for

# The household registry and the cadre roster are what say a township exists; the read model
# holds both, readable by the reader duty.
_KNOWN = (
    "SELECT township FROM households WHERE township IS NOT NULL "
    "UNION SELECT township FROM cadres WHERE township IS NOT NULL"
)
_LISTED = 20
_VILLAGES = (
    "SELECT village FROM households WHERE township = $1 AND village IS NOT NULL "
    "UNION SELECT village FROM cadres WHERE township = $1 AND village IS NOT NULL"
)


async def known_townships(settings: Settings) -> set[str]:
    """Every township of a registered household or cadre (the reader's connection)."""
    conn = await asyncpg.connect(database_for(settings, "reader").url)
    try:
        return {row["township"] for row in await conn.fetch(_KNOWN)}
    finally:
        await conn.close()


def check_townships(wanted: Sequence[str], known: set[str]) -> None:
    """SettingsError naming the first township of `wanted` that `known` lacks, and why."""
    for township in wanted:
        if township in known:
            continue
        if not known:
            raise SettingsError(
                f"--township {township!r}: the read model knows no township yet; import the "
                "household table (shouwang import households) and run the projector first"
            )
        hint, listed = _nearest(township, known)
        raise SettingsError(
            f"--township {township!r}: no registered household or cadre is in it{hint}; "
            f"known: {listed}"
        )


def _nearest(name: str, known: set[str]) -> tuple[str, str]:
    """' (did you mean ...?)' with the nearest spellings of `name` (or ''), and the first
    known names with how many more there are."""
    near = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    more = f" and {len(known) - _LISTED} more" if len(known) > _LISTED else ""
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return hint, ", ".join(sorted(known)[:_LISTED]) + more


async def known_villages(settings: Settings, township: str) -> set[str]:
    """Every village of `township` where a household or cadre is registered."""
    conn = await asyncpg.connect(database_for(settings, "reader").url)
    try:
        return {row["village"] for row in await conn.fetch(_VILLAGES, township)}
    finally:
        await conn.close()


def check_villages(township: str, wanted: Sequence[str], known: set[str]) -> None:
    """SettingsError naming the first village of `wanted` that is not one of `township`'s
    (`known`), with the nearest spellings: a village-level token for a village of another
    township, or a misspelt one, would be refused at every record."""
    for village in wanted:
        village = village.strip()
        if not village or village in known:
            continue
        if not known:
            raise SettingsError(
                f"--village {village!r}: the read model knows no village of {township!r}; "
                "import its households (shouwang import households) and run the projector first"
            )
        hint, listed = _nearest(village, known)
        raise SettingsError(
            f"--village {village!r}: no registered household or cadre of {township!r} is in "
            f"it{hint}; {township}'s villages: {listed}"
        )
