"""The PostgreSQL read model: migrations and projections of the event log."""
