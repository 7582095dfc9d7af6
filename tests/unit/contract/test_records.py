"""The tests' record builders (tests/records.py) against the real contract: they cannot drift."""

from __future__ import annotations

import pytest

from services.contract.codec import Codec
from tests import seed_households
from tests.avro_strategies import normalised
from tests.records import BUILDERS, at, registry

CODEC = Codec.default()
SEEDS = [
    seed_households.zhou_uremia,
    seed_households.wu_chickens,
    seed_households.wu_sales_aid,
    seed_households.marginal,
    seed_households.sudden_hardship,
    seed_households.monitored_then_eliminated,
    seed_households.policy_card_fixed_on_the_spot,
]


def test_every_event_type_of_the_contract_has_a_builder():
    assert set(BUILDERS) == {name.rsplit(".", 1)[-1] for name in CODEC.registry.current}


@pytest.mark.parametrize("event_type", sorted(BUILDERS))
def test_a_builders_default_record_fills_every_field_and_encodes(event_type):
    built_type, record = BUILDERS[event_type]()
    assert built_type == event_type
    fields = CODEC.registry.schema(event_type).parsed["fields"]
    assert set(record) == {field["name"] for field in fields}  # complete: no schema default used
    assert CODEC.validate(event_type, record) == []
    decoded = CODEC.decode(CODEC.encode(event_type, record))
    assert decoded.event_type == f"shouwang.events.{event_type}"
    assert normalised(decoded.record) == normalised(record)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda seed: seed.__name__)
def test_every_seed_record_encodes(seed):
    for event_type, record in seed():
        assert CODEC.validate(event_type, record) == [], (event_type, record["event_id"])
        CODEC.encode(event_type, record)


def test_ids_are_the_same_on_every_run_and_differ_by_label():
    first, again = registry("h-1", at("2020-05-16")), registry("h-1", at("2020-05-16"))
    other = registry("h-1", at("2020-05-16"), label="registry/correction")
    assert first[1]["event_id"] == again[1]["event_id"] != other[1]["event_id"]


def test_a_field_the_record_does_not_have_is_refused():
    with pytest.raises(TypeError, match="no field labor"):
        registry("h-1", at("2020-05-16"), labor=2)
