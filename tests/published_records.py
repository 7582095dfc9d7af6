"""Hypothesis strategies for the records an OpenAPI document publishes: what a client that
validates against the document before sending may send.

Only the JSON Schema the documents use is read (`$ref`, `anyOf`, `enum`, objects, arrays with
`maxItems`, bounded numbers, strings with `pattern`, `maxLength` and the formats date,
date-time and uuid). Every value drawn fits the document, so whatever the server then refuses
is a domain rule relating fields (named in its answer), never a rule the document hides.
Identifiers are drawn from a few known values half the time, so records meet each other
(a visit to a registered household) as they would in the field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from hypothesis import strategies as st

KNOWN_IDS = {
    "household_id": ("H-500228-0001", "H-500228-0002", "H-500228-0003"),
    "cadre_id": ("c-1", "c-2"),
    "responsible_cadre_id": ("c-1", "c-2"),
    "catalogue_id": ("industry-poultry", "pairing", "public-welfare-job"),
}
OFFSETS = (dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-5)))


def records(document: dict[str, Any], name: str, latest: dt.datetime) -> st.SearchStrategy:
    """Records of the component schema `name`; timestamps up to `latest` (naive, as written)."""
    return _values(document, document["components"]["schemas"][name], "", latest)


def _values(document: dict, schema: dict, field: str, latest: dt.datetime) -> st.SearchStrategy:
    if "$ref" in schema:
        target = schema["$ref"].rsplit("/", 1)[-1]
        return _values(document, document["components"]["schemas"][target], field, latest)
    if "anyOf" in schema:
        return st.one_of(*(_values(document, b, field, latest) for b in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        required = set(schema.get("required", ()))
        fields = {
            name: _values(document, sub, name, latest) for name, sub in schema["properties"].items()
        }

        @st.composite
        def objects(draw) -> dict[str, Any]:
            return {
                name: draw(values)
                for name, values in fields.items()
                if name in required or draw(st.booleans())
            }

        return objects()
    if kind == "array":
        items = _values(document, schema["items"], field, latest)
        most = schema["maxItems"]
        # Mostly short; now and then as long as allowed.
        return st.one_of(
            st.lists(items, max_size=min(most, 3)), st.lists(items, min_size=most, max_size=most)
        )
    if kind == "integer":
        return st.integers(schema["minimum"], schema["maximum"])
    if kind == "number":
        return st.floats(schema["minimum"], schema["maximum"], allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return _strings(schema, field, latest)


def _strings(schema: dict, field: str, latest: dt.datetime) -> st.SearchStrategy:
    fmt = schema.get("format")
    if fmt == "uuid":
        return st.uuids().map(str)
    if fmt == "date-time":
        moments = st.datetimes(min_value=dt.datetime(2014, 1, 1), max_value=latest)
        return st.builds(
            lambda moment, offset, spec: moment.replace(tzinfo=offset).isoformat(timespec=spec),
            moments,
            st.sampled_from(OFFSETS),
            st.sampled_from(("seconds", "milliseconds", "microseconds")),
        ).filter(re.compile(schema["pattern"]).fullmatch)
    if fmt == "date":
        return st.dates(dt.date(2014, 1, 1), dt.date(2030, 12, 31)).map(str)
    pattern, most = schema["pattern"], schema["maxLength"]
    fits = re.compile(pattern).fullmatch
    drawn = st.from_regex(pattern, fullmatch=True)
    # At the maximum length too: the read model and the workers must take the longest.
    longest = st.text(st.characters(codec="utf-8"), min_size=most, max_size=most)
    values = st.one_of(drawn, drawn, longest).filter(lambda s: len(s) <= most and fits(s))
    if field in KNOWN_IDS:
        return st.one_of(st.sampled_from(KNOWN_IDS[field]), values)
    return values
