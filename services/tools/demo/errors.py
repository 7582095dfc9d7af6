"""The demo's own error: what `shouwang demo` reports as a failure (exit 1) rather than a crash."""

from __future__ import annotations


class DemoError(RuntimeError):
    """The demo could not finish: a server or service failed, or processing never caught up."""
