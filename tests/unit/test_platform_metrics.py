"""Every registry a service builds carries the process, platform and build-info collectors."""

from __future__ import annotations

from importlib import metadata

from prometheus_client import generate_latest

from services.platform.metrics import new_registry, revision


def test_a_new_registry_exports_process_python_and_build_info():
    text = generate_latest(new_registry()).decode()
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info",
                   "python_gc_collections_total"):  # fmt: skip
        assert f"\n{family}" in text, family
    version = metadata.version("shouwang")
    [line] = [x for x in text.splitlines() if x.startswith("shouwang_build_info{")]
    assert f'version="{version}"' in line and 'revision="' in line and line.endswith(" 1.0")


def test_the_revision_comes_from_the_environment_then_git_then_unknown(tmp_path):
    assert revision({"SHOUWANG_REVISION": "abc123"}) == "abc123"
    assert revision({}, root=tmp_path) == "unknown"  # no .git: an image without the variable
    head = revision({})
    assert len(head) == 40 or head == "unknown"  # this checkout, when git is installed
