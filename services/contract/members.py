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
from operator import attrgetter, itemgetter
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


# The fields a count reads, fetched in one C call per member: these counts run on every
# assessment (monitoring's rules, support's matcher), and testing each field's container type
# separately (an ABC isinstance per field) was a third of monitoring's pure step on the county.
_READ = ("birth_year", "birth_month", "labour", "health", "schooling")
_read_record = itemgetter(*_READ)
_read_object = attrgetter(*_READ)


def composition_on(people: Iterable[Any], day: date) -> Composition:
    """The counts of `people` (records as decoded, or objects with the same attribute names)
    on `day`."""
    count = labour = weak_labour = students = disabled = chronically_ill = elderly = 0
    for member in people:
        read = _read_record if isinstance(member, Mapping) else _read_object
        birth_year, birth_month, capacity, health, schooling = read(member)
        age = age_on(birth_year, birth_month, day)
        count += 1
        if working_age(age):
            labour += capacity == "FULL"
            weak_labour += capacity in ("PARTIAL", "WEAK")
        students += schooling in IN_SCHOOL
        disabled += health == "DISABILITY"
        chronically_ill += health in ("SERIOUS_ILLNESS", "CHRONIC_ILLNESS")
        elderly += age >= ELDERLY_AGE
    return Composition(count, labour, weak_labour, students, disabled, chronically_ill, elderly)
