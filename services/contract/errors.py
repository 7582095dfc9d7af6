"""Errors raised by the event contract: every one says which record or field and why."""


class ContractError(Exception):
    """Base class for contract errors."""


class UnknownEventType(ContractError):
    """An event type name that the contract does not define."""


class InvalidRecord(ContractError):
    """A record that does not fit its schema; `problems` lists (field, problem) pairs."""

    def __init__(self, event_type: str, problems: list[tuple[str, str]]):
        self.event_type = event_type
        self.problems = problems
        listed = "; ".join(f"{field or '<record>'}: {problem}" for field, problem in problems)
        super().__init__(f"invalid {event_type}: {listed}")


class CorruptFrame(ContractError):
    """Bytes that are not a well-formed single-object Avro frame of a known schema."""


class UnknownSchema(CorruptFrame):
    """A frame whose writer-schema fingerprint no known schema version has."""

    def __init__(self, fingerprint: bytes):
        self.fingerprint = fingerprint
        super().__init__(
            f"unknown writer schema fingerprint {fingerprint.hex()}: "
            "the producer uses a schema version this service does not know"
        )


class IncompatibleSchema(ContractError):
    """A historical schema version that the current schema cannot read."""
