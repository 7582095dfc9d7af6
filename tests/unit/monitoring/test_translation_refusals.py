"""Records valid in Avro but impossible in the domain are refused at translation (dead-lettered)."""

from __future__ import annotations

import pytest

from services.contract.codec import Codec
from services.contract.topics import HOUSEHOLD_REGISTRY, VISITS
from services.monitoring.adapters.avro_translation import Untranslatable, event_from
from services.monitoring.service import Input, Refusal, read_input
from tests.records import at, registry


@pytest.mark.parametrize(
    ("counts", "problem"),
    [
        ({"count": -3}, "members.count -3 < 0"),
        ({"labour": -1}, "members.labour -1 < 0"),
        ({"count": 0, "labour": 0}, "members.count 0 < 1"),
        ({"count": 2, "labour": 2, "weak_labour": 1}, "exceed members.count"),
        ({"count": 2, "elderly": 3}, "members.elderly exceeds members.count"),
    ],
)
def test_impossible_member_counts_are_refused_with_the_field(counts, problem):
    event_type, record = registry("h-impossible", at("2020-05-16"), **counts)
    with pytest.raises(Untranslatable, match=problem):
        event_from(event_type, record)


def test_a_possible_household_translates():
    event_type, record = registry("h-fine", at("2020-05-16"), count=3, labour=1, weak_labour=1)
    assert event_from(event_type, record).members.count == 3


def test_read_input_gives_what_to_apply_or_the_dead_letter_kind():
    """The agent's and replay's one reading of an input record (monitoring.service)."""
    codec = Codec.default()
    event_type, record = registry("h-read", at("2020-05-16"), count=3, labour=1)
    frame = codec.encode(event_type, record)
    read = read_input(codec, HOUSEHOLD_REGISTRY.name, b"h-read", frame)
    assert isinstance(read, Input) and read.event.household_id == "h-read"
    assert read.decoded.event_type == HOUSEHOLD_REGISTRY.event_type

    def refusal(topic: str, key: bytes, value: bytes) -> str:
        refused = read_input(codec, topic, key, value)
        assert isinstance(refused, Refusal), refused
        return refused.kind

    assert refusal(HOUSEHOLD_REGISTRY.name, b"h-other", frame) == "NOT_APPLICABLE"
    assert refusal(VISITS.name, b"h-read", frame) == "UNDECODABLE"  # another topic's type
    assert refusal(HOUSEHOLD_REGISTRY.name, b"h-read", b"not a frame") == "UNDECODABLE"
    unknown = frame[:2] + bytes(8) + frame[10:]  # a fingerprint no schema has
    assert refusal(HOUSEHOLD_REGISTRY.name, b"h-read", unknown) == "UNKNOWN_SCHEMA"
    impossible = codec.encode(*registry("h-read", at("2020-05-16"), count=2, labour=3))
    assert refusal(HOUSEHOLD_REGISTRY.name, b"h-read", impossible) == "INVALID"
