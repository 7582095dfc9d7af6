"""The console's languages: English msgids in the templates, Chinese from a message catalogue.

The catalogue is a Babel .po file in the package (locale/zh/LC_MESSAGES/messages.po), compiled
in memory when the console starts, so a fresh clone needs no build step and no binary .mo is
committed. English needs no catalogue: the msgids are English.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(language: str) -> gettext.NullTranslations:
    """The translations of `language` (zh or en)."""
    if language == "en":
        return gettext.NullTranslations()
    with catalogue_path(language).open("rb") as po:
        catalogue = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def N_(message: str) -> str:
    """Mark a message for the catalogue; it is translated where it is shown."""
    return message
