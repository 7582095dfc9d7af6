"""The seed's households as contract records, one story each: the same records feed the pure
fold (through avro_translation), the agents and the real broker, so a scenario means the same
thing in unit, agent and integration tests."""

from __future__ import annotations

from tests.records import (
    Record,
    approved,
    at,
    diagnosis,
    expense,
    hardship,
    income,
    measure,
    member,
    registry,
    visit,
)


def zhou_uremia(household_id: str = "500231-zhou") -> list[Record]:
    """Seed: 42, uremia, a son in primary school, minimum living allowance, 10% self-pay of
    medical costs; lifted 2015; 80 pomelo seedlings (fruit from 2021) and 50 ducklings."""
    return [
        registry(
            household_id,
            at("2019-12-31"),
            # the head, 42 in May 2020, too ill for full work; his son in primary school
            people=[
                member("1", "1978-03", labour="WEAK", health="SERIOUS_ILLNESS"),
                member("2", "2011-09", relation="CHILD", labour="NONE", schooling="PRIMARY"),
            ],
            livelihood="TRANSFERS",
            allowance=True,
            baseline=(2019, 6100),
        ),
        measure(
            household_id,
            at("2019-11-20"),
            "m-pomelo",
            "DELIVERED",
            "INDUSTRY",
            "industry.fruit-seedlings",
        ),
        measure(
            household_id,
            at("2020-04-28"),
            "m-ducklings",
            "DELIVERED",
            "INDUSTRY",
            "industry.poultry",
        ),
        # the health-insurance feed: his share of the dialysis bills, and the diagnosis
        hardship(
            household_id,
            at("2020-05-14"),
            "ILLNESS",
            hardship_id="uremia",
            expense=expense(7200, "MEDICAL"),
            diagnosis=diagnosis("SERIOUS_ILLNESS", "1"),
        ),
        visit(
            household_id, at("2020-05-16", 15), visit_id="v-0516", income=5600, causes=("ILLNESS",)
        ),
    ]


def wu_chickens(household_id: str = "500231-wu") -> list[Record]:
    """Seed: lifted poultry farmer, 100+ chickens unsold in the epidemic; sales aid found buyers."""
    return [
        registry(
            household_id,
            at("2019-12-31"),
            count=3,
            labour=2,
            livelihood="LIVESTOCK",
            baseline=(2019, 9000),
        ),
        visit(
            household_id,
            at("2020-03-10"),
            visit_id="v-0310",
            causes=("EPIDEMIC",),
            unsold=("chickens", 110, "head", 8800),
        ),
    ]


def wu_sales_aid(household_id: str = "500231-wu") -> list[Record]:
    return [
        measure(
            household_id,
            at("2020-03-20"),
            "m-sales",
            "DELIVERED",
            "SALES_AID",
            "sales.produce-buyers",
        )
    ]


def marginal(household_id: str = "h-marginal") -> list[Record]:
    """Never registered, income below the 6,000-yuan line."""
    return [
        registry(household_id, at("2019-12-31"), registration="NEVER_REGISTERED"),
        income(household_id, at("2020-05-10"), 5400, end="2020-04-30"),
    ]


def sudden_hardship(household_id: str = "h-sudden") -> list[Record]:
    """Never registered, 27,000 yuan household income in 2020, a 31,000-yuan bill in 2021."""
    return [
        registry(
            household_id,
            at("2020-12-31"),
            registration="NEVER_REGISTERED",
            count=3,
            labour=2,
            baseline=(2020, 9000),
        ),
        hardship(household_id, at("2021-03-02"), "ILLNESS", 31000, hardship_id="bill"),
    ]


def monitored_then_eliminated(household_id: str = "h-elim") -> list[Record]:
    """Included 16 May 2020 after the entry procedure; a job, income above the line since
    mid-2019; the exit procedure opened on 18 November, once the conditions hold; eliminated on
    25 November."""
    return [
        registry(household_id, at("2019-12-31"), count=3, labour=2, baseline=(2019, 5200)),
        *approved(household_id, at("2020-05-16"), "INCLUDE", "UNSTABLE_LIFTED"),
        measure(
            household_id,
            at("2020-06-01"),
            "m-jobs",
            "DELIVERED",
            "MIGRANT_WORK",
            "employment.migrant-work",
        ),
        income(household_id, at("2020-06-05"), 7600, start="2019-06-01", end="2020-05-31"),
        visit(household_id, at("2020-08-20"), visit_id="v-aug", income=7800),
        *approved(household_id, at("2020-11-25"), "ELIMINATE"),
    ]


def policy_card_fixed_on_the_spot(household_id: str = "h-card") -> list[Record]:
    return [
        registry(household_id, at("2019-12-31"), baseline=(2019, 9000)),
        visit(
            household_id,
            at("2020-05-15"),
            visit_id="v-515",
            card="POSTED",
            problems=(("POLICY_CARD", "明白卡掉了, reposted", True),),
            living="UNTIDY",
        ),
    ]


def general_key_2020(household_id: str = "h-general-key") -> list[Record]:
    """Never registered, 5,400 yuan a head (below the 6,000-yuan line); included as a general key
    farm household on 10 June 2020 under dianjiang-2020 (the 2021 policy has no such category)."""
    return [
        registry(household_id, at("2019-12-31"), registration="NEVER_REGISTERED"),
        income(household_id, at("2020-05-10"), 5400, end="2020-04-30"),
        *approved(household_id, at("2020-06-10"), "INCLUDE", "GENERAL_KEY"),
    ]


def general_key_with_a_bill(household_id: str = "h-general-bill") -> list[Record]:
    """As `general_key_2020`, with a 31,000-yuan illness bill open on 2021-01-01 against
    16,200 yuan of household income: an expenditure shock, 2021's sudden severe hardship."""
    return [
        *general_key_2020(household_id),
        hardship(household_id, at("2020-11-02"), "ILLNESS", 31000, hardship_id="bill"),
    ]
