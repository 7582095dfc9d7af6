"""Bytes for the support app's table values (profiles and pool states; no personal data):
Avro under versioned schemas (`schemas/tables/support_*.avsc`, framed by `platform.tables`).

Values of before, JSON objects, are still read: a deployed worker's changelogs hold them, and a
value is written in Avro the next time it changes. A value this code cannot read raises
TableFormatError (a ValueError) naming its schema version and why; the app dead-letters the
record that needed it (`stored_row`). A need's JSON (`need_to_json`) is also the pool commands'
wire format (`pool_codec`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType
from typing import Any

from services.contract.catalogue import Quantity
from services.platform import tables
from services.support.domain.matcher import Cadre, Holding, Need, PoolState
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


def _load_json_profile(raw: bytes) -> Profile:
    """A profile as the JSON codec of before wrote it."""
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


def _load_json_pool(raw: bytes) -> PoolState:
    """A pool state as the JSON codec of before wrote it."""
    data = json.loads(raw)
    return PoolState(
        pool=data["pool"],
        holders=MappingProxyType({k: Holding(*v) for k, v in data["holders"].items()}),
        waiting=tuple(need_from_json(n) for n in data["waiting"]),
        closed=frozenset(data["closed"]),
        cadres=MappingProxyType({c[0]: Cadre(*c) for c in data["cadres"]}),
    )


PROFILE = "shouwang.tables.support.Profile"
POOL = "shouwang.tables.support.PoolState"
_CLASSES = {
    cls.__name__: cls
    for cls in (
        RegistryRecorded,
        Members,
        Person,
        RiskAssessed,
        MeasureState,
        Need,
        Quantity,
        Cadre,
    )
}


_CONVERTED = ("registry", "assessment", "measures", "waiting", "cadres")


@functools.cache
def _converters() -> dict[str, tuple[Callable[[Any], Any], Callable[[Any, str], Any]]]:
    """(to Avro, from Avro) per field of the two schemas, built once per process."""
    out = {}
    for name in (PROFILE, POOL):
        for field in tables.schema(name).parsed["fields"]:
            if field["name"] not in _CONVERTED:
                continue
            out[field["name"]] = (
                tables.writer(field["type"]),
                tables.reader(field["type"], _CLASSES),
            )
    return out


def dump_profile(profile: Profile) -> bytes:
    c = _converters()
    return tables.encode(
        PROFILE,
        {
            "household_id": profile.household_id,
            "registry": c["registry"][0](profile.registry),
            "assessment": c["assessment"][0](profile.assessment),
            "measures": c["measures"][0](profile.measures.values()),
        },
    )


def load_profile(raw: bytes) -> Profile:
    raw = bytes(raw)
    if raw[:1] == b"{":
        return _json(_load_json_profile, raw, "profile")
    data, version = tables.decode(raw, PROFILE, "support profile")
    hid, c = data["household_id"], _converters()
    try:
        measures = c["measures"][1](data["measures"], hid)
        return Profile(
            hid,
            c["registry"][1](data["registry"], hid),
            c["assessment"][1](data["assessment"], hid),
            MappingProxyType({m.measure_id: m for m in measures}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise tables.TableFormatError(
            f"{tables.named(version)} profile of {hid!r}: {type(exc).__name__}: {exc}"
        ) from exc


def dump_pool(state: PoolState) -> bytes:
    c = _converters()
    return tables.encode(
        POOL,
        {
            "pool": state.pool,
            "holders": [
                {"measure_id": k, "household_id": h.household_id, "cadre_id": h.cadre_id}
                for k, h in state.holders.items()
            ],
            "waiting": c["waiting"][0](state.waiting),
            "closed": sorted(state.closed),
            "cadres": c["cadres"][0](state.cadres.values()),
        },
    )


def load_pool(raw: bytes) -> PoolState:
    raw = bytes(raw)
    if raw[:1] == b"{":
        return _json(_load_json_pool, raw, "pool")
    data, version = tables.decode(raw, POOL, "support pool")
    c = _converters()
    try:
        return PoolState(
            pool=data["pool"],
            holders=MappingProxyType(
                {
                    h["measure_id"]: Holding(h["household_id"], h["cadre_id"])
                    for h in data["holders"]
                }
            ),
            waiting=c["waiting"][1](data["waiting"], ""),
            closed=frozenset(data["closed"]),
            cadres=MappingProxyType({x.cadre_id: x for x in c["cadres"][1](data["cadres"], "")}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise tables.TableFormatError(
            f"{tables.named(version)} pool {data.get('pool')!r}: {type(exc).__name__}: {exc}"
        ) from exc


def _json(load: Callable[[bytes], Any], raw: bytes, what: str) -> Any:
    try:
        return load(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise tables.TableFormatError(f"JSON {what}: {type(exc).__name__}: {exc}") from exc
