"""JSON text in and out of the API: orjson first, the standard library for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import orjson

SURROGATE_PROBLEM = "text with a lone surrogate escape is not valid Unicode"


class UnreadableJson(ValueError):
    """A body that is not JSON the API can take: the rejection reason, message and problems."""

    def __init__(self, reason: str, message: str, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.problems = problems or []


def dumps(value: Any) -> str:
    """JSON text of an answer: orjson (a batch answer has a result per record), or the standard
    library for what orjson refuses (a field name echoed back with a lone surrogate in it)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value)


def loads(raw: bytes) -> Any:
    """The JSON value of a request body, or UnreadableJson saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableJson("malformed_json", "the body is not UTF-8 text") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # the standard parser decides, and words the problem, as it always did
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise UnreadableJson("malformed_json", "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UnreadableJson(
            "malformed_json",
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except (ValueError, RecursionError) as exc:
        raise UnreadableJson("malformed_json", f"unreadable JSON: {_short(exc)}") from None
    # orjson refuses lone surrogate escapes ("\ud800"), the standard parser does not;
    # such text cannot be stored as UTF-8, so it is named here rather than failing later.
    broken = _lone_surrogate(value, "")
    if broken is not None:
        raise UnreadableJson(
            "invalid", f"{broken or 'the body'}: {SURROGATE_PROBLEM}", [(broken, SURROGATE_PROBLEM)]
        )
    return value


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The path of the first string (value or key) that is not valid Unicode, else None."""
    if isinstance(value, str):
        return None if value.isascii() or _encodable(value) else path
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if not _encodable(key):
                return path  # the object holding the name: the name cannot be shown
            found = _lone_surrogate(item, where)
            if found is not None:
                return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _short(exc: BaseException) -> str:
    return type(exc).__name__ if isinstance(exc, RecursionError) else str(exc)[:200]
