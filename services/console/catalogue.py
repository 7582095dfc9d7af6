"""Which messages the console shows: every msgid of its templates, pages and labels.

Read by the catalogue test (every one must have a Chinese translation) and by whoever updates
`locale/zh/LC_MESSAGES/messages.po` after adding text.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file

from services.console.labels import LABELS

HERE = Path(__file__).parent
# In Python: a Page's message (its 2nd argument), the login form's error (its 3rd), and N_().
PYTHON_KEYWORDS = {"Page": (2,), "login_form": (3,), "N_": None}


def msgids() -> set[str]:
    """Every message the console may show, in English (the msgid)."""
    found: set[str] = set()
    for template in sorted((HERE / "templates").glob("*.html")):
        for _line, message, _comments, _context in extract_from_file(
            "jinja2", template, options={"extensions": "jinja2.ext.i18n"}
        ):
            found.add(message if isinstance(message, str) else message[0])
    for module in ("web.py",):
        for _line, message, _comments, _context in extract_from_file(
            "python", HERE / module, keywords=PYTHON_KEYWORDS
        ):
            if isinstance(message, str):
                found.add(message)
    for kind in LABELS.values():
        found.update(kind.values())
    return found
