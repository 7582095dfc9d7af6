"""The input grammar of the ingest API: one rule per field, checked at the door and published.

The Avro schemas say what type each field has; this module says which values of that type a
client may send: identifiers by an ASCII pattern, every string with a maximum length and no
control characters (free text keeps tab and newline), numbers and counts within bounds, arrays
with a maximum number of items, dates and timestamps from the day the registration system
began. The same `Rule` objects are checked here (`grammar_problems`) and written into the
OpenAPI document (`services/visits/entrypoints/openapi.py`), so a client can validate before
sending and a fuzzer can tell valid from invalid: a rule the server checks and the document
does not state, or the other way round, cannot exist. Patterns are written in the subset both
Python's `re` and ECMA-262 (JSON Schema's dialect) read alike: character classes with `\\u`
escapes, no look-around.

Rules that relate fields to each other (labour cannot exceed members, a LIFTED household has a
lifted year) and the future-skew bound of `occurred_at` (it needs the request's time) stay in
`validation.py`. Pure: no I/O, no clock.

Long because the rules, the walker that names what breaks them and the check compiled from the
same rules that shortcuts it (every record of a batch passes through it) belong together: a
rule changed in one place is changed in all three.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Problems = list[tuple[str, str]]

# The registers of targeted poverty alleviation (建档立卡) were built from 2014: no record of
# this system describes an earlier day. Years (lifted, baseline income) may name 2013, the
# year whose incomes the first registers used.
EARLIEST_DATE = dt.date(2014, 1, 1)
FIRST_YEAR = 2013
LAST_YEAR = 2099  # dates name a year up to this one; occurred_at is bounded by the clock too
MAX_ID = 64
MAX_NAME = 200  # township, village, group, department, pool, item and person names
MAX_LINE = 1000  # one line of an explanation (a measure's reasons)
MAX_TEXT = 4000  # free-text notes and descriptions
MAX_MEMBERS = 99  # people in one household
MAX_YUAN = 100_000_000  # any amount of money in one record, whole yuan
MAX_QUANTITY = 1_000_000_000
MAX_ITEMS = 50  # problems found on a visit, quantities of a measure
MAX_REASONS = 20

# C0, DEL and C1 (free text keeps tab and newline). Lone surrogates never get this far (the
# JSON reader refuses them), and naming them here would make an ECMA-262 validator, which sees
# UTF-16 code units, refuse every character beyond the BMP that Python accepts.
_CONTROLS = "\\u0000-\\u001f\\u007f-\\u009f"
_TEXT_CONTROLS = "\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f"
_YEAR = "(201[4-9]|20[2-9][0-9])"
_DAY = _YEAR + "-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DATE_PATTERN = f"^{_DAY}$"
TIMESTAMP_PATTERN = (
    f"^{_DAY}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{{1,9}})?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


@dataclass(frozen=True)
class Rule:
    """What values of one field a client may send, as checks and as JSON Schema keywords."""

    pattern: str | None = None
    max_length: int | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    max_items: int | None = None
    message: str = ""  # what the pattern asks for, in words
    _compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def keywords(self) -> dict[str, Any]:
        """The JSON Schema keywords that state this rule."""
        named = {
            "pattern": self.pattern,
            "maxLength": self.max_length,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "maxItems": self.max_items,
        }
        return {k: v for k, v in named.items() if v is not None}

    def fits(self, value: Any) -> bool:
        """Whether a value fits the rule (a value of another type than the rule's is left to the
        Avro validation: it fits here)."""
        if isinstance(value, str):
            return (self.max_length is None or len(value) <= self.max_length) and (
                self._compiled is None or self._compiled.fullmatch(value) is not None
            )
        if isinstance(value, list | tuple):
            return self.max_items is None or len(value) <= self.max_items
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True
        low, high = self.minimum, self.maximum
        return (low is None or value >= low) and (high is None or value <= high)

    def problems(self, value: Any) -> list[str]:
        """What is wrong with a value of the right type, in words; empty when it fits."""
        if self.fits(value):
            return []
        if isinstance(value, str):
            if self.max_length is not None and len(value) > self.max_length:
                return [f"at most {self.max_length} characters"]
            return [self.message]
        if isinstance(value, list | tuple):
            return [f"at most {self.max_items} items"]
        low, high = self.minimum, self.maximum
        if low in (0, 1) and value < low:
            return ["must not be negative" if low == 0 else "must be at least 1"]
        return [f"must be between {low} and {high}"]


def _text(max_length: int, multiline: bool, blank: bool) -> Rule:
    controls = _TEXT_CONTROLS if multiline else _CONTROLS
    allowed = f"[^{controls}]"
    if blank:
        pattern = f"^{allowed}*$"
        message = "must not contain control characters" + (
            " other than tab and newline" if multiline else ""
        )
    else:
        # At least one character that is neither space nor control, anywhere.
        pattern = f"^{allowed}*[^\\s{controls}]{allowed}*$"
        message = "must not be blank or contain control characters" + (
            " other than tab and newline" if multiline else ""
        )
    return Rule(pattern=pattern, max_length=max_length, message=message)


def _count(low: int, high: int) -> Rule:
    return Rule(minimum=low, maximum=high)


ID = Rule(
    pattern="^[A-Za-z0-9][A-Za-z0-9._:-]*$",
    max_length=MAX_ID,
    message=f"must be 1-{MAX_ID} ASCII letters, digits or . _ : - (without spaces), "
    "starting with a letter or digit",
)
NAME = _text(MAX_NAME, multiline=False, blank=False)
LINE = _text(MAX_LINE, multiline=False, blank=True)
TEXT = _text(MAX_TEXT, multiline=True, blank=True)
DESCRIPTION = _text(MAX_TEXT, multiline=True, blank=False)
CITIZEN_ID = Rule(
    pattern="^[0-9A-Za-z]+$", max_length=32, message="must be 1-32 ASCII letters or digits"
)
PHONE = Rule(
    pattern="^[+]?[0-9][0-9 -]*$",
    max_length=32,
    message="must be digits (spaces and hyphens allowed), optionally after a leading +",
)
YUAN = Rule(minimum=0, maximum=MAX_YUAN)
PEOPLE = _count(0, MAX_MEMBERS)

# By the field's path, array items as `name[]` (the most specific), else by its name.
BY_PATH: dict[str, Rule] = {
    "members.count": _count(1, MAX_MEMBERS),
    "members_counted": _count(1, MAX_MEMBERS),
    "lifted_year": _count(FIRST_YEAR, LAST_YEAR),
    "baseline_income.year": _count(FIRST_YEAR, LAST_YEAR),
    "head_birth_year": _count(1900, LAST_YEAR),
    "members.people": Rule(max_items=MAX_MEMBERS),
    "members.people[].birth_year": _count(1900, LAST_YEAR),
    "members.people[].birth_month": _count(1, 12),
    "members.people[].disability_grade": _count(1, 4),
    "members.people[].migrant_work_months": _count(0, 12),
    "personal.members": Rule(max_items=MAX_MEMBERS),
    "diagnosis.member_index": _count(0, MAX_MEMBERS - 1),
    "diagnosis.disability_grade": _count(1, 4),
    "business_yuan": Rule(minimum=-MAX_YUAN, maximum=MAX_YUAN),  # a failed project is a loss
    "problems": Rule(max_items=MAX_ITEMS),
    "quantities": Rule(max_items=MAX_ITEMS),
    "reasons": Rule(max_items=MAX_REASONS),
    "reasons[]": LINE,
    "hardship_causes": Rule(max_items=11),  # one of each cause
    "problems[].description": DESCRIPTION,
    "geo.lat": Rule(minimum=-90.0, maximum=90.0),
    "geo.lon": Rule(minimum=-180.0, maximum=180.0),
}
BY_NAME: dict[str, Rule] = {
    **dict.fromkeys(
        (
            "household_id",
            "visit_id",
            "cadre_id",
            "hardship_id",
            "measure_id",
            "catalogue_id",
            "problem_id",
            "responsible_cadre_id",
            "assessment_event_id",
            "member_id",
        ),
        ID,
    ),
    **dict.fromkeys(
        (
            "township",
            "village",
            "village_group",
            "department",
            "pool",
            "waiting_for",
            "item",
            "unit",
            "head_name",
            "name",
        ),
        NAME,
    ),
    **dict.fromkeys(("note", "description", "reason", "family_impact"), TEXT),
    "citizen_id": CITIZEN_ID,
    "phone": PHONE,
    **dict.fromkeys(
        (
            "per_capita_yuan",
            "per_capita_net_yuan",
            "wages_yuan",
            "property_yuan",
            "transfers_yuan",
            "rigid_expenditure_yuan",
            "value_yuan",
            "amount_yuan",
        ),
        YUAN,
    ),
    **dict.fromkeys(
        (
            "labour",
            "weak_labour",
            "students",
            "disabled",
            "chronically_ill",
            "elderly",
            "members_seeking_work",
            "students_learning_at_home",
            "students_without_access",
        ),
        PEOPLE,
    ),
    "quantity": _count(0, MAX_QUANTITY),
    "amount": _count(0, MAX_QUANTITY),
    "max_households": _count(0, 1000),
    "notice_days": _count(0, 366),
    "term_months": _count(1, 600),
}


def rule_for(path: str) -> Rule | None:
    """The rule of a field, by its shape path (`problems[].description`, `members.count`)."""
    return BY_PATH.get(path) or BY_NAME.get(path.rsplit(".", 1)[-1].removesuffix("[]"))


def grammar_problems(schema: Any, datum: Any, skip: frozenset[str] = frozenset()) -> Problems:
    """(field path, problem) for each value of `datum` that has the right type but breaks its
    rule; values of a wrong type are left to the Avro validation, which names them. Top-level
    fields in `skip` (the server's own) are not looked at.

    A check compiled once per schema answers the common case (every value fits) without
    building a path for each field; only a record it doubts is walked to name the problems."""
    if _fits(schema, skip)(datum):
        return []
    return walked_problems(schema, datum, skip)


def walked_problems(schema: Any, datum: Any, skip: frozenset[str] = frozenset()) -> Problems:
    """`grammar_problems` by walking `datum` field by field: the reference the compiled check
    shortcuts (tests/unit/visits/test_compiled_checks.py keeps them equal)."""
    found: Problems = []
    _walk(schema, datum, "", "", {}, found, skip)
    return found


Fits = Callable[[Any], bool]
_FITS: dict[tuple[int, frozenset[str]], tuple[Any, Fits]] = {}  # (id(schema), skip) → check


def _fits(schema: Any, skip: frozenset[str]) -> Fits:
    entry = _FITS.get((id(schema), skip))
    if entry is None or entry[0] is not schema:
        if len(_FITS) > 256:  # schemas are few and long-lived; bound it all the same
            _FITS.clear()
        definitions: dict[str, Any] = {}
        _define(schema, definitions)
        check = _compile(schema, "", definitions, (), skip) or _always
        entry = _FITS[(id(schema), skip)] = (schema, check)
    return entry[1]


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _define(schema: Any, definitions: dict[str, Any]) -> None:
    """Every named type of `schema` by its name, wherever it is defined."""
    if isinstance(schema, list):
        for branch in schema:
            _define(branch, definitions)
    elif isinstance(schema, dict):
        if schema["type"] in ("record", "enum", "fixed"):
            definitions[schema["name"]] = schema
        for sub in schema.get("fields", ()):
            _define(sub["type"], definitions)
        if schema["type"] == "array":
            _define(schema["items"], definitions)


def _compile(
    schema: Any,
    shape: str,
    definitions: dict[str, Any],
    within: tuple[str, ...],
    skip: frozenset[str] = frozenset(),
) -> Fits | None:
    """A check that passes only values `_walk` finds nothing wrong with (None: nothing to
    check). It is never laxer than the walker: a named type is checked from its definition
    even where the walker, which learns names from the value, would skip it, and a type
    within itself is left to the walker."""
    if isinstance(schema, str):
        if schema not in definitions:
            return None
        if schema in within:
            return _never  # recursive: the walker decides
        return _compile(definitions[schema], shape, definitions, (*within, schema))
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        branch = _compile(branches[0], shape, definitions, within) if branches else None
        if branch is None:
            return None
        return lambda value: value is None or branch(value)
    kind = schema["type"]
    if schema.get("logicalType") or kind not in ("record", "array"):
        return None
    if kind == "array":
        rule = rule_for(f"{shape}[]")
        items = _compile(schema["items"], f"{shape}[]", definitions, within)
        if rule is None and items is None:
            return None
        each = _field_check(rule, items)
        return lambda value: not isinstance(value, list | tuple) or all(map(each, value))
    within = (*within, schema["name"])
    prefix = f"{shape}." if shape else ""
    fields = []
    for sub in schema["fields"]:
        name = sub["name"]
        if name in skip:
            continue
        rule = rule_for(prefix + name)
        inner = _compile(sub["type"], prefix + name, definitions, within)
        if rule is not None or inner is not None:
            fields.append((name, _field_check(rule, inner)))
    if not fields:
        return None

    def record(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        get = value.get
        for name, check in fields:
            if not check(get(name)):
                return False
        return True

    return record


def _field_check(rule: Rule | None, inner: Fits | None) -> Fits:
    """A value's own rule (a missing value has none to break), then what is inside it."""
    if rule is None:
        assert inner is not None
        return inner
    fits = rule.fits
    if inner is None:
        return lambda value: value is None or fits(value)
    return lambda value: value is None or (fits(value) and inner(value))


def _walk(
    schema: Any,
    datum: Any,
    path: str,
    shape: str,
    named: dict[str, Any],
    found: Problems,
    skip: frozenset[str] = frozenset(),
) -> None:
    if isinstance(schema, str):
        if schema in named:
            _walk(named[schema], datum, path, shape, named, found)
        return
    if isinstance(schema, list):
        if datum is not None:
            for branch in schema:
                if branch != "null":
                    _walk(branch, datum, path, shape, named, found)
                    break
        return
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
    if schema.get("logicalType") or kind in ("enum", "fixed", "map"):
        return  # logical types are checked when converted; enums by Avro
    if kind == "record":
        if not isinstance(datum, dict):
            return
        prefix = f"{path}." if path else ""
        shape_prefix = f"{shape}." if shape else ""
        for sub in schema["fields"]:
            name = sub["name"]
            if name in skip:
                continue
            value = datum.get(name)
            _check(rule_for(shape_prefix + name), value, prefix + name, found)
            _walk(sub["type"], value, prefix + name, shape_prefix + name, named, found)
        return
    if kind == "array":
        if not isinstance(datum, list | tuple):
            return
        items = rule_for(f"{shape}[]")
        for index, item in enumerate(datum):
            where = f"{path}[{index}]"
            _check(items, item, where, found)
            _walk(schema["items"], item, where, f"{shape}[]", named, found)


def _check(rule: Rule | None, value: Any, where: str, found: Problems) -> None:
    if rule is not None and value is not None:
        found.extend((where, problem) for problem in rule.problems(value))
