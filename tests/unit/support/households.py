"""Household profiles for the support tests, built from the facts the tests care about."""

from __future__ import annotations

import datetime as dt
import uuid

from services.support.domain.profile import Members, Profile, RegistryRecorded, RiskAssessed, apply

AS_OF = dt.datetime(2020, 5, 16, 18, 0, tzinfo=dt.UTC)


def household(
    household_id: str,
    *,
    township: str = "鹤游镇",
    village: str = "水井村",
    count: int = 3,
    labour: int = 1,
    weak_labour: int = 0,
    students: int = 0,
    disabled: int = 0,
    chronically_ill: int = 0,
    elderly: int = 0,
    head_birth_year: int | None = 1978,
    livelihood: str = "FARMING",
    minimum_living_allowance: bool = False,
    housing: str = "SAFE",
    water: str = "SAFE",
    registration: str = "LIFTED",
    workflow: str = "MONITORED",
    category: str | None = "UNSTABLE_LIFTED",
    level: str = "HIGH",
    reasons: tuple[str, ...] = (),
) -> Profile:
    registry = RegistryRecorded(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"registry/{household_id}")),
        household_id=household_id,
        occurred_at=AS_OF - dt.timedelta(days=100),
        township=township,
        village=village,
        registration=registration,
        members=Members(count, labour, weak_labour, students, disabled, chronically_ill, elderly),
        head_birth_year=head_birth_year,
        livelihood=livelihood,
        minimum_living_allowance=minimum_living_allowance,
        housing=housing,
        water=water,
    )
    assessment = RiskAssessed(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"risk/{household_id}")),
        household_id=household_id,
        as_of=AS_OF,
        category=category,
        level=level,
        workflow=workflow,
        reason_codes=reasons,
        policy_version="dianjiang-2020",
    )
    return apply(apply(Profile(household_id), registry), assessment)
