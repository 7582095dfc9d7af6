"""Personal data at rest: per-subject data keys in PostgreSQL and the sealing writers."""
