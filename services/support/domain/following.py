"""Measures follow the household: what it gives up when its workflow leaves the states in which
it may hold support, and which of its cancellations still keep a pool from offering again.

Pure: both read the household's profile and the catalogue, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.contract.catalogue import Catalogue
from services.support.domain.profile import MeasureState, Profile

# A release is a consequence of the assessment that took the household out of the served
# states, so its step is dated just after it: the smallest step of the contract's millisecond
# times. Monitoring re-judges a decision on the facts up to and including its instant; dated
# at the same instant, the cancellation of a measure the household had received would count
# among the grounds of the very elimination that caused it ("too few measures received").
AFTER_DECISION = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Cancellation:
    """A measure support itself cancelled because its household left the served states: the
    CANCELLED step to record on support.measures, so every reader (the read model, monitoring)
    sees the measure closed and why. `at` is when the release took effect."""

    household_id: str
    measure_id: str
    catalogue_id: str
    measure_type: str
    pool: str
    reason: str
    at: datetime


def to_release(
    profile: Profile, catalogue: Catalogue
) -> tuple[tuple[MeasureState, str, str, datetime], ...]:
    """(measure, pool instance, reason, as of) for every open measure holding or waiting for a
    pool place, when the household's latest assessment puts it outside the states that may
    hold support (rejected, eliminated, cleared); nothing otherwise. Ordered by measure id."""
    assessment = profile.assessment
    if assessment is None or catalogue.holds_support(assessment.workflow):
        return ()
    reason = (
        f"household {assessment.workflow} as of {assessment.as_of.date().isoformat()} "
        f"(assessment {assessment.event_id}): no longer in "
        f"{', '.join(sorted(catalogue.serve_workflows | catalogue.hold_workflows))}"
    )
    held = sorted(
        (m for m in profile.measures.values() if m.open and m.pool),
        key=lambda m: m.measure_id,
    )
    return tuple(
        (m, m.pool, f"{reason}; {m.catalogue_id} released from {m.pool}", assessment.as_of)
        for m in held
        if m.pool
    )


def cooling(profile: Profile, instance: str, catalogue: Catalogue) -> MeasureState | None:
    """The household's own cancellation that keeps slot pool `instance` from recommending it
    again now, if any: one cancelled less than the catalogue's `cooling_days` before the latest
    assessment, which brings no reason the household did not have when it cancelled.

    Releases by support (the household left the served states) are not the household's choice
    and never cool; a closing step with no known time cannot be dated and does not either.
    """
    assessment = profile.assessment
    if assessment is None:
        return None
    period = timedelta(days=catalogue.cooling_days)
    for measure in sorted(profile.measures.values(), key=lambda m: m.measure_id):
        if (
            measure.step != "CANCELLED"
            or measure.released
            or measure.pool != instance
            or measure.at is None
            or assessment.as_of >= measure.at + period
            or set(assessment.reason_codes) - set(measure.basis)
        ):
            continue
        return measure
    return None
