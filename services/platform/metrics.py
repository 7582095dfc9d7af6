"""The one place a Shouwang process's Prometheus registry is made.

Every service registers its own metrics on a registry of its own (never the client library's
global one, so tests can build as many as they like); this adds what every process exports
beside them: the process collector (`process_*`: CPU, memory, open files, start time), the
platform and garbage-collector collectors (`python_info`, `python_gc_*`), and
`shouwang_build_info{version,revision}`, so a dashboard can tell which build answers.

The version is the installed package's (`importlib.metadata`); the revision is
`SHOUWANG_REVISION` when set (an image build passes its commit there, having no `.git`), else
the checkout's `git rev-parse HEAD`, else "unknown".
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
)

PACKAGE = "shouwang"
ROOT = Path(__file__).resolve().parents[2]


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform, GC and build-info collectors already on it."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    version, revision = build()
    Info("shouwang_build", "The running build: package version and source revision",
         registry=registry).info({"version": version, "revision": revision})  # fmt: skip
    return registry


@functools.cache
def build() -> tuple[str, str]:
    """(version, revision) of the running code; computed once per process."""
    return version(), revision()


def version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def revision(env: Mapping[str, str] | None = None, root: Path = ROOT) -> str:
    env = os.environ if env is None else env
    if env.get("SHOUWANG_REVISION"):
        return env["SHOUWANG_REVISION"]
    if not (root / ".git").exists():  # an image, a wheel: no checkout to ask
        return "unknown"
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=5, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):  # no git binary, or a hung filesystem
        return "unknown"
    head = done.stdout.strip()
    return head if done.returncode == 0 and head else "unknown"
