"""Who a console user is, from the token they logged in with.

The token's kind and scope decide (platform/auth/tokens.py); the console adds no permissions of
its own. Mapping:
- operator token → county operator: every page, decisions too, within its townships if narrowed;
- cadre token that may record ReviewDecided → township reviewer: the queue and households of
  its townships, and decisions on them;
- cadre token narrowed to villages that may record ReviewDecided → village (a village
  committee): the review queue and household pages of ITS villages only (a household of another
  village of the same township is refused like one of another township), each household's
  procedure step, and a decision form offering only the village's steps (VILLAGE_DELIBERATION,
  NOTICE, OBJECTION: visits/domain/levels.py); no county overview, measures and pools or
  problems board (they count whole townships, more than its villages);
- other cadre token (a village-narrowed one without ReviewDecided too: a village service point
  recording visits) → cadre: no review queue, no household pages (the token cannot read them);
- auditor token → auditor (read-only): the overview, the review queue, household pages and
  their history, measures and pools, the problems board, within its townships if narrowed; no
  decision form (its token writes nothing: the visits API would refuse it), no work list (it
  has no households of its own), no personal data;
- feed token → refused: a department feed is a machine, not a person.

Personal data (names, ID numbers, phones; sealed in the log) may be opened by the people who
decide about a household: a county operator (within its townships) and the review group of the
household's township, who verify who the household is. A cadre's token reads no household, so
it opens none either. A village committee decides its step (deliberation, notice, objection)
but does not verify who the household is (the township's review group does, at its home check):
its members know their neighbours in person and post the notice from the village's own register,
so the sealed names, ID numbers and phones would add nothing to its decision, while its token
(one per village, often on a shared service-point computer) would widen who can disclose them:
it opens none. An auditor checks the decisions and the work, not who the people are, so
it opens none (need to know: each opening is a disclosure, however audited). Every opening
states why and is recorded (platform/personal/opening.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.console import labels
from services.platform.auth.tokens import REVIEW_DECIDED, Token

# The steps a village committee records (visits/domain/levels.py: the village level's).
VILLAGE_DECISIONS = ("VILLAGE_DELIBERATION", "NOTICE", "OBJECTION")


class LoginRefused(ValueError):
    """A valid token that may not open the console (a feed's)."""


@dataclass(frozen=True)
class Role:
    name: str  # operator | reviewer | village | cadre | auditor
    holder: str
    townships: frozenset[str] | None  # None: every township
    villages: frozenset[str] | None = None  # a village committee's villages; None: any

    @property
    def reads_queue(self) -> bool:
        """The review queue and household pages (within the role's scope)."""
        return self.name in ("operator", "reviewer", "village", "auditor")

    @property
    def reads_townships(self) -> bool:
        """The pages that count whole townships: the overview, measures and pools, the problems
        board. Not a village committee's: they would show other villages' households."""
        return self.name in ("operator", "reviewer", "auditor")

    def may_read(self, token: Token, township: str | None, village: str | None = None) -> bool:
        return may_read(token, township, village)

    @property
    def read_only(self) -> bool:
        return self.name == "auditor"


def role_of(token: Token) -> Role:
    """The console role of an active token, or LoginRefused."""
    if token.kind == "operator":
        return Role("operator", token.holder, token.townships)
    if token.kind == "cadre":
        if token.reviewer and token.villages is not None:
            return Role("village", token.holder, token.townships, token.villages)
        name = "reviewer" if token.reviewer else "cadre"
        return Role(name, token.holder, token.townships)
    if token.read_only:
        return Role("auditor", token.holder, token.townships)
    raise LoginRefused("a department feed's token cannot open the console")


def may_read(token: Token, township: str | None, village: str | None) -> bool:
    """Whether the household page of a household of `township` and `village` may be opened: the
    token's township scope, and a village committee's villages (a village-narrowed token)."""
    return token.may_read_household(township) and token.permits_village(village)


def may_decide(token: Token, township: str | None, village: str | None = None) -> bool:
    """Whether the token may record a review decision on a household of `township` and
    `village` (the visits API checks the same before writing; the console only hides a form it
    would refuse)."""
    return (
        token.kind in ("operator", "cadre")
        and not token.read_only
        and token.permits_type(REVIEW_DECIDED)
        and may_read(token, township, village)
    )


def decision_choices(role: Role) -> dict[str, Any]:
    """What the decision form offers the role (decision, category, body, level, outcome) and
    its defaults. A village committee is offered only its level's steps and bodies; the visits
    API (visits/domain/levels.py) stays the authority and refuses anything else posted."""
    if role.name == "village":
        return {
            "decision": VILLAGE_DECISIONS,
            "category": (),
            "body": ("VILLAGE", "SELF_CHECK_GROUP"),
            "level": ("VILLAGE",),
            "outcome": labels.OUTCOMES,
            "default_body": "VILLAGE",
            "default_level": "VILLAGE",
        }
    return {
        "decision": labels.DECISIONS,
        "category": labels.CATEGORIES,
        "body": labels.BODIES,
        "level": labels.LEVELS,
        "outcome": labels.OUTCOMES,
        "default_body": "REVIEW_GROUP",
        "default_level": "TOWNSHIP",
    }


def may_open_personal(token: Token, township: str | None) -> bool:
    """Whether the token's holder may open the personal data of a household of `township`."""
    role = role_of(token)
    return role.name in ("operator", "reviewer") and token.may_read_household(township)
