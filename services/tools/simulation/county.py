"""The county itself: townships, villages and groups, households and pairing cadres.

Everything is drawn from random generators seeded by the run's seed, never the global one, so a
county is a pure function of its parameters. Personal data is visibly fake: names read
"王某00012", citizen ids start with FAKE, phone numbers with 000.

Long because the county is drawn in one pass from one generator, and the seed's
named households take their ids from the same counter (`place` in `build_county`) as the drawn
ones, so the order of every draw here is what keeps a seed's county the same; a sixth of the
module is the tables of names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import astuple, dataclass, replace

from services.contract.members import composition_on
from services.tools.simulation.parameters import SEED_DEPARTMENTS, SimulationParameters
from services.tools.simulation.people import Person, draw_people, named

# Dianjiang's 26 townships and streets (2 streets, 22 towns, 2 townships). The seed names 大石乡
# and 鹤游镇; the rest follow the county's administrative divisions.
TOWNSHIPS = (
    "桂溪街道",
    "桂阳街道",
    "新民镇",
    "沙坪镇",
    "周嘉镇",
    "普顺镇",
    "永安镇",
    "高安镇",
    "高峰镇",
    "五洞镇",
    "澄溪镇",
    "太平镇",
    "鹤游镇",
    "坪山镇",
    "砚台镇",
    "曹回镇",
    "杠家镇",
    "包家镇",
    "白家镇",
    "永平镇",
    "三溪镇",
    "裴兴镇",
    "黄沙镇",
    "长龙镇",
    "大石乡",
    "沙河乡",
)
# Villages the seed names, placed first in their townships so the named cases can live there.
SEED_VILLAGES = {"鹤游镇": ("水井村", "新溪村"), "大石乡": ("大石村",)}
_VILLAGE_FIRST = "龙凤石桥河山新双高长白青金柏桂沙黄马松竹兴安永太平民和丰花光"
_VILLAGE_SECOND = "溪湾坪岩塘林桥坝田冲庙院池沟坡岭嘴垭"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"
# County-level bodies that send pairing cadres (the seed: 109 departments in all, including the
# township governments and the 6 industry departments that also push early-warning feeds).
_COUNTY_DEPARTMENTS = (
    "县扶贫办",
    "县医保局",
    "县民政局",
    "县教委",
    "县水利局",
    "县人力社保局",
    "县住建委",
    "县农业农村委",
    "县卫生健康委",
    "县财政局",
    "县发展改革委",
    "县经济信息委",
    "县商务委",
    "县交通局",
    "县规划自然资源局",
    "县生态环境局",
    "县林业局",
    "县应急管理局",
    "县市场监管局",
    "县统计局",
    "县审计局",
    "县税务局",
    "县公安局",
    "县司法局",
    "县文化旅游委",
    "县退役军人事务局",
    "县残联",
    "县妇联",
    "团县委",
    "县总工会",
    "县供销社",
    "县委组织部",
    "县委宣传部",
    "县纪委监委",
    "县委办",
    "县政府办",
    "县人大办",
    "县政协办",
    "县委统战部",
    "县委政法委",
)

LIFTED = "LIFTED"
NOT_LIFTED = "NOT_LIFTED"
NEVER_REGISTERED = "NEVER_REGISTERED"


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator for one purpose (e.g. one household's story), independent of all others.

    Deriving a generator per purpose, rather than sharing one, keeps a household's story the same
    when unrelated parts of the generator change, and lets stories be drawn in any order.
    """
    digest = hashlib.sha256("/".join(str(p) for p in (seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


@dataclass(frozen=True, slots=True)
class Village:
    name: str
    groups: int


@dataclass(frozen=True, slots=True)
class Township:
    index: int
    name: str
    villages: tuple[Village, ...]


@dataclass(frozen=True, slots=True)
class Members:
    count: int
    labour: int
    weak_labour: int
    students: int
    disabled: int
    chronically_ill: int
    elderly: int


@dataclass(frozen=True, slots=True)
class Household:
    """One household as the county table knows it at the start of the campaign."""

    household_id: str
    index: int
    township: str
    village: str
    village_group: str
    registration: str
    lifted_year: int | None
    members: Members
    head_birth_year: int
    livelihood: str
    minimum_living_allowance: bool
    housing: str
    water: str
    income_2019: int  # per-capita net yuan
    cadre_id: str | None  # pairing cadre (帮扶干部), for registered households
    head_name: str
    citizen_id: str
    phone: str | None
    case: str | None = None  # the seed's named cases
    people: tuple[Person, ...] = ()  # the members one by one (registry v3); `members` counts them

    @property
    def annual_income(self) -> int:
        return self.income_2019 * self.members.count


@dataclass(frozen=True, slots=True)
class Cadre:
    cadre_id: str
    township: str
    village: str | None
    department: str
    max_households: int
    name: str
    phone: str | None


@dataclass(frozen=True)
class County:
    townships: tuple[Township, ...]
    departments: tuple[str, ...]
    households: tuple[Household, ...]
    cadres: tuple[Cadre, ...]
    disaster_townships: tuple[str, ...]

    def by_id(self) -> dict[str, Household]:
        return {h.household_id: h for h in self.households}


# The seed's named cases, at fixed places and with fixed ids whatever the seed or scale.
CASE_UREMIA = "uremia"  # 42, uremia, son in primary school, lifted 2015, on 低保
CASE_MARGINAL_NEIGHBOUR = "marginal_neighbour"  # same group, put under monitoring the same day
CASE_CHICKEN_FARMER = "chicken_farmer"  # 100+ chickens unsold in the epidemic
CASE_NOT_LIFTED = "not_lifted"  # the county's one household of 3 not yet lifted


def build_county(parameters: SimulationParameters) -> County:
    """Draw the county for `parameters`: same parameters, same county."""
    rng = rng_for(parameters.seed, "county")
    townships = _townships(rng)
    departments = _departments(townships)
    by_name = {t.name: t for t in townships}
    # Streets are urban: fewer lifted households live there.
    weights = [0.35 if t.name.endswith("街道") else 1.0 for t in townships]

    counters: dict[tuple[int, int, int], int] = {}

    def place(township: Township, village: int, group: int) -> tuple[str, str, str, str]:
        key = (township.index, village, group)
        counters[key] = counters.get(key, 0) + 1
        household_id = f"DJ{township.index + 1:02d}{village + 1:02d}{group + 1:02d}"
        household_id += f"{counters[key]:04d}"
        return household_id, township.name, township.villages[village].name, f"{group + 1}组"

    def random_place() -> tuple[str, str, str, str]:
        township = rng.choices(townships, weights)[0]
        village = rng.randrange(len(township.villages))
        group = rng.randrange(township.villages[village].groups)
        return place(township, village, group)

    households: list[Household] = []
    heyou, dashi = by_name["鹤游镇"], by_name["大石乡"]
    day = parameters.calendar.start  # the county table's day: members are counted on it
    cases = [with_counts(h, day) for h in _named_cases(place, heyou, dashi)]
    households.extend(cases)

    lifted_generic = parameters.lifted_households - sum(
        1 for h in cases if h.registration == LIFTED
    )
    people_generic = parameters.lifted_people - sum(
        h.members.count for h in cases if h.registration == LIFTED
    )
    sizes = _sizes(rng, lifted_generic, max(lifted_generic, people_generic))
    for size in sizes:
        households.append(_household(rng, len(households), random_place(), LIFTED, size, day))
    for _ in range(parameters.not_lifted_households - 1):
        households.append(_household(rng, len(households), random_place(), NOT_LIFTED, 3, day))
    never = parameters.never_registered_households - 1  # the marginal neighbour is one
    for size in _sizes(rng, never, round(never * 3.1)):
        households.append(
            _household(rng, len(households), random_place(), NEVER_REGISTERED, size, day)
        )

    cadres, pairing = _cadres(rng, parameters.cadres, townships, weights, departments, households)
    households = [
        _with_cadre(h, pairing.get(h.household_id)) if h.registration != NEVER_REGISTERED else h
        for h in households
    ]
    hit = rng.sample(
        [t.name for t in townships], min(parameters.rates.disaster_townships, len(townships))
    )
    return County(tuple(townships), departments, tuple(households), cadres, tuple(sorted(hit)))


def _townships(rng: random.Random) -> list[Township]:
    townships = []
    for index, name in enumerate(TOWNSHIPS):
        count = rng.randint(6, 10) if name.endswith("街道") else rng.randint(9, 16)
        names = list(SEED_VILLAGES.get(name, ()))
        while len(names) < count:
            candidate = rng.choice(_VILLAGE_FIRST) + rng.choice(_VILLAGE_SECOND) + "村"
            if candidate not in names:
                names.append(candidate)
        villages = tuple(
            Village(v, max(7, rng.randint(5, 12)) if v in SEED_VILLAGES.get(name, ()) else 0)
            for v in names
        )
        villages = tuple(v if v.groups else Village(v.name, rng.randint(4, 12)) for v in villages)
        townships.append(Township(index, name, villages))
    return townships


def _departments(townships: list[Township]) -> tuple[str, ...]:
    names = [t.name + ("办事处" if t.name.endswith("街道") else "人民政府") for t in townships]
    names.extend(_COUNTY_DEPARTMENTS)
    n = 1
    while len(names) < SEED_DEPARTMENTS:
        names.append(f"县属单位{n:02d}")
        n += 1
    return tuple(names[:SEED_DEPARTMENTS])


def _sizes(rng: random.Random, households: int, people: int) -> list[int]:
    """Household sizes summing exactly to `people` (the seed's totals at scale 1)."""
    if households <= 0:
        return []
    sizes = rng.choices(range(1, 8), [8, 22, 27, 23, 13, 5, 2], k=households)
    total = sum(sizes)
    while total != people:
        i = rng.randrange(households)
        if total > people and sizes[i] > 1:
            sizes[i] -= 1
            total -= 1
        elif total < people and sizes[i] < 9:
            sizes[i] += 1
            total += 1
    return sizes


def with_counts(household: Household, day: dt.date) -> Household:
    """`household` with the counts its member list gives on `day` (the door checks them)."""
    return replace(household, members=Members(*astuple(composition_on(household.people, day))))


def _household(
    rng: random.Random,
    index: int,
    placed: tuple[str, str, str, str],
    registration: str,
    size: int,
    day: dt.date,
) -> Household:
    household_id, township, village, group = placed
    if registration == NEVER_REGISTERED:
        head_birth_year = int(rng.triangular(1945, 2000, 1972))
    else:
        head_birth_year = int(rng.triangular(1938, 1996, 1960))
    person = _fake_person(rng, index)
    surname = str(person["head_name"]).split("某")[0]
    people = draw_people(rng, size, head_birth_year, surname, index)
    members = Members(*astuple(composition_on(people, day)))
    if members.labour == 0 and members.weak_labour == 0:
        livelihood = "TRANSFERS"
    else:
        livelihood = rng.choices(
            ["MIGRANT_WORK", "FARMING", "LIVESTOCK", "LOCAL_WAGES", "MIXED", "BUSINESS"],
            [30, 20, 10, 13, 22, 5],
        )[0]
    if registration == LIFTED:
        income = max(3_000, round(rng.lognormvariate(9.26, 0.30)))  # median ~10,500 yuan
        allowance = rng.random() < (0.6 if livelihood == "TRANSFERS" else 0.12)
        housing = "SAFE" if rng.random() < 0.97 else "UNKNOWN"
        water = "SAFE" if rng.random() < 0.96 else "UNKNOWN"
        lifted_year = rng.choice([2015, 2016, 2016, 2017, 2017, 2018, 2018, 2019])
    elif registration == NOT_LIFTED:
        income, allowance, housing, water, lifted_year = 3_600, True, "SAFE", "SAFE", None
    else:
        income = max(3_500, round(rng.lognormvariate(9.68, 0.45)))  # median ~16,000 yuan
        allowance = rng.random() < 0.02
        housing = "SAFE" if rng.random() < 0.7 else "UNKNOWN"
        water = "SAFE" if rng.random() < 0.75 else "UNKNOWN"
        lifted_year = None
    return Household(
        household_id=household_id,
        index=index,
        township=township,
        village=village,
        village_group=group,
        registration=registration,
        lifted_year=lifted_year,
        members=members,
        head_birth_year=head_birth_year,
        livelihood=livelihood,
        minimum_living_allowance=allowance,
        housing=housing,
        water=water,
        income_2019=income,
        cadre_id=None,
        **person,
        people=people,
    )


def _fake_person(rng: random.Random, index: int) -> dict[str, str | None]:
    return {
        "head_name": f"{rng.choice(_SURNAMES)}某{index:05d}",
        "citizen_id": f"FAKE{index:014d}",
        "phone": f"000{index:08d}" if rng.random() < 0.6 else None,
    }


def _named_cases(place, heyou: Township, dashi: Township) -> list[Household]:
    """The seed's households, identical under every seed and scale."""
    shuijing = [v.name for v in heyou.villages].index("水井村")
    xinxi = [v.name for v in heyou.villages].index("新溪村")
    uremia_id, *where = place(heyou, shuijing, 6)  # 7组
    neighbour_id, *where_neighbour = place(heyou, shuijing, 6)
    farmer_id, *where_farmer = place(heyou, xinxi, 2)
    not_lifted_id, *where_not_lifted = place(dashi, 0, 0)
    return [
        Household(
            uremia_id,
            0,
            *where,
            registration=LIFTED,
            lifted_year=2015,
            # The man (uremia, cannot do heavy work), his wife, their son in primary school.
            members=Members(3, 1, 1, 1, 0, 1, 0),
            head_birth_year=1978,
            livelihood="TRANSFERS",
            minimum_living_allowance=True,
            housing="SAFE",
            water="SAFE",
            income_2019=6_400,
            cadre_id=None,
            head_name="周某（样例）",
            citizen_id="FAKE00000000000000",
            phone=None,
            case=CASE_UREMIA,
            people=named(
                [
                    ("HEAD", "1978-03", "MALE", "WEAK", "SERIOUS_ILLNESS", None, "NONE"),
                    ("SPOUSE", "1980-07", "FEMALE", "FULL", "HEALTHY", None, "NONE"),
                    ("CHILD", "2011-09", "MALE", "NONE", "HEALTHY", None, "PRIMARY"),
                ],
                "周",
                0,
            ),
        ),
        Household(
            neighbour_id,
            1,
            *where_neighbour,
            registration=NEVER_REGISTERED,
            lifted_year=None,
            members=Members(4, 2, 0, 1, 0, 0, 1),
            head_birth_year=1968,
            livelihood="FARMING",
            minimum_living_allowance=False,
            housing="SAFE",
            water="SAFE",
            income_2019=6_300,
            cadre_id=None,
            head_name="张某（样例）",
            citizen_id="FAKE00000000000001",
            phone=None,
            case=CASE_MARGINAL_NEIGHBOUR,
            people=named(
                [
                    ("HEAD", "1968-02", "MALE", "FULL", "HEALTHY", None, "NONE"),
                    ("SPOUSE", "1970-05", "FEMALE", "FULL", "HEALTHY", None, "NONE"),
                    ("CHILD", "2006-10", "FEMALE", "NONE", "HEALTHY", None, "JUNIOR"),
                    ("PARENT", "1944-08", "FEMALE", "NONE", "HEALTHY", None, "NONE"),
                ],
                "张",
                1,
            ),
        ),
        Household(
            farmer_id,
            2,
            *where_farmer,
            registration=LIFTED,
            lifted_year=2017,
            members=Members(4, 2, 0, 1, 0, 0, 1),
            head_birth_year=1966,
            livelihood="LIVESTOCK",
            minimum_living_allowance=False,
            housing="SAFE",
            water="SAFE",
            income_2019=9_800,
            cadre_id=None,
            head_name="吴某（样例）",
            citizen_id="FAKE00000000000002",
            phone="00000000002",
            case=CASE_CHICKEN_FARMER,
            people=named(
                [
                    ("HEAD", "1966-04", "MALE", "FULL", "HEALTHY", None, "NONE"),
                    ("SPOUSE", "1967-09", "FEMALE", "FULL", "HEALTHY", None, "NONE"),
                    ("CHILD", "2008-03", "MALE", "NONE", "HEALTHY", None, "PRIMARY"),
                    ("PARENT", "1940-11", "MALE", "NONE", "HEALTHY", None, "NONE"),
                ],
                "吴",
                2,
            ),
        ),
        Household(
            not_lifted_id,
            3,
            *where_not_lifted,
            registration=NOT_LIFTED,
            lifted_year=None,
            members=Members(3, 0, 1, 0, 1, 1, 1),
            head_birth_year=1952,
            livelihood="TRANSFERS",
            minimum_living_allowance=True,
            housing="SAFE",
            water="SAFE",
            income_2019=3_600,
            cadre_id=None,
            head_name="陈某（样例）",
            citizen_id="FAKE00000000000003",
            phone=None,
            case=CASE_NOT_LIFTED,
            people=named(
                [
                    ("HEAD", "1952-06", "MALE", "NONE", "CHRONIC_ILLNESS", None, "NONE"),
                    ("SPOUSE", "1958-05", "FEMALE", "WEAK", "HEALTHY", None, "NONE"),
                    ("CHILD", "1988-02", "MALE", "NONE", "DISABILITY", 1, "NONE"),
                ],
                "陈",
                3,
            ),
        ),
    ]


def _cadres(
    rng: random.Random,
    count: int,
    townships: list[Township],
    weights: list[float],
    departments: tuple[str, ...],
    households: list[Household],
) -> tuple[tuple[Cadre, ...], dict[str, str]]:
    """Cadres spread over townships like the households, and each registered household paired."""
    township_names = [t.name for t in townships]
    placed: list[tuple[str, str]] = []
    county_departments = departments[len(townships) :]
    for n in range(count):
        township = (
            township_names[n] if n < len(townships) else rng.choices(townships, weights)[0].name
        )
        if rng.random() < 0.4:
            department = departments[township_names.index(township)]
        else:
            department = rng.choice(county_departments)
        placed.append((township, department))

    by_township: dict[str, list[int]] = {}
    for i, (township, _) in enumerate(placed):
        by_township.setdefault(township, []).append(i)
    paired: dict[str, str] = {}
    load = [0] * count
    first_village: list[str | None] = [None] * count
    cursor: dict[str, int] = {}
    for household in households:
        if household.registration == NEVER_REGISTERED:
            continue
        pool = by_township.get(household.township) or list(range(count))
        i = pool[cursor.get(household.township, 0) % len(pool)]
        cursor[household.township] = cursor.get(household.township, 0) + 1
        paired[household.household_id] = f"C{i + 1:05d}"
        load[i] += 1
        first_village[i] = first_village[i] or household.village
    cadres = []
    for i, (township, department) in enumerate(placed):
        limit = max(load[i] + 1, rng.choice([3, 4, 5, 5, 5, 6, 8]))
        cadres.append(
            Cadre(
                cadre_id=f"C{i + 1:05d}",
                township=township,
                village=first_village[i],
                department=department,
                max_households=limit,
                name=f"干部{rng.choice(_SURNAMES)}某{i + 1:05d}",
                phone=f"000{90_000_000 + i:08d}" if rng.random() < 0.8 else None,
            )
        )
    return tuple(cadres), paired


def _with_cadre(household: Household, cadre_id: str | None) -> Household:
    return replace(household, cadre_id=cadre_id)
