"""The OpenAPI 3.1 document of the ingest API, derived from the Avro contract and the routes.

The document is kept in the repository (`openapi.json`, served at GET /openapi.json); a test
checks that it equals what this module builds and that its paths are exactly the app's routes.
Regenerate it with `python -m services.visits.entrypoints.openapi > services/visits/openapi.json`.

Long because it is one document: each route's answers (admission's 408/429, the batch shapes)
sit beside the record schemas the grammar's rules are written into, and read together.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.contract.catalogue import Catalogue, load_catalogue
from services.contract.codec import Codec
from services.contract.inputs import KINDS
from services.contract.validation import INT_RANGE, LONG_RANGE
from services.platform.config import VisitsSettings
from services.platform.http.docs import openapi_paths as docs_openapi_paths
from services.platform.http.problems import PROBLEM_JSON, openapi_components, problem_response
from services.visits.domain import grammar
from services.visits.domain.applications import APPLICATION_FIELDS, REQUIRED
from services.visits.domain.catalogued import MEASURE_STEP, catalogue_schema
from services.visits.domain.conversion import MAX_TIMESTAMP_TEXT, TIMESTAMP_EXAMPLE
from services.visits.domain.levels import LEVEL_RULE
from services.visits.domain.procedure import ORDER_RULE
from services.visits.domain.records import MAX_PROBLEMS, SEALED_FIELD, SERVER_FIELDS
from services.visits.domain.validation import beyond_schema, in_schema, stated

MAX_BATCH = VisitsSettings.max_batch
DOCUMENT_PATH = Path(__file__).resolve().parents[1] / "openapi.json"


def load_document(path: Path = DOCUMENT_PATH) -> dict[str, Any]:
    """The committed document, as served."""
    return json.loads(path.read_text(encoding="utf-8"))


def json_schema(
    schema: Any, named: dict[str, Any] | None = None, shape: str = ""
) -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses) for the JSON form of a parsed Avro schema,
    with each field's rule from the input grammar (`domain/grammar.py`); `shape` is the path
    of the value being described (`problems[].description`)."""
    named = {} if named is None else named
    if isinstance(schema, str):
        if schema in named:
            return json_schema(named[schema], named, shape)
        return _ruled(_primitive(schema), shape)
    if isinstance(schema, list):
        branches = [json_schema(b, named, shape) for b in schema]
        return branches[0] if len(branches) == 1 else {"anyOf": branches}
    logical = schema.get("logicalType")
    if logical in ("timestamp-millis", "timestamp-micros"):
        return {
            "type": "string",
            "format": "date-time",
            "pattern": grammar.TIMESTAMP_PATTERN,
            "maxLength": MAX_TIMESTAMP_TEXT,
            "description": f"RFC 3339 with a UTC offset, e.g. {TIMESTAMP_EXAMPLE}; on or "
            f"after {grammar.EARLIEST_DATE} as written",
        }
    if logical == "date":
        return {
            "type": "string",
            "format": "date",
            "pattern": grammar.DATE_PATTERN,
            "maxLength": len("2020-05-16"),
            "description": f"On or after {grammar.EARLIEST_DATE}.",
        }
    if logical == "uuid":
        return {"type": "string", "format": "uuid"}
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
    prefix = f"{shape}." if shape else ""
    if kind == "record":
        properties = {}
        required = []
        for field in schema["fields"]:
            prop = json_schema(field["type"], named, prefix + field["name"])
            if field.get("doc"):
                prop = {**prop, "description": field["doc"]}
            if "default" in field:
                prop = {**prop, "default": field["default"]}
            else:
                required.append(field["name"])
            properties[field["name"]] = prop
        out: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        if schema.get("doc"):
            out["description"] = schema["doc"]
        return out
    if kind == "enum":
        return {"type": "string", "enum": list(schema["symbols"])}
    if kind == "array":
        items = json_schema(schema["items"], named, f"{shape}[]")
        return _ruled({"type": "array", "items": items}, shape)
    if kind == "map":
        return {"type": "object", "additionalProperties": json_schema(schema["values"], named)}
    return _ruled(_primitive(kind), shape)


def _ruled(described: dict[str, Any], shape: str) -> dict[str, Any]:
    """The JSON Schema of a value with its grammar rule's keywords (bounds replace the
    Avro type's own range)."""
    rule = grammar.rule_for(shape) if shape else None
    return described if rule is None else {**described, **rule.keywords()}


def _primitive(kind: str) -> dict[str, Any]:
    if kind == "int":
        return {"type": "integer", "minimum": INT_RANGE[0], "maximum": INT_RANGE[1]}
    if kind == "long":
        return {"type": "integer", "minimum": LONG_RANGE[0], "maximum": LONG_RANGE[1]}
    return {
        "null": {"type": "null"},
        "boolean": {"type": "boolean"},
        "float": {"type": "number"},
        "double": {"type": "number"},
        "string": {"type": "string"},
        "bytes": {"type": "string", "contentEncoding": "base64"},
    }[kind]


def _client_schema(codec: Codec, event_type: str, catalogue: Catalogue) -> dict[str, Any]:
    schema = json_schema(codec.registry.schema(event_type).parsed)
    server_set = (*SERVER_FIELDS, SEALED_FIELD)
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in server_set}
    schema["required"] = [r for r in schema["required"] if r not in server_set]
    rules = stated(event_type)
    schema["description"] = (
        schema.get("description", "")
        + " recorded_at, source and actor are set by the server from the token."
        + " Rules relating fields (x-rules): "
        + " ".join(rules)
    ).strip()
    schema["x-rules"] = rules
    forms = in_schema(event_type)
    if event_type == MEASURE_STEP:  # the measures and pools of the catalogue in force
        measures = catalogue_schema(catalogue)
        named = schema["properties"]["catalogue_id"]
        schema["properties"]["catalogue_id"] = {
            **named,
            "enum": measures["catalogue_id"],
            "description": f"A measure of catalogue {catalogue.id} (SHOUWANG_CATALOGUE).",
        }
        forms = [*forms, *measures["allOf"]]
    if forms:
        schema["allOf"] = forms
    beyond = beyond_schema(event_type)
    if event_type == "shouwang.events.ReviewDecided":  # relates the record to its token
        beyond = [*beyond, LEVEL_RULE, ORDER_RULE]
    if beyond:
        # Relations of values and the server's clock: in words, as JSON Schema cannot say them.
        schema["x-rules-beyond-schema"] = beyond
    return schema


JSON = "application/json"


def _applications_path(codec: Codec, measures: Any) -> dict[str, Any]:
    """`POST /v1/applications`: a household's own application at a village service point, its
    fields the ReviewDecided schema's (services/visits/domain/applications.py)."""
    decision = _client_schema(codec, "shouwang.events.ReviewDecided", measures)["properties"]
    properties = {name: decision[name] for name in APPLICATION_FIELDS}
    properties["reason"] = {
        **properties["reason"],
        "minLength": 1,
        "description": "What the household applies for, in its words (required).",
    }
    return {
        "post": {
            "operationId": "post_applications",
            "summary": "A household's own application (农户自主申报), taken at a village service "
            "point.",
            "description": "Written to `household.reviews` as a ReviewDecided APPLY (body and "
            "approving_level VILLAGE) by the token's holder. Needs a village service point's "
            "token (`shouwang tokens issue --kind cadre --service-point --township T --village "
            "V`) or a village-level token that may record ReviewDecided; the household must be "
            "of the token's villages (403 otherwise).",
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "properties": properties,
                            "required": list(REQUIRED),
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "202": {
                    "description": "Acknowledged by the broker (all in-sync replicas).",
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/Accepted"}}},
                },
                **WRITE_ERRORS,
            },
        }
    }


WRITE_ERRORS = {
    "400": problem_response("A NUL character in the path or the query."),
    "401": problem_response(
        "Missing, unknown or revoked bearer token.",
        **{"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    "403": problem_response(
        "Outside the token's scope (event type, township, village, or another cadre), an "
        "auditor's token (read-only: it writes nothing), or a review decision of another level "
        "than the token's (`decision` or `exception` named; see the README's procedure levels)."
    ),
    "404": problem_response("No such route."),
    "405": problem_response("The route does not take this method (see the Allow header)."),
    "409": problem_response("The event_id was already used for a different record."),
    "413": problem_response("Body larger than SHOUWANG_VISITS_MAX_BODY_BYTES, or batch too large."),
    "415": problem_response("Content-Type is not application/json."),
    "422": problem_response(
        "Malformed JSON or a record that does not fit the contract, a review decision whose "
        "`body` or `approving_level` disagrees with the token's level, or one that skips a step "
        "of the procedure (type missing_step, see the ReviewDecided schema's "
        "x-rules-beyond-schema); `errors` names each field."
    ),
    "408": problem_response(
        "The body did not arrive within SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS of the headers "
        "(code body_timeout); nothing was written."
    ),
    "429": problem_response(
        "Shed by admission, the problem's type naming the limit: token_concurrency (this token "
        "has as many requests open as it may), token_rate (this token's rate is used up) or "
        "overloaded (too many writes already wait for the event log, "
        "SHOUWANG_VISITS_MAX_IN_FLIGHT); nothing was written; retry after Retry-After seconds.",
        retry=True,
    ),
    "500": problem_response("An internal error (logged); nothing about it is disclosed."),
    "503": problem_response(
        "The event log (or the token store, or the personal-data key store) is unavailable; "
        "nothing was written; retry.",
        retry=True,
    ),
}


def _batch(response: dict[str, Any]) -> dict[str, Any]:
    """A batch route's error response: a Problem that may carry the batch result."""
    schema = {"$ref": "#/components/schemas/BatchProblem"}
    return {**response, "content": {PROBLEM_JSON: {"schema": schema}}}


READ_ERRORS = {
    "400": WRITE_ERRORS["400"],
    "405": WRITE_ERRORS["405"],
    "500": WRITE_ERRORS["500"],
}


RESULTS = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/Outcome"},
    "maxItems": MAX_BATCH,
    "description": "One outcome per record, in order: at most SHOUWANG_VISITS_MAX_BATCH "
    f"({MAX_BATCH} unless configured).",
}


def build_document(codec: Codec, catalogue: Catalogue | None = None) -> dict[str, Any]:
    """The whole OpenAPI document for the current contract and the measure catalogue in force
    (the shipped one unless given: the committed document is built with it)."""
    measures = catalogue or load_catalogue()
    components: dict[str, Any] = {
        **openapi_components(),
        "Outcome": {
            "type": "object",
            "description": "What happened to one record: status 202 means acknowledged by "
            "the broker (duplicate: a re-send of an event acknowledged before); a refused "
            "record has the members of a Problem (type, title, detail, errors).",
            "properties": {
                "index": {"type": "integer"},
                "status": {"type": "integer"},
                "event_id": {"type": "string"},
                "topic": {"type": "string"},
                "partition": {"type": "integer"},
                "offset": {"type": "integer"},
                "duplicate": {"type": "boolean"},
                "type": {"type": "string", "description": "Problem type of a refused record."},
                "title": {"type": "string"},
                "detail": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/FieldError"},
                    "maxItems": MAX_PROBLEMS,
                },
            },
            "required": ["index", "status"],
        },
        "Accepted": {
            "type": "object",
            "description": "A record acknowledged by the broker (duplicate: a re-send of an "
            "event acknowledged before, answered with where the first one was written).",
            "properties": {
                "status": {"const": 202},
                "event_id": {"type": "string", "format": "uuid"},
                "topic": {"type": "string"},
                "partition": {"type": "integer", "minimum": 0},
                "offset": {"type": "integer", "minimum": 0},
                "duplicate": {"type": "boolean"},
            },
            "required": ["status", "event_id", "topic", "partition", "offset", "duplicate"],
            "additionalProperties": False,
        },
        "BatchProblem": {
            "description": "A batch answered with an error status: a Problem whose `errors` "
            "name each refused record's fields (records[i].field); when records were "
            "examined it also carries the batch result (accepted, refused, results).",
            "allOf": [{"$ref": "#/components/schemas/Problem"}],
            "properties": {
                "accepted": {"type": "integer"},
                "refused": {"type": "integer"},
                "results": RESULTS,
            },
        },
        "BatchResult": {
            "type": "object",
            "properties": {
                "accepted": {"type": "integer"},
                "refused": {"type": "integer"},
                "results": RESULTS,
            },
            "required": ["accepted", "refused", "results"],
        },
    }
    paths: dict[str, Any] = {}
    paths["/v1/applications"] = _applications_path(codec, measures)
    for kind in KINDS:
        components[kind.short_name] = _client_schema(codec, kind.event_type, measures)
        ref = {"$ref": f"#/components/schemas/{kind.short_name}"}
        accepted = {
            "description": "Acknowledged by the broker (all in-sync replicas).",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        }
        paths[f"/v1/{kind.slug}"] = {
            "post": {
                "operationId": f"post_{kind.slug.replace('-', '_')}",
                "summary": kind.summary,
                "description": f"Written to topic `{kind.topic.name}`, keyed by "
                f"`{kind.topic.key}`.",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {JSON: {"schema": ref}}},
                "responses": {"202": accepted, **WRITE_ERRORS},
            }
        }
        batch_result = {"content": {JSON: {"schema": {"$ref": "#/components/schemas/BatchResult"}}}}
        paths[f"/v1/{kind.slug}:batch"] = {
            "post": {
                "operationId": f"post_{kind.slug.replace('-', '_')}_batch",
                "summary": f"Up to SHOUWANG_VISITS_MAX_BATCH records of {kind.short_name}.",
                "description": "Each record gets its own outcome. 202: all accepted; 207: "
                "mixed outcomes; 503: some could not be written (resend them, or the whole "
                "batch: re-sends are safe); otherwise the status all records share.",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "records": {
                                        "type": "array",
                                        "items": ref,
                                        "minItems": 1,
                                        "maxItems": MAX_BATCH,
                                    }
                                },
                                "required": ["records"],
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "responses": {
                    "202": {"description": "Every record accepted.", **batch_result},
                    "207": {"description": "Some records accepted, some refused.", **batch_result},
                    **{status: _batch(r) for status, r in WRITE_ERRORS.items()},
                    "503": _batch(
                        problem_response(
                            "Some records were not acknowledged, or the whole request could "
                            "not be served; retry (re-sends are safe).",
                            retry=True,
                        )
                    ),
                },
            }
        }
    plain = {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "The process is up.",
            "responses": {"200": plain, **READ_ERRORS},
        }
    }
    paths["/readyz"] = {
        "get": {
            "operationId": "readyz",
            "summary": "The broker answers the producer and a pooled database connection "
            "answers (503 otherwise).",
            "responses": {
                "200": plain,
                **READ_ERRORS,
                "503": problem_response(
                    "Not ready: the problem's `reasons` maps each failing check to why.",
                    retry=True,
                ),
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics.",
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **READ_ERRORS,
            },
        }
    }
    # The description and its page need no token (platform/auth/http.py EXEMPT_PATHS): the
    # public contract, read before the first request; every other route but /metrics and the
    # probes needs one.
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document (no token needed).",
            "responses": {"200": plain, **READ_ERRORS},
        }
    }
    paths.update(docs_openapi_paths(READ_ERRORS))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shouwang visits ingest API",
            "version": "1",
            "description": "The one door through which field apps, department feeds and "
            "operators write events. JSON in, Avro on Kafka. A 2xx means the broker "
            "acknowledged the record; event_id is the idempotency key.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token (`shouwang tokens issue`); its kind, event types "
                    "and townships decide what it may write.",
                }
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(build_document(Codec.default())))
