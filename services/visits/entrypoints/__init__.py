"""Visits' entrypoints: the HTTP application, its JSON text in and out, its OpenAPI document."""
