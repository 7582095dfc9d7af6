"""Visits' entrypoints: the HTTP application, its OpenAPI document, the CLI commands."""
