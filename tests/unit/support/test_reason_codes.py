"""Every reason code monitoring can emit is answered in the catalogue's [reasons] or listed in
`unanswered_reasons` on purpose; and the catalogue names no code monitoring never emits."""

from __future__ import annotations

from services.contract.catalogue import load_catalogue
from services.monitoring.domain import reasons, rules
from services.monitoring.domain.events import CHECKS


def monitoring_codes() -> set[str]:
    """Declared once in monitoring's domain: the rules raise no other code (they refuse one)."""
    return set(reasons.REASON_CODES)


def test_the_declared_codes_cover_the_rules():
    codes = monitoring_codes()
    assert {"income_below_line", "rigid_expenditure", "unsold_produce", "no_labour"} <= codes
    assert {"members_seeking_work", "students_without_access", "serious_illness"} <= codes
    assert set(rules.CAUSE_CODES.values()) | {"other_hardship"} <= codes
    assert {f"guarantee_{check}" for check in CHECKS} <= codes  # rules: f"guarantee_{kind}"
    assert {"invalid_transition", "policy_exception"} <= codes  # workflow notes
    assert len(reasons.REASON_CODES) == len(codes)  # each declared once


def test_every_code_monitoring_emits_is_mapped_or_deliberately_unanswered():
    catalogue = load_catalogue()
    gaps = monitoring_codes() - set(catalogue.reasons) - catalogue.unanswered_reasons
    assert not gaps, f"map these in [reasons] or list them in unanswered_reasons: {sorted(gaps)}"


def test_the_catalogue_names_only_codes_monitoring_emits():
    catalogue = load_catalogue()
    named = set(catalogue.reasons) | catalogue.unanswered_reasons
    assert not named - monitoring_codes()
