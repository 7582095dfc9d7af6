"""Monitoring's entrypoints: the faust app and the CLI command."""
