"""The house's rules that imports cannot show: domains read no clock or environment; size.

The import rules themselves are import-linter contracts (`pyproject.toml`), run here too so that
`make test` alone catches a broken one.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
DOMAINS = sorted(SERVICES.glob("*/domain"))
MAX_LINES = 400
# A module may be longer when its docstring says why, in a paragraph starting with this.
SIZE_REASON = "Long because"

# Calls that read the wall clock or the process environment.
CLOCK_OR_ENV = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("os", "getenv"),
    ("os", "environ"),
}


def _modules(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def _clock_or_env_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name | ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else node.value.attr
            if (owner, node.attr) in CLOCK_OR_ENV:
                where = path.relative_to(ROOT) if ROOT in path.parents else path.name
                found.append(f"{where}:{node.lineno} {owner}.{node.attr}")
    return found


def test_there_are_domains_to_check():
    assert {d.parent.name for d in DOMAINS} >= {"monitoring", "support", "visits"}


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.parent.name)
def test_a_domain_reads_no_clock_and_no_environment(domain: Path):
    uses = [use for path in _modules(domain) for use in _clock_or_env_uses(path)]
    assert uses == [], "domain code takes the moment and settings as arguments"


def test_the_clock_check_finds_a_clock(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import datetime, os\nx = datetime.datetime.now()\ny = os.environ['A']\n", "utf-8"
    )
    assert [u.split(" ")[1] for u in _clock_or_env_uses(sample)] == ["datetime.now", "os.environ"]


def test_every_module_is_short_or_says_why():
    long_ones = []
    for path in _modules(SERVICES):
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if SIZE_REASON not in doc:
            long_ones.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert long_ones == [], f"split these or say why in the docstring ({SIZE_REASON} ...)"


def test_every_module_has_a_docstring():
    missing = [
        str(path.relative_to(ROOT))
        for path in _modules(SERVICES)
        if path.read_text(encoding="utf-8").strip()
        and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert missing == []


def test_the_import_contracts_hold():
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency (pyproject.toml)"
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
