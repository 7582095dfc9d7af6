"""What a registry's member list says on a given day: ages, working-age labour, the counts.

The contract's meaning of `members.people` (schema version 3), shared by every reader (the door
checks a record's counts against it, monitoring's rules and support's matcher read it on the
assessment's date), so the same list never means two things. Pure.

- Age is counted in whole years from the first day of the birth month: the registry records the
  month, not the day, so a member born in May 2002 is 18 from 1 May 2020.
- Working age is 16 to 64 (inclusive): 16 is the legal minimum age of employment (Labour Law,
  art. 15) and the registry's `members.elderly` counts members aged 65 or over, so the two
  never overlap. Labour capacity counts as labour only at working age.
- Students are members attending school now (PRESCHOOL to COLLEGE); `chronically_ill` counts
  serious and chronic illness, as the v1 count's doc says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

WORKING_AGE = (16, 64)
ELDERLY_AGE = 65
SEVERE_DISABILITY_GRADES = (1, 2)  # 2021 special attention: severe disability (重度残疾)
IN_SCHOOL = ("PRESCHOOL", "PRIMARY", "JUNIOR", "SENIOR", "VOCATIONAL", "COLLEGE")
COMPULSORY_SCHOOL_AGE = (6, 15)  # nine years of compulsory education from age 6


def age_on(birth_year: int, birth_month: int, day: date) -> int:
    """Whole years from the first day of the birth month to `day` (a day before birth: < 0)."""
    return day.year - birth_year - (1 if day.month < birth_month else 0)


def working_age(age: int) -> bool:
    return WORKING_AGE[0] <= age <= WORKING_AGE[1]


@dataclass(frozen=True, slots=True)
class Composition:
    """The registry's counts as a member list gives them on one day."""

    count: int
    labour: int  # FULL capacity, working age
    weak_labour: int  # PARTIAL or WEAK capacity, working age
    students: int
    disabled: int
    chronically_ill: int  # serious or chronic illness
    elderly: int  # aged 65 or over

    def as_record(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def _field(member: Any, name: str) -> Any:
    return member[name] if isinstance(member, Mapping) else getattr(member, name)


def composition_on(people: Iterable[Any], day: date) -> Composition:
    """The counts of `people` (records as decoded, or objects with the same attribute names)
    on `day`."""
    counts = dict.fromkeys(Composition.__slots__, 0)
    for member in people:
        age = age_on(_field(member, "birth_year"), _field(member, "birth_month"), day)
        labour, health = _field(member, "labour"), _field(member, "health")
        counts["count"] += 1
        if working_age(age):
            counts["labour"] += labour == "FULL"
            counts["weak_labour"] += labour in ("PARTIAL", "WEAK")
        counts["students"] += _field(member, "schooling") in IN_SCHOOL
        counts["disabled"] += health == "DISABILITY"
        counts["chronically_ill"] += health in ("SERIOUS_ILLNESS", "CHRONIC_ILLNESS")
        counts["elderly"] += age >= ELDERLY_AGE
    return Composition(**counts)
