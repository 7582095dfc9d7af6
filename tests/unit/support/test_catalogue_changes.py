"""Catalogue digests and the change summary recorded with each activation."""

from __future__ import annotations

import copy
import tomllib

import pytest

from services.contract.catalogue import DEFAULT_CATALOGUE, CatalogueError, parse_catalogue
from services.contract.catalogue_changes import (
    Change,
    changes,
    content_sha256,
    digest,
    parse_content,
)

CONTENT = DEFAULT_CATALOGUE.read_bytes()


def document() -> dict:
    return tomllib.loads(CONTENT.decode("utf-8"))


def digest_of(doc: dict, content: bytes):
    return digest(parse_catalogue(doc, "test"), content)


BASE = digest_of(document(), CONTENT)


def test_the_content_hash_is_the_file_bytes_sha256():
    import hashlib

    assert BASE.content_sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert content_sha256(b"") == hashlib.sha256(b"").hexdigest()


def test_the_first_activation_has_no_changes_and_the_same_content_none():
    assert changes(None, BASE) == []
    assert changes(BASE, digest_of(document(), CONTENT)) == []


def test_a_comment_only_edit_is_text_only():
    edited = CONTENT + b"\n# a note for the next reader\n"
    assert changes(BASE, digest_of(document(), edited)) == [Change("TEXT_ONLY", "")]


def test_capacity_changes_name_the_pool_and_both_numbers():
    doc = document()
    pool = next(p for p in doc["pools"] if p["id"] == "public-welfare-jobs")
    pool["capacity"] = 520
    housing = next(p for p in doc["pools"] if p["id"] == "housing-repair")
    housing["capacity_by_township"] = {"大石乡": 20}
    found = changes(BASE, digest_of(doc, b"v2"))
    assert found == [
        Change("POOL_CAPACITY_CHANGED", "housing-repair", "大石乡 - -> 20"),
        Change("POOL_CAPACITY_CHANGED", "public-welfare-jobs", "capacity 498 -> 520"),
    ]


def test_measures_added_removed_and_changed_are_listed_by_id():
    doc = document()
    monitored = next(
        m for m in doc["measures"] if m.get("trigger") == "monitored" and m["type"] != "PAIRING"
    )
    added = copy.deepcopy(monitored)
    added["id"] = "extra.measure"
    doc["measures"].append(added)
    removed = next(m for m in doc["measures"] if m["id"] == "sales.produce-buyers")
    doc["measures"].remove(removed)
    doc["reasons"] = {
        code: [i for i in ids if i != removed["id"]]
        for code, ids in doc["reasons"].items()
        if [i for i in ids if i != removed["id"]]
    }
    changed = next(m for m in doc["measures"] if m["id"] == "medical.serious-illness")
    changed["priority"] = changed["priority"] + 1
    found = changes(BASE, digest_of(doc, b"v2"))
    assert Change("MEASURE_ADDED", "extra.measure") in found
    assert Change("MEASURE_REMOVED", "sales.produce-buyers") in found
    assert Change("MEASURE_CHANGED", "medical.serious-illness") in found
    assert Change("SECTION_CHANGED", "reasons") in found
    assert not [c for c in found if c.change.startswith("POOL")]
    assert found == sorted(found, key=lambda c: ("MEASURE_ADDED", "MEASURE_REMOVED",
                                                 "MEASURE_CHANGED", "SECTION_CHANGED"
                                                 ).index(c.change))  # fmt: skip


def test_pools_added_and_removed_carry_their_capacity():
    doc = document()
    doc["pools"].append({"id": "new-pool", "scope": "county", "capacity": 7})
    after = digest_of(doc, b"v2")
    assert changes(BASE, after) == [Change("POOL_ADDED", "new-pool", "capacity 7")]
    assert changes(after, BASE) == [Change("POOL_REMOVED", "new-pool", "capacity 7")]


def test_a_pool_change_other_than_capacity_is_pool_changed():
    doc = document()
    pool = next(p for p in doc["pools"] if p["id"] == "workshop-jobs")
    pool["unit"] = "place"
    assert changes(BASE, digest_of(doc, b"v2")) == [Change("POOL_CHANGED", "workshop-jobs")]


def test_a_serving_rule_change_is_a_section_change():
    doc = document()
    doc["catalogue"]["serve_workflows"] = ["MONITORED"]
    assert changes(BASE, digest_of(doc, b"v2")) == [Change("SECTION_CHANGED", "serve_workflows")]


def test_digests_do_not_depend_on_the_order_of_entries():
    doc = document()
    doc["pools"].reverse()
    doc["measures"].reverse()
    assert changes(BASE, digest_of(doc, CONTENT)) == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"[catalogue\nid = 1", "not valid TOML"),
        (b'[catalogue]\nid = "x"\n', "serve_workflows"),
    ],
)
def test_bad_content_is_refused_with_where_and_why(content, problem):
    with pytest.raises(CatalogueError) as caught:
        parse_content(content, "bad.toml")
    assert caught.value.source == "bad.toml"
    assert problem in str(caught.value)
