"""`tokens issue --township` accepts only townships the registries name."""

from __future__ import annotations

import pytest

from services.platform.config import SettingsError
from services.visits.townships import check_townships

KNOWN = {"Gaofeng", "Heyou", "Shaping"}


def test_known_townships_pass():
    check_townships(["Gaofeng", "Heyou"], KNOWN)
    check_townships([], set())


def test_an_unknown_township_is_refused_with_the_known_ones_and_near_spellings():
    with pytest.raises(SettingsError) as refused:
        check_townships(["Gaofeng", "Gaofen"], KNOWN)
    message = str(refused.value)
    assert message.startswith("--township 'Gaofen': no registered household or cadre is in it")
    assert "did you mean Gaofeng?" in message and "known: Gaofeng, Heyou, Shaping" in message


def test_nowhere_has_no_near_spelling():
    with pytest.raises(SettingsError, match=r"'nowhere': no registered .*; known: Gaofeng"):
        check_townships(["nowhere"], KNOWN)


def test_an_empty_read_model_says_what_to_do_first():
    with pytest.raises(SettingsError, match="knows no township yet; import the household table"):
        check_townships(["Gaofeng"], set())
