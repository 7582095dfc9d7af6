"""The members of a simulated household, one by one (registry schema v3), drawn to fit the seed
county: about 3.2 people per lifted household (seed: 9,803 households, 31,585 people), a head
most often a man in his fifties or sixties, a spouse, children or grandchildren in school, an
elderly parent; illness in about one household in eight and disability in one in twelve (the
rates the count-based generator used), labour capacity from age and health, migrant work for
about half of the working-age adults with full labour (seed: 8,331 registered poor people
organised into migrant work).

Personal data is visibly fake, like the head's: names read "王某00012-2", ID numbers start FAKE.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, replace
from typing import Any

from services.contract.members import ELDERLY_AGE, age_on

YEAR = 2020  # the campaign's year: ages are drawn for it


@dataclass(frozen=True, slots=True)
class Person:
    member_id: str
    relation: str
    birth_year: int
    birth_month: int
    sex: str
    labour: str
    health: str
    disability_grade: int | None
    schooling: str
    migrant_work_months: int
    name: str
    citizen_id: str

    def record(self) -> dict[str, Any]:
        """The members.people entry (no personal data)."""
        return {
            "member_id": self.member_id,
            "relation": self.relation,
            "birth_year": self.birth_year,
            "birth_month": self.birth_month,
            "sex": self.sex,
            "labour": self.labour,
            "health": self.health,
            "disability_grade": self.disability_grade,
            "schooling": self.schooling,
            "migrant_work_months": self.migrant_work_months,
        }

    def personal(self) -> dict[str, Any]:
        """The personal.members entry: the sealed part."""
        return {"member_id": self.member_id, "name": self.name, "citizen_id": self.citizen_id}

    def age_on(self, day: dt.date) -> int:
        return age_on(self.birth_year, self.birth_month, day)


def draw_people(
    rng: random.Random, size: int, head_birth_year: int, surname: str, index: int
) -> tuple[Person, ...]:
    """`size` members around a head born in `head_birth_year`, healthy and of full labour where
    their age allows; `health` and `labour` then drawn per household."""
    head_age = YEAR - head_birth_year
    head_sex = "MALE" if rng.random() < 0.88 else "FEMALE"
    roles: list[tuple[str, int, str]] = [("HEAD", head_birth_year, head_sex)]
    other = "FEMALE" if head_sex == "MALE" else "MALE"
    if size > 1 and rng.random() < (0.88 if head_age < 70 else 0.65):
        roles.append(("SPOUSE", head_birth_year + rng.randint(-2, 4), other))
    if len(roles) < size and head_age < 58 and rng.random() < 0.4:
        roles.append(("PARENT", head_birth_year - rng.randint(22, 32), rng.choice(SEXES)))
    while len(roles) < size:
        if head_age >= 55:
            child = [r for r in roles if r[0] == "CHILD"]
            if not child:
                roles.append(("CHILD", head_birth_year + rng.randint(22, 30), rng.choice(SEXES)))
            elif len(child) == 1 and rng.random() < 0.5 and len(roles) + 1 < size:
                roles.append(("CHILD_IN_LAW", child[0][1] + rng.randint(-3, 3), rng.choice(SEXES)))
            else:
                born = min(YEAR - 1, child[0][1] + rng.randint(22, 32))
                roles.append(("GRANDCHILD", max(born, YEAR - 17), rng.choice(SEXES)))
        else:
            born = min(YEAR - 1, head_birth_year + rng.randint(21, 36))
            roles.append(("CHILD", born, rng.choice(SEXES)))
    people = []
    for k, (relation, year, sex) in enumerate(roles[:size], start=1):
        year = min(year, YEAR - 1) if relation != "HEAD" else year
        people.append(
            Person(
                member_id=str(k),
                relation=relation,
                birth_year=year,
                birth_month=rng.randint(1, 12),
                sex=sex,
                labour="FULL",
                health="HEALTHY",
                disability_grade=None,
                schooling="NONE",
                migrant_work_months=0,
                name=f"{surname}某{index:05d}-{k}",
                citizen_id=f"FAKE{index:012d}{k:02d}",
            )
        )
    return _with_health_and_work(rng, people)


SEXES = ("MALE", "FEMALE")
DISABILITY_GRADES = ((1, 2, 3, 4), (10, 20, 35, 35))  # severe (1-2) are the smaller share


def _with_health_and_work(rng: random.Random, people: list[Person]) -> tuple[Person, ...]:
    day = dt.date(YEAR, 1, 1)
    adults = [i for i, p in enumerate(people) if p.age_on(day) >= 16]
    if rng.random() < 0.12:  # a member with a serious or chronic illness, older more often
        i = rng.choices(adults, [1 + people[j].age_on(day) / 20 for j in adults])[0]
        health = "SERIOUS_ILLNESS" if rng.random() < 0.35 else "CHRONIC_ILLNESS"
        people[i] = replace(people[i], health=health)
    if rng.random() < 0.08:  # a member with a disability
        i = rng.randrange(len(people))
        if people[i].health == "HEALTHY":
            grade = rng.choices(*DISABILITY_GRADES)[0]
            people[i] = replace(people[i], health="DISABILITY", disability_grade=grade)
    done = []
    for person in people:
        age = person.age_on(day)
        schooling = _schooling(rng, age)
        labour = _labour(rng, age, person, schooling)
        migrant = (
            rng.randint(6, 12) if labour == "FULL" and 18 <= age <= 55 and rng.random() < 0.5 else 0
        )
        done.append(
            replace(person, labour=labour, schooling=schooling, migrant_work_months=migrant)
        )
    return tuple(done)


def _schooling(rng: random.Random, age: int) -> str:
    if 3 <= age <= 5:
        return "PRESCHOOL" if rng.random() < 0.8 else "NONE"
    if 6 <= age <= 11:
        return "PRIMARY"
    if 12 <= age <= 14:
        return "JUNIOR"
    if 15 <= age <= 17:
        return rng.choices(["SENIOR", "VOCATIONAL", "NONE"], [55, 35, 10])[0]
    if 18 <= age <= 21 and rng.random() < 0.3:
        return "COLLEGE"
    return "NONE"


def _labour(rng: random.Random, age: int, person: Person, schooling: str) -> str:
    if age < 16 or schooling != "NONE":
        return "NONE"  # children and full-time students
    if person.health == "SERIOUS_ILLNESS":
        return "WEAK" if rng.random() < 0.6 else "NONE"
    if person.health == "DISABILITY":
        return "NONE" if person.disability_grade in (1, 2) else "PARTIAL"
    if age >= ELDERLY_AGE:
        return "WEAK" if rng.random() < 0.4 else "NONE"
    if person.health == "CHRONIC_ILLNESS":
        return "PARTIAL" if rng.random() < 0.5 else "FULL"
    if age >= 60:  # most still farm their land at 60-64
        return "PARTIAL" if rng.random() < 0.35 else "FULL"
    return "FULL"


def named(rows: list[tuple], surname: str, index: int) -> tuple[Person, ...]:
    """The seed's named households' members: (relation, "YYYY-MM", sex, labour, health, grade,
    schooling)."""
    people = []
    for k, (relation, born, sex, labour, health, grade, schooling) in enumerate(rows, start=1):
        year, month = (int(x) for x in born.split("-"))
        people.append(
            Person(
                str(k),
                relation,
                year,
                month,
                sex,
                labour,
                health,
                grade,
                schooling,
                0,
                f"{surname}某（样例）-{k}",
                f"FAKE{index:012d}{k:02d}",
            )
        )
    return tuple(people)


def without(people: tuple[Person, ...], rng: random.Random) -> tuple[Person, ...]:
    """A member gone (a death or a move): the oldest elderly one, else a non-head adult."""
    day = dt.date(YEAR, 6, 1)
    elderly = [p for p in people if p.relation != "HEAD" and p.age_on(day) >= ELDERLY_AGE]
    others = [p for p in people if p.relation != "HEAD" and p.age_on(day) >= 16]
    gone = (
        min(elderly, key=lambda p: (p.birth_year, p.birth_month))
        if elderly
        else (rng.choice(others) if others else None)
    )
    return people if gone is None else tuple(p for p in people if p is not gone)


def with_baby(people: tuple[Person, ...], day: dt.date, rng: random.Random) -> tuple[Person, ...]:
    """A member born in `day`'s month (a grandchild of an older head, else a child)."""
    head = next(p for p in people if p.relation == "HEAD")
    k = max(int(p.member_id) for p in people) + 1
    surname = head.name.split("某")[0]
    relation = "GRANDCHILD" if head.age_on(day) >= 45 else "CHILD"
    return (
        *people,
        Person(
            str(k),
            relation,
            day.year,
            day.month,
            rng.choice(SEXES),
            "NONE",
            "HEALTHY",
            None,
            "NONE",
            0,
            f"{surname}某{head.name.split('某')[1].split('-')[0]}-{k}",
            f"{head.citizen_id[:-2]}{k:02d}",
        ),
    )
