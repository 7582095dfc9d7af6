"""Records valid in Avro but impossible in the domain are refused at translation (dead-lettered)."""

from __future__ import annotations

import pytest

from services.monitoring.adapters.avro_translation import Untranslatable, event_from
from tests.unit.monitoring.households import at, registry


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
