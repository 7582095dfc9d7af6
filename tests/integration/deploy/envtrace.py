"""Run `shouwang ARGS...` (the CLI's `main`, what the image's entrypoint runs) and record every
environment variable Shouwang's own code reads, by name, one per line in RECORD_FILE.

Usage: python envtrace.py RECORD_FILE ARGS...

A read is a lookup of one name in `os.environ` (`os.environ[name]`, `.get`, `in`,
`os.getenv`) whose nearest caller outside the standard library's mapping code is a module
under `services/`. A copy of the whole environment (`{**os.environ}`, `.copy()`) reads every
name and says nothing about any one of them: it is recorded as the line `COPIED_ENVIRONMENT`,
which the compose test refuses, since it could then not tell which variables are used.
The file is appended to as each new name is read, so it is complete while the process still
runs (the compose test reads it while the services serve).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SERVICES = str(Path(__file__).resolve().parents[3] / "services") + os.sep
COPIED = "COPIED_ENVIRONMENT"
# The mapping methods between a caller and `__getitem__` (os.getenv, Mapping.get); frozen
# modules (3.11+) name their code "<frozen os>", not the file.
_MAPPING_CODE = {
    getattr(module, "__file__", None) or f"<frozen {name}>"
    for name, module in (("os", os), ("_collections_abc", sys.modules["_collections_abc"]))
} | {"<frozen os>", "<frozen _collections_abc>"}


def _install(record: Path) -> None:
    seen: set[str] = set()
    environ_type = type(os.environ)
    getitem, contains, iterate = (
        environ_type.__getitem__,
        environ_type.__contains__,
        environ_type.__iter__,
    )

    def note(key: object) -> None:
        if not isinstance(key, str) or key in seen:
            return
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename in _MAPPING_CODE:
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename.startswith(SERVICES):
            seen.add(key)
            with record.open("a", encoding="utf-8") as out:
                out.write(key + "\n")

    def traced_iter(self):
        note(COPIED)  # only a copy or a scan walks every name; a read looks one up
        return iterate(self)

    def traced_getitem(self, key):
        note(key)
        return getitem(self, key)

    def traced_contains(self, key):
        note(key)
        return contains(self, key)

    environ_type.__getitem__ = traced_getitem
    environ_type.__contains__ = traced_contains
    environ_type.__iter__ = traced_iter


if __name__ == "__main__":
    _install(Path(sys.argv[1]))
    from services.cli import main

    sys.exit(main(sys.argv[2:]))
