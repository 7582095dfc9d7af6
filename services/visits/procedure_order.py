"""A request's review decisions against the procedure's order, as the monitoring view tells it.

The rule is the domain's (domain/procedure.py); here the view is asked once per household of
the request (only for decisions that may skip a step and are not re-sends of a recent one), the
decisions this door accepted lately are taken into account (accepted_decisions.py: the view
lags the log), and a decision that cannot be judged is counted by why
(shouwang_visits_procedure_unchecked_total) and let through: the fold judges it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from services.visits.accepted_decisions import AcceptedDecisions
from services.visits.adapters.household_view import HouseholdViews, ViewUnavailable
from services.visits.domain.procedure import CHECKED, Gap, Household, judgeable, skipped_step
from services.visits.metrics import VisitsMetrics
from services.visits.recent_events import RecentEvents


class OrderPorts(Protocol):
    views: HouseholdViews
    accepted: AcceptedDecisions
    recent: RecentEvents
    metrics: VisitsMetrics


async def gaps(
    ports: OrderPorts, ready: list[tuple[Any, dict[str, Any]]]
) -> list[tuple[Any, Gap | None]]:
    """Each (outcome, record) of `ready` with the step its decision skips, or None, in order.
    A decision kept earlier in the same request counts as accepted: the view cannot show it."""
    asked = sorted(
        {
            r["household_id"]
            for _, r in ready
            if r["decision"] in CHECKED and ports.recent.get(str(r["event_id"])) is None
        }
    )
    answers = await asyncio.gather(*(_household(ports, h) for h in asked))
    views = dict(zip(asked, answers, strict=True))
    judged: list[tuple[Any, Gap | None]] = []
    earlier: dict[str, set[str]] = {}
    for item in ready:
        record = item[1]
        household_id = record["household_id"]
        before = earlier.setdefault(household_id, set())
        view = views.get(household_id)
        gap = None
        if view is not None and record["decision"] in CHECKED:
            gap = _gap(ports, view, record, before)
        if gap is None:
            before.add(str(record["event_id"]))
        judged.append((item, gap))
    return judged


async def _household(ports: OrderPorts, household_id: str) -> Household | str:
    """The household as the view reports it (its decisions no longer pending), or why the view
    cannot say."""
    try:
        household = await ports.views.household(household_id)
    except ViewUnavailable as exc:
        return exc.reason
    ports.accepted.seen(household_id, [d.event_id for d in household.decisions])
    return household


def _gap(
    ports: OrderPorts, view: Household | str, record: dict[str, Any], before: set[str]
) -> Gap | None:
    unchecked = ports.metrics.procedure_unchecked
    if isinstance(view, str):
        unchecked.labels(view).inc()
        return None
    pending = ports.accepted.pending(record["household_id"]) | before
    why = judgeable(view, record, pending)
    if why is not None:
        if why != "recorded":  # a re-send of a decision the view has: nothing to judge
            unchecked.labels(why).inc()
        return None
    gap = skipped_step(view, record)
    ports.metrics.procedure_checks.labels("taken" if gap is None else "refused").inc()
    return gap
