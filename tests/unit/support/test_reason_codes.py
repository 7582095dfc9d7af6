"""Every reason code monitoring can emit is answered in the catalogue's [reasons] or listed in
`unanswered_reasons` on purpose; and the catalogue names no code monitoring never emits."""

from __future__ import annotations

import ast
from pathlib import Path

from services.contract.catalogue import load_catalogue
from services.monitoring.domain import rules, workflow
from services.monitoring.domain.events import CHECKS


def _literal_codes(module, call: str, arg: int = 0) -> set[str]:
    """String literals passed as argument `arg` of calls to `call` in `module`'s source."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    codes = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == call
            and len(node.args) > arg
            and isinstance(node.args[arg], ast.Constant)
            and isinstance(node.args[arg].value, str)
        ):
            codes.add(node.args[arg].value)
    return codes


def monitoring_codes() -> set[str]:
    """Read from monitoring's code, so a new rule there fails this test until mapped here."""
    codes = _literal_codes(rules, "add") | set(rules.CAUSE_CODES.values()) | {"other_hardship"}
    codes |= {f"guarantee_{check}" for check in CHECKS}  # rules: f"guarantee_{kind}"
    notes = {"invalid_transition", "policy_exception"}  # workflow notes on the assessment
    source = Path(workflow.__file__).read_text(encoding="utf-8")
    assert all(f'"{code}"' in source for code in notes)
    codes |= notes
    return codes


def test_the_code_reader_sees_the_rules():
    codes = monitoring_codes()
    assert {"income_below_line", "rigid_expenditure", "unsold_produce", "no_labour"} <= codes
    assert {"members_seeking_work", "students_without_access", "serious_illness"} <= codes


def test_every_code_monitoring_emits_is_mapped_or_deliberately_unanswered():
    catalogue = load_catalogue()
    gaps = monitoring_codes() - set(catalogue.reasons) - catalogue.unanswered_reasons
    assert not gaps, f"map these in [reasons] or list them in unanswered_reasons: {sorted(gaps)}"


def test_the_catalogue_names_only_codes_monitoring_emits():
    catalogue = load_catalogue()
    named = set(catalogue.reasons) | catalogue.unanswered_reasons
    assert not named - monitoring_codes()
