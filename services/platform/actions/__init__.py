"""Operator actions (tokens issued and revoked, catalogues activated) as events in the log."""
