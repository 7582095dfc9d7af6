"""Loading and validating measure catalogues."""

from __future__ import annotations

import tomllib

import pytest

from services.contract.catalogue import (
    DEFAULT_CATALOGUE,
    CatalogueError,
    load_catalogue,
    parse_catalogue,
)


def default_document() -> dict:
    return tomllib.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))


def problems_of(document: dict) -> list[tuple[str, str]]:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(document, "test")
    return caught.value.problems


def test_the_default_catalogue_holds_every_measure_type_of_the_design():
    catalogue = load_catalogue()
    types = {m.type for m in catalogue.measures}
    assert types >= {
        "INDUSTRY", "ASSET_DIVIDEND", "MIGRANT_WORK", "PUBLIC_WELFARE_JOB", "WORKSHOP_JOB",
        "MICROCREDIT", "PAIRING", "SALES_AID", "EDUCATION", "MEDICAL", "MINIMUM_LIVING",
        "HOUSING", "WATER",
    }  # fmt: skip
    assert catalogue.capacity("county:public-welfare-jobs") == 498  # seed figure
    assert catalogue.capacity("township:大石乡:housing-repair") == 15
    assert catalogue.capacity("township:大石乡:pairing") is None  # from the cadre registry
    assert [m.priority for m in catalogue.measures] == sorted(
        m.priority for m in catalogue.measures
    )


def test_every_problem_is_reported_with_where_it_is():
    document = default_document()
    document["measures"][1]["type"] = "SEEDLINGS"
    document["measures"][2]["pool"] = "no-such-pool"
    document["measures"][3]["eligible"]["labor_min"] = 1  # typo
    document["reasons"]["unsold_produce"] = ["sales.missing"]
    problems = problems_of(document)
    wheres = {where for where, _ in problems}
    assert "measures.industry.livestock.type" in wheres
    assert "measures.industry.poultry.pool" in wheres
    assert "measures.industry.fruit-seedlings.eligible.labor_min" in wheres
    assert "reasons.unsold_produce" in wheres
    assert any("sales.produce-buyers" in where for where, _ in problems)  # now unreachable


def test_microcredit_beyond_the_national_caps_is_refused():
    document = default_document()
    loan = next(m for m in document["measures"] if m["type"] == "MICROCREDIT")
    loan["amount_yuan"] = 80_000
    loan["term_months"] = 48
    loan["eligible"]["head_age_max"] = 70
    wheres = {where for where, _ in problems_of(document)}
    assert {
        "measures.credit.microcredit.amount_yuan",
        "measures.credit.microcredit.term_months",
        "measures.credit.microcredit.eligible.head_age_max",
    } <= wheres


def test_impossible_eligibility_and_bad_capacities_are_refused():
    document = default_document()
    document["measures"][1]["eligible"] = {"labour_min": 2, "labour_max": 1}
    document["pools"][1]["capacity"] = -1
    document["pools"][1]["capacity_by_township"] = {"大石乡": 3}  # county pool
    problems = problems_of(document)
    assert any("nobody is eligible" in p for _, p in problems)
    assert ("pools[1].capacity", "must be at least 0") in problems
    assert any(w == "pools[1].capacity_by_township" for w, _ in problems)


def test_a_file_that_is_not_toml_says_so(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[catalogue\nid = 1", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid TOML"):
        load_catalogue(path)


def test_pool_instances_by_scope():
    catalogue = load_catalogue()
    assert catalogue.pools["public-welfare-jobs"].instance("大石乡") == "county:public-welfare-jobs"
    assert catalogue.pools["pairing"].instance("大石乡") == "township:大石乡:pairing"
    with pytest.raises(KeyError):
        catalogue.pool_of_instance("county:pairing")  # pairing is per township
