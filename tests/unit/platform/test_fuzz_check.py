"""The fuzz test's own check (services/tools/faults/fuzz_checks.py) fails on what it must:
a 4xx that is not a problem, or a problem missing a member or with a wrong status."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest

from services.tools.faults.fuzz_checks import problem_shaped_errors


@dataclass
class Answer:
    status_code: int
    body: object
    media: str = "application/problem+json"
    headers: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers = {"content-type": [self.media]}
        self.content = json.dumps(self.body).encode()


GOOD = {"type": "about:blank", "title": "Not Found", "status": 404, "instance": "/x"}


@pytest.mark.parametrize(
    "answer",
    [
        Answer(404, GOOD),
        Answer(422, {**GOOD, "status": 422, "errors": [{"field": "a.b", "message": "why"}]}),
        Answer(200, {"items": []}, "application/json"),  # not an error: not checked
        Answer(503, {"status": "unavailable"}, "application/json"),  # 5xx: not_a_server_error's
    ],
)
def test_a_problem_passes(answer: Answer) -> None:
    assert problem_shaped_errors(None, answer, None) is None


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(404, GOOD, "application/json"), "not application/problem+json"),
        (Answer(404, GOOD, "text/plain"), "not application/problem+json"),
        (Answer(404, {**GOOD, "title": ""}), "no title"),
        (Answer(404, {k: v for k, v in GOOD.items() if k != "type"}), "no type"),
        (Answer(404, {**GOOD, "status": 400}), "says status 400"),
        (Answer(422, {**GOOD, "status": 422, "errors": [{"field": "a"}]}), "errors are not"),
        (Answer(400, [GOOD]), "not an object"),
    ],
)
def test_anything_else_fails(answer: Answer, words: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(words)):
        problem_shaped_errors(None, answer, None)
