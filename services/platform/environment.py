"""Which environment variables a command reads, learnt from the code that reads them.

A command's `--help` lists its variables. Rather than a hand-kept list beside each reader (which
drifts the day a reader gains a variable), each command names its readers: functions that take
the environment as a mapping (`Settings.from_env`, `KafkaSecurity.from_env`, ...). At help time
each reader is called with a `RecordingEnvironment`, an empty mapping that notes every name it is
asked for; with nothing set, a reader takes its defaults, and a reader that insists on a value
raises after asking for it, which is caught here. A variable read only through `os.environ`
directly is named by the constant its code uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any


class RecordingEnvironment(Mapping[str, str]):
    """An empty environment that remembers, in order, every variable asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def _note(self, key: object) -> None:
        if isinstance(key, str) and key not in self.asked:
            self.asked.append(key)

    def __getitem__(self, key: str) -> str:
        self._note(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        return default

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def resolve(reference: str) -> Callable[..., Any]:
    """`package.module:Name.attr` → the object (imported only now: help time)."""
    module_name, _, path = reference.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in path.split("."):
        found = getattr(found, part)
    return found


def variables_read(readers: Iterable[str]) -> list[str]:
    """The variables the readers ask for, in order, each once.

    Each item is a reference `module:name` to a reader (called with a RecordingEnvironment) or
    to the constant naming a variable its code reads through os.environ; or, without a colon,
    a variable's name.
    """
    names: list[str] = []
    for reader in readers:
        found: Any = resolve(reader) if ":" in reader else reader
        if isinstance(found, str):  # a variable's name, or the constant holding it
            asked = [found]
        else:
            env = RecordingEnvironment()
            try:
                found(env)
            except Exception:  # a reader refusing an empty environment asked for it first
                pass
            asked = env.asked
        names.extend(n for n in asked if n not in names)
    return names
