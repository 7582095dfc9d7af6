"""Support's entrypoints: the faust app and the CLI commands."""
