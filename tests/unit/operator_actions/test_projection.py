"""The read model's row for an operator action: the public facts, nothing secret."""

from __future__ import annotations

import datetime as dt
import json

from services.contract.codec import Codec
from services.platform.actions.events import EVENT_TYPE, token_issued
from services.platform.auth.tokens import new_token
from services.readmodel.projection import TOPICS, rows_for
from services.readmodel.statements import STATEMENTS, TABLE_OF

NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)


def test_a_token_issue_becomes_one_operator_actions_row():
    token = new_token("feed", "feed-health", [], ["HardshipReported"], note="pilot")
    token = type(token)(**{**token.__dict__, "token_id": "0a0b0c0d0e0f"})
    codec = Codec.default()
    record = codec.decode(codec.encode(EVENT_TYPE, token_issued(token, "operator:li", NOW)))
    [(statement, args)] = rows_for("operator.actions", EVENT_TYPE, record.record)
    assert statement == "operator_action" and TABLE_OF[statement] == "operator_actions"
    assert STATEMENTS[statement].count("$") == len(args) == 15
    assert args[1:5] == ("token:0a0b0c0d0e0f", "TOKEN_ISSUED", "operator:li", "OPERATOR")
    assert args[7:13] == ("0a0b0c0d0e0f", "FEED", "feed-health", None, None, None)
    assert json.loads(args[13]) == [] and args[14] == ""


def test_the_projector_reads_the_operator_topic():
    assert "operator.actions" in {t.name for t in TOPICS}


def test_an_opening_of_personal_data_is_a_row_too_who_whose_why():
    from services.contract.personal import Subject
    from services.platform.actions.events import personal_data_opened

    codec = Codec.default()
    opened = personal_data_opened(
        Subject("household", "H-1"), ["e-1"], "operator:li", NOW, "a-1", "appeal 31"
    )
    record = codec.decode(codec.encode(EVENT_TYPE, opened)).record
    [(statement, args)] = rows_for("operator.actions", EVENT_TYPE, record)
    assert statement == "operator_action"
    assert args[1:5] == ("household:H-1", "PERSONAL_DATA_OPENED", "operator:li", "OPERATOR")
    assert args[7:13] == (None,) * 6 and args[14] == "appeal 31"
