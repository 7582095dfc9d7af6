"""The procedure's level rule at the door, pure: which level may record which review decision,
and the `body` and `approving_level` each level may write.

DOMAIN.md: village deliberation and public notice, township review, county approval. Each step
is written by a token of its level (issue #17): a village-level token (a cadre token narrowed
to villages) for VILLAGE_DELIBERATION, NOTICE and OBJECTION; a township reviewer (a cadre token
allowed ReviewDecided, not narrowed to villages) for TOWNSHIP_REVIEW; the county (an operator
token) for INCLUDE, REJECT, ELIMINATE, KEEP_MONITORING and any exception. START_VERIFICATION,
APPLY and PROPOSE_ELIMINATION open a procedure and may come from any level (a cadre visit, the
household's own application at a village service point, a department warning); a department
feed has no level, so it may only open one.

The token's scope (its townships and villages) is checked before this, for every record; the
fold (monitoring/domain/workflow.py) stays the authority on the order of the steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VILLAGE, TOWNSHIP, COUNTY = "VILLAGE", "TOWNSHIP", "COUNTY"
LEVELS = (VILLAGE, TOWNSHIP, COUNTY)

# The level whose token records each step; absent: any level (the openings).
DECISION_LEVEL = {
    "VILLAGE_DELIBERATION": VILLAGE,
    "NOTICE": VILLAGE,
    "OBJECTION": VILLAGE,
    "TOWNSHIP_REVIEW": TOWNSHIP,
    "INCLUDE": COUNTY,
    "REJECT": COUNTY,
    "ELIMINATE": COUNTY,
    "KEEP_MONITORING": COUNTY,
}
OPENINGS = ("START_VERIFICATION", "APPLY", "PROPOSE_ELIMINATION")
# Who decides at each level (DOMAIN.md): a village's committee and self-check groups; the
# township and its review groups (会审组); the county, its review groups and audit groups.
LEVEL_BODIES = {
    VILLAGE: ("VILLAGE", "SELF_CHECK_GROUP"),
    TOWNSHIP: ("TOWNSHIP", "REVIEW_GROUP"),
    COUNTY: ("COUNTY", "REVIEW_GROUP", "AUDIT_GROUP"),
}
TOKEN_OF_LEVEL = {
    VILLAGE: "a village-level token (a cadre token with --village and ReviewDecided)",
    TOWNSHIP: "a township reviewer (a cadre token with --event-type ReviewDecided, no --village)",
    COUNTY: "a county-level token (an operator's)",
}


# The level rule in words, as the OpenAPI document states it among the rules JSON Schema cannot
# say (it relates the record to the token that writes it).
LEVEL_RULE = (
    "approving_level must be the level of the token writing the decision (an operator's token "
    "is the county, a cadre token narrowed to villages a village, another reviewer's token its "
    "township), and body one of that level's bodies (village: VILLAGE, SELF_CHECK_GROUP; "
    "township: TOWNSHIP, REVIEW_GROUP; county: COUNTY, REVIEW_GROUP, AUDIT_GROUP); otherwise "
    "422 naming the field. A decision of another level's (VILLAGE_DELIBERATION, NOTICE and "
    "OBJECTION the village's, TOWNSHIP_REVIEW the township's, INCLUDE, REJECT, ELIMINATE, "
    "KEEP_MONITORING and every exception the county's) is 403."
)


@dataclass(frozen=True)
class LevelRefusal:
    """Why a decision is refused: 403 (the token's level may not make it) or 422 (a field
    disagrees with the token's level), the field, and what to tell the client."""

    status: int
    field: str
    message: str


def writer_level(kind: str, village_scoped: bool) -> str | None:
    """The procedure level of a token: an operator is the county, a cadre token narrowed to
    villages a village, another cadre token (a reviewer) its township; a feed has none."""
    if kind == "operator":
        return COUNTY
    if kind == "cadre":
        return VILLAGE if village_scoped else TOWNSHIP
    return None


def level_refusal(
    record: Mapping[str, Any], level: str | None, service_point: bool = False
) -> LevelRefusal | None:
    """None when a token of `level` may write the ReviewDecided `record` as it is; otherwise
    the first reason it may not: a service point's decision other than APPLY (403), the
    decision's level (403), an exception outside the county (403), then `approving_level` and
    `body` against the token's level (422)."""
    decision = record["decision"]
    if service_point and (decision != "APPLY" or record.get("exception")):
        return LevelRefusal(
            403,
            "exception" if decision == "APPLY" else "decision",
            "a village service point records households' own applications (APPLY) and "
            f"nothing else, not {decision}" + (" as an exception" if decision == "APPLY" else ""),
        )
    needed = COUNTY if record.get("exception") else DECISION_LEVEL.get(decision)
    if level is None:
        if decision == "START_VERIFICATION":
            return None  # a department's warning opens a verification, whoever decides it
        return LevelRefusal(
            403,
            "decision",
            f"{decision} is a step of the procedure and a department feed has no level in it; "
            "only START_VERIFICATION (a warning) may come from a feed",
        )
    if needed is not None and needed != level:
        field = "exception" if record.get("exception") else "decision"
        what = (
            f"an exception ({decision} skipping a step) is the county's to approve"
            if record.get("exception")
            else f"{decision} is the {needed.lower()}'s step"
        )
        return LevelRefusal(
            403,
            field,
            f"{what}: it needs {TOKEN_OF_LEVEL[needed]}; this token is "
            f"{TOKEN_OF_LEVEL[level].split(' (')[0]}",
        )
    if record["approving_level"] != level:
        return LevelRefusal(
            422,
            "approving_level",
            f"must be {level}, the level of this token ({TOKEN_OF_LEVEL[level].split(' (')[0]}), "
            f"not {record['approving_level']}",
        )
    if record["body"] not in LEVEL_BODIES[level]:
        return LevelRefusal(
            422,
            "body",
            f"a {level.lower()}-level decision's body is one of "
            f"{', '.join(LEVEL_BODIES[level])}, not {record['body']}",
        )
    return None
