"""Typed pool commands keep the wire format of the dicts they replaced, and read back equal."""

from __future__ import annotations

import json

from services.contract.catalogue import DEFAULT_CATALOGUE, load_catalogue
from services.support.adapters.pool_codec import dump_command, load_command
from services.support.adapters.table_codec import need_to_json
from services.support.domain.matcher import Cadre, PoolState, plan
from services.support.domain.pool_commands import AllocateNeed, ReleaseMeasure, UpdateCadre
from services.support.service import pool_step
from tests.unit.support.households import household

CATALOGUE = load_catalogue(DEFAULT_CATALOGUE)


def old_wire(command: dict) -> bytes:
    return json.dumps(command, ensure_ascii=False).encode()


def test_each_command_has_the_bytes_of_the_dict_it_replaced_and_reads_back_equal():
    need = next(n for n in plan(household("h-1"), CATALOGUE) if n.pool is not None)
    cadre = Cadre("c1", "鹤游镇", None, "town", 5, True)
    cases = [
        (AllocateNeed(need), {"need": need_to_json(need)}),
        (ReleaseMeasure("m-1", "CANCELLED"), {"release": "m-1", "step": "CANCELLED"}),
        (UpdateCadre(cadre), {"cadre": ["c1", "鹤游镇", None, "town", 5, True]}),
    ]
    for command, wire in cases:
        assert dump_command(command) == old_wire(wire)
        assert load_command(dump_command(command)) == command


def test_a_need_sent_twice_gets_its_standing_decision_again():
    need = next(n for n in plan(household("h-1"), CATALOGUE) if n.pool is not None)
    state, first = pool_step(PoolState(need.pool), AllocateNeed(need), 3)
    again_state, again = pool_step(state, AllocateNeed(need), 3)
    assert first and again == first and again_state == state
