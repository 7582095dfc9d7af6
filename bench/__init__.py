"""Benchmarks: each stage measured against a raw baseline in the same run (see README.md)."""
