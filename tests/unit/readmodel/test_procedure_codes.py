"""The procedure's codes the read model stores and its queries filter on are the contract's."""

from __future__ import annotations

from services.contract.vocabulary import symbols
from services.readmodel import procedure_queries, projection


def test_steps_and_directions_are_the_contracts_in_lower_case():
    assert procedure_queries.STEPS == tuple(s.lower() for s in symbols("ProcedureStep"))
    assert procedure_queries.DIRECTIONS == tuple(s.lower() for s in symbols("ProcedureDirection"))


def test_the_queries_list_the_exceptions_the_projection_stores():
    assert procedure_queries.EXCEPTION_CODES == projection.EXCEPTION_CODES
