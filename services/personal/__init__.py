"""Personal data at rest: per-subject data keys in PostgreSQL, sealing writers, operator CLI."""
