"""The young generation raised while a server answers: at least the threshold asked for, the
older generations untouched, the process's own thresholds back when the last holder leaves."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.platform.collector import young_generation_at_least


@pytest.fixture(autouse=True)
def process_thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_raised_inside_and_restored_after_the_last_holder() -> None:
    with young_generation_at_least(5000):
        assert gc.get_threshold() == (5000, 10, 10)
        with young_generation_at_least(9000):  # a second server: the first one's stands
            assert gc.get_threshold() == (5000, 10, 10)
        assert gc.get_threshold() == (5000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_larger_threshold_is_never_lowered() -> None:
    gc.set_threshold(20_000, 5, 5)
    with young_generation_at_least(5000):
        assert gc.get_threshold() == (20_000, 5, 5)
    assert gc.get_threshold() == (20_000, 5, 5)


def test_restored_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), young_generation_at_least(5000):
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)
