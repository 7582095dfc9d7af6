"""The policy files: the shipped ones under services/monitoring/policies, or the operator's."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

from services.monitoring.domain.policy import Policy, PolicyBook, PolicyError, book_of, parse_policy

POLICY_DIR = Path(__file__).resolve().parents[1] / "policies"


def load_policy(path: Path) -> Policy:
    with open(path, "rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(str(path), [("", f"not TOML: {exc}")]) from exc
    return parse_policy(data, str(path))


def load_policies(paths: Iterable[Path] | None = None) -> PolicyBook:
    """The shipped policies (or `paths`); overlapping effective periods are an error."""
    files = sorted(POLICY_DIR.glob("*.toml")) if paths is None else list(paths)
    return book_of((load_policy(p) for p in files), ", ".join(map(str, files)) or "<none>")


def policies_in(directory: Path | None) -> PolicyBook:
    """Every policy file in `directory` (SHOUWANG_POLICY_DIR), else the shipped ones."""
    return load_policies(sorted((directory or POLICY_DIR).glob("*.toml")))
