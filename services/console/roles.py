"""Who a console user is, from the token they logged in with.

The token's kind and scope decide (platform/auth/tokens.py); the console adds no permissions of
its own. Mapping:
- operator token → county operator: every page, decisions too, within its townships if narrowed;
- cadre token that may record ReviewDecided → township reviewer: the queue and households of
  its townships, and decisions on them;
- other cadre token → cadre: no review queue, no household pages (the token cannot read them);
- auditor token → auditor (read-only): the overview, the review queue, household pages and
  their history, measures and pools, the problems board, within its townships if narrowed; no
  decision form (its token writes nothing: the visits API would refuse it), no work list (it
  has no households of its own), no personal data;
- feed token → refused: a department feed is a machine, not a person.
There is no village kind of token yet: no such role until tokens.py has one.

Personal data (names, ID numbers, phones; sealed in the log) may be opened by the people who
decide about a household: a county operator (within its townships) and the review group of the
household's township, who verify who the household is. A cadre's token reads no household, so
it opens none either; an auditor checks the decisions and the work, not who the people are, so
it opens none (need to know: each opening is a disclosure, however audited). Every opening
states why and is recorded (platform/personal/opening.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.platform.auth.tokens import REVIEW_DECIDED, Token


class LoginRefused(ValueError):
    """A valid token that may not open the console (a feed's)."""


@dataclass(frozen=True)
class Role:
    name: str  # operator | reviewer | cadre | auditor
    holder: str
    townships: frozenset[str] | None  # None: every township

    @property
    def reads_queue(self) -> bool:
        return self.name in ("operator", "reviewer", "auditor")

    @property
    def read_only(self) -> bool:
        return self.name == "auditor"

    def may_read(self, token: Token, township: str | None) -> bool:
        return token.may_read_household(township)


def role_of(token: Token) -> Role:
    """The console role of an active token, or LoginRefused."""
    if token.kind == "operator":
        return Role("operator", token.holder, token.townships)
    if token.kind == "cadre":
        name = "reviewer" if token.reviewer else "cadre"
        return Role(name, token.holder, token.townships)
    if token.read_only:
        return Role("auditor", token.holder, token.townships)
    raise LoginRefused("a department feed's token cannot open the console")


def may_decide(token: Token, township: str | None) -> bool:
    """Whether the token may record a review decision on a household of `township` (the visits
    API checks the same before writing; the console only hides a form it would refuse)."""
    return (
        token.kind in ("operator", "cadre")
        and not token.read_only
        and token.permits_type(REVIEW_DECIDED)
        and token.may_read_household(township)
    )


def may_open_personal(token: Token, township: str | None) -> bool:
    """Whether the token's holder may open the personal data of a household of `township`."""
    role = role_of(token)
    return role.name in ("operator", "reviewer") and token.may_read_household(township)
