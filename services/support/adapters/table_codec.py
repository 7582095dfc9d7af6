"""JSON bytes for the support app's profiles and the needs pools queue; no personal data.

Pools are spread over rows of their own (`pool_rows`).

Not Avro as monitoring's rows are (`platform.tables`): measured on profiles and pools the worker
makes (2026-12-05), fastavro took 2.5x the CPU of this JSON (profile encode 46 vs 17 µs, decode
46 vs 20 µs) for half the bytes, on the path every support record takes (load, fold, dump).
Monitoring's rows gained because each event's bytes are cached; a profile has no such part."""

from __future__ import annotations

import json
from datetime import datetime
from types import MappingProxyType
from typing import Any

from services.contract.catalogue import Quantity
from services.support.domain.matcher import Need
from services.support.domain.profile import (
    MeasureState,
    Members,
    Person,
    Profile,
    RegistryRecorded,
    RiskAssessed,
)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def dump_profile(profile: Profile) -> bytes:
    r, a = profile.registry, profile.assessment
    return json.dumps({
        "household_id": profile.household_id,
        "registry": None if r is None else {
            **{k: getattr(r, k) for k in ("event_id", "township", "village", "registration",
                                           "head_birth_year", "livelihood",
                                           "minimum_living_allowance", "housing", "water")},
            "occurred_at": r.occurred_at.isoformat(), "members": list(vars(r.members).values()),
            "people": [list(vars(p).values()) for p in r.people]},
        "assessment": None if a is None else {
            **{k: getattr(a, k) for k in ("event_id", "category", "level", "workflow",
                                           "policy_version")},
            "as_of": a.as_of.isoformat(), "reason_codes": list(a.reason_codes)},
        "measures": [[m.measure_id, m.catalogue_id, m.pool, m.step,
                      m.at.isoformat() if m.at else None, m.released, list(m.basis)]
                     for m in profile.measures.values()],
    }, ensure_ascii=False).encode()  # fmt: skip


def load_profile(raw: bytes) -> Profile:
    data = json.loads(raw)
    r, a = data["registry"], data["assessment"]
    registry = None if r is None else RegistryRecorded(
        household_id=data["household_id"], occurred_at=_dt(r.pop("occurred_at")),
        members=Members(*r.pop("members")),
        people=tuple(Person(*p) for p in r.pop("people", ())), **r)  # fmt: skip
    assessment = None if a is None else RiskAssessed(
        household_id=data["household_id"], as_of=_dt(a.pop("as_of")),
        reason_codes=tuple(a.pop("reason_codes")), **a)  # fmt: skip
    # Rows written before releases and cooling have five entries: not released, no basis.
    measures = {m[0]: MeasureState(m[0], m[1], m[2], m[3], _dt(m[4]),
                                   m[5] if len(m) > 5 else "", tuple(m[6]) if len(m) > 6 else ())
                for m in data["measures"]}  # fmt: skip
    return Profile(data["household_id"], registry, assessment, MappingProxyType(measures))


def need_to_json(need: Need) -> dict[str, Any]:
    return {**{k: v for k, v in vars(need).items() if k not in ("reasons", "quantities")},
            "reasons": list(need.reasons),
            "quantities": [[q.item, q.amount, q.unit] for q in need.quantities]}  # fmt: skip


def need_from_json(data: dict[str, Any]) -> Need:
    data = dict(data)
    data["reasons"] = tuple(data["reasons"])
    data["quantities"] = tuple(Quantity(*q) for q in data["quantities"])
    return Need(**data)
