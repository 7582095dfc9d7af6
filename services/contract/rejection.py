"""Why a consumer refuses a record, named once: the dead-letter kinds and the checks raising them.

Pure (no Kafka): the faust workers dead-letter a `Rejected` record (`platform.kafka.worker`), and
audit's replay skips one for the same reasons (`monitoring.service.read_input`).
"""

from __future__ import annotations

from services.contract.codec import Codec, Decoded
from services.contract.errors import ContractError, UnknownSchema

# Dead-letter kinds: the `error_kind` of a DeadLetter record and the `kind` label of the counters.
UNKNOWN_SCHEMA = "UNKNOWN_SCHEMA"  # a frame whose writer schema this reader does not know
UNDECODABLE = "UNDECODABLE"  # not a frame, or a frame whose bytes do not decode
INVALID = "INVALID"  # decoded, but not a record this worker consumes or can translate
NOT_APPLICABLE = "NOT_APPLICABLE"  # a valid record that cannot apply (mis-keyed, unknown pool…)


class Rejected(Exception):
    """A record this worker cannot decode or apply: dead-lettered with its kind and reason."""

    def __init__(self, kind: str, reason: str):
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


def decode(codec: Codec, value: bytes | None, expected: str | None) -> Decoded:
    """Decode one framed record, or raise Rejected (UNKNOWN_SCHEMA or UNDECODABLE)."""
    try:
        return codec.decode(value, expected=expected)
    except UnknownSchema as exc:
        raise Rejected(UNKNOWN_SCHEMA, str(exc)) from exc
    except ContractError as exc:
        raise Rejected(UNDECODABLE, str(exc)) from exc


def check_key(key: bytes | None, household_id: str) -> bytes:
    """The record's key if it is the household id; Rejected(NOT_APPLICABLE) otherwise."""
    expected = household_id.encode()
    if key != expected:
        raise Rejected(
            NOT_APPLICABLE,
            f"key {key!r} is not the household id {household_id!r}: a mis-keyed record "
            "lands on another household's partition",
        )
    return expected
