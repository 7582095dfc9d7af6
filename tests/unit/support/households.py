"""Household profiles for the support tests: a registry row and an assessment from
`tests.records`, with the facts a test cares about, through support's translation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.support.adapters import avro_translation as avro
from services.support.domain.profile import Profile, apply
from tests import records

AS_OF = dt.datetime(2020, 5, 16, 18, 0, tzinfo=dt.UTC)


def household(
    household_id: str,
    *,
    minimum_living_allowance: bool = False,
    workflow: str = "MONITORED",
    category: str | None = "UNSTABLE_LIFTED",
    level: str = "HIGH",
    reasons: tuple[str, ...] = (),
    **registry: Any,
) -> Profile:
    """A household registered 100 days before AS_OF and assessed at AS_OF; `registry` holds
    `tests.records.registry`'s keywords (members, livelihood) and registry fields (village)."""
    _, baseline = records.registry(
        household_id,
        AS_OF - dt.timedelta(days=100),
        allowance=minimum_living_allowance,
        **registry,
    )
    _, assessment = records.risk(
        household_id,
        AS_OF,
        category=category,
        level=level,
        workflow=workflow,
        reasons=[{"code": code, "message": "", "event_ids": []} for code in reasons],
    )
    profile = apply(Profile(household_id), avro.registry_from(baseline))
    return apply(profile, avro.assessment_from(assessment))
