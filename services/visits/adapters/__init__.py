"""The visits service's adapters: the household directory (PostgreSQL, in memory, cached)."""
