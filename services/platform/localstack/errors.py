"""Errors raised while provisioning the local Kafka broker and PostgreSQL server."""


class LocalStackError(RuntimeError):
    """A local server could not be resolved, started, stopped or reached."""
