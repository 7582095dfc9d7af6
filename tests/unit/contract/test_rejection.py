"""The dead-letter kinds are the contract's DeadLetterKind enum, and the checks name theirs."""

from __future__ import annotations

import pytest

from services.contract import rejection, vocabulary
from services.contract.codec import Codec
from tests.records import at, visit

CODEC = Codec.default()


def test_the_kinds_are_the_schema_enum():
    kinds = {
        rejection.UNKNOWN_SCHEMA,
        rejection.UNDECODABLE,
        rejection.INVALID,
        rejection.NOT_APPLICABLE,
    }
    assert kinds == set(vocabulary.symbols("DeadLetterKind"))


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"not a frame", rejection.UNDECODABLE),
        (None, rejection.UNDECODABLE),
        (b"\xc3\x01" + bytes(8) + b"body", rejection.UNKNOWN_SCHEMA),
    ],
)
def test_decode_names_why_a_frame_is_refused(value, kind):
    with pytest.raises(rejection.Rejected) as refused:
        rejection.decode(CODEC, value, None)
    assert refused.value.kind == kind


def test_decode_refuses_a_record_of_another_type_than_the_topics():
    frame = CODEC.encode(*visit("h-1", at("2020-05-16")))
    assert rejection.decode(CODEC, frame, "shouwang.events.VisitRecorded").record
    with pytest.raises(rejection.Rejected):
        rejection.decode(CODEC, frame, "shouwang.events.IncomeUpdated")


def test_a_record_keyed_by_another_household_is_not_applicable():
    assert rejection.check_key(b"h-1", "h-1") == b"h-1"
    with pytest.raises(rejection.Rejected) as refused:
        rejection.check_key(b"h-2", "h-1")
    assert refused.value.kind == rejection.NOT_APPLICABLE
    assert "h-2" in refused.value.reason and "h-1" in refused.value.reason
