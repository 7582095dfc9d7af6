"""Schemathesis hooks for the API fuzz test (loaded through SCHEMATHESIS_HOOKS), run with
`--checks all`: the check that every 4xx answer is the documented error shape,
application/problem+json (RFC 9457); and two checks that take the place of a built-in one
where the visits API's documented behaviour is finer than the built-in can read:

- `positive_data_acceptance_but_stated_relations`: the built-in `positive_data_acceptance`,
  except that a record valid by the document's JSON Schema may be refused (422) by a rule the
  document states in words only (`x-rules-beyond-schema`: a relation of two values, or the
  server's clock) and by nothing else. Only the visits API has such rules; the fuzz test
  excludes the built-in there (and only there), and this check stands in for it.
- `batch_accepts_only_records_that_fit`: a batch is judged record by record (207 names each
  record's status), so a negative batch is refused record by record, not as a whole: the
  built-in `negative_data_rejection` is told 207 (and 413, a batch over its maximum) are
  refusals on the batch routes, and this check proves that no record that breaks the
  document's schema was among those a batch answer accepted.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from services.visits.domain.procedure import DELIBERATION, NOTICE, TOWNSHIP

PROBLEM_JSON = "application/problem+json"
LEVELS = ("village", "township", "county")
COUNTS = ("count", "labour", "weak_labour", "students", "disabled", "chronically_ill", "elderly")
# The refusals of the rules in `x-rules-beyond-schema` (services/visits/domain/validation.py,
# BEYOND_SCHEMA), by field and message: JSON Schema cannot relate two values (a sum, an order,
# the year of a timestamp) or read the server's clock (occurred_at at most the allowed skew
# ahead of it). A message changed on the server stops matching here and the fuzz test fails:
# nothing is tolerated by accident.
BEYOND_SCHEMA = (
    ("occurred_at", "is in the future by more than the allowed clock skew of "),
    ("members.labour", "members.labour + members.weak_labour cannot exceed members.count"),
    ("members.students", "cannot exceed members.count"),
    ("members.disabled", "cannot exceed members.count"),
    ("members.chronically_ill", "cannot exceed members.count"),
    ("members.elderly", "cannot exceed members.count"),
    (
        "five_visits.students_without_access",
        "cannot exceed five_visits.students_learning_at_home",
    ),
    ("lifted_year", "must be between 2013 and the year of occurred_at"),
    ("head_birth_year", "must be between 1900 and the year of occurred_at"),
    ("baseline_income.year", "cannot be after the year of occurred_at"),
    ("period_end", "cannot be before period_start"),
    ("due_date", "cannot be before the day of occurred_at"),
    # registry v3's member list (array items as `[]`) and hardship v2's expense
    *(
        (f"members.{name}", "differs from members.people on the day of occurred_at")
        for name in COUNTS
    ),
    ("members.people[].member_id", "repeats an earlier member's id"),
    ("members.people[].birth_year", "cannot be after the month of occurred_at"),
    ("members.people[].birth_month", "cannot be after the month of occurred_at"),
    ("members.people[].relation", "exactly one member is HEAD"),
    ("members.people", "exactly one member is HEAD"),
    ("personal.members[].member_id", "names no member of members.people"),
    ("personal.members[].member_id", "repeats an earlier entry"),
    ("rigid_expenditure_yuan", "must be 0 or equal expense.amount_yuan"),
    # the procedure's level rule (services/visits/domain/levels.py): a decision's level and body
    # against the token writing it
    ("approving_level", "must be "),
    *(("body", f"a {level}-level decision's body is one of ") for level in LEVELS),
    # the procedure's order (services/visits/domain/procedure.py), when the API is configured to
    # read the monitoring view: a step whose predecessor is not recorded, named in the field the
    # refusal names (decision; reason or body for an exception written wrongly; occurred_at
    # for a step dated inside or before a notice)
    *(
        (field, f"{step} has not been recorded")
        for field in ("decision", "reason", "body")
        for step in (DELIBERATION, NOTICE, TOWNSHIP)
    ),
    *(
        ("decision", f"{step} is a step of the entry or exit procedure and none is under way")
        for step in (DELIBERATION, NOTICE, "OBJECTION", TOWNSHIP)
    ),
    ("occurred_at", "the public notice "),
)
_RECORD = re.compile(r"^records\[\d+\]\.")
_INDEX = re.compile(r"\[\d+\]")


@schemathesis.check
def problem_shaped_errors(ctx, response, case) -> None:
    """A 4xx answers a problem: that media type, type/title/status (status equal to the
    answer's), detail and instance text when present, errors as [{field, message}]."""
    status = response.status_code
    if not 400 <= status < 500:
        return None
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    if media != PROBLEM_JSON:
        raise AssertionError(
            f"a {status} answered {media or 'no content type'}, not {PROBLEM_JSON}"
        )
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"a {status} problem is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise AssertionError(f"a {status} problem is not an object: {body!r}")
    for member in ("type", "title"):
        if not isinstance(body.get(member), str) or not body[member]:
            raise AssertionError(f"a {status} problem has no {member}: {body!r}")
    if body.get("status") != status:
        raise AssertionError(f"a {status} problem says status {body.get('status')!r}")
    for member in ("detail", "instance"):
        if member in body and not isinstance(body[member], str):
            raise AssertionError(f"a {status} problem's {member} is not text: {body!r}")
    errors = body.get("errors", [])
    if not isinstance(errors, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("field"), str)
        and isinstance(e.get("message"), str)
        for e in errors
    ):
        raise AssertionError(f"a {status} problem's errors are not [{{field, message}}]: {body!r}")
    return None


def _beyond_schema(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    field = _INDEX.sub("[]", _RECORD.sub("", str(error.get("field", ""))))
    message = str(error.get("message", ""))
    return any(field == f and message.startswith(m) for f, m in BEYOND_SCHEMA)


@schemathesis.check
def positive_data_acceptance_but_stated_relations(ctx, response, case) -> None:
    """The built-in positive_data_acceptance where it is excluded (the visits API), but a 422
    whose every error is a refusal by a rule of `x-rules-beyond-schema` is not a failure."""
    if ctx.config.positive_data_acceptance.enabled:
        return None  # the built-in runs itself: this one stands in only where it is excluded
    try:
        positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code != 422:
            raise
        try:
            errors = json.loads(response.content).get("errors") or []
        except ValueError:
            raise RejectedPositiveData(
                operation=case.operation.label,
                message="a valid record refused with an answer that is not JSON",
                status_code=response.status_code,
                allowed_statuses=["2xx"],
            ) from None
        if not errors or not all(_beyond_schema(e) for e in errors):
            raise
    return None


@schemathesis.check
def batch_accepts_only_records_that_fit(ctx, response, case) -> None:
    """On a batch route, every record the answer says was accepted fits the record schema
    the document publishes for the batch's items."""
    if case.method.upper() != "POST" or not case.path.endswith(":batch"):
        return None
    if not 200 <= response.status_code < 300 or not isinstance(case.body, dict):
        return None
    records = case.body.get("records")
    results = json.loads(response.content).get("results") or []
    if not isinstance(records, list):
        raise AssertionError(f"a batch without a records array was answered {response.status_code}")
    document = case.operation.schema.raw_schema
    body = case.operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]
    items = {**body["properties"]["records"]["items"], "components": document["components"]}
    validator = jsonschema_rs.validator_for(items)
    for result in results:
        index = result.get("index")
        if 200 <= int(result.get("status", 0)) < 300 and isinstance(index, int):
            if not validator.is_valid(records[index]):
                raise AssertionError(
                    f"records[{index}] breaks the document's schema yet was accepted "
                    f"({result.get('status')})"
                )
    return None
