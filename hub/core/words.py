"""The Khmer catalogue: the one marker for strings to translate, and the loader of its translations.

``N_("...")`` marks a string where it is defined (``tools/catalog.py`` finds it there);
it is translated where it is shown, by the web pages or the doctor's report.
"""

from __future__ import annotations

from pathlib import Path

LANGUAGES = ("km", "en")
TRANSLATIONS_DIR = Path(__file__).resolve().parents[1] / "translations"


def N_(message: str) -> str:
    """Mark a string for the catalogue where it is defined; translate it where shown."""
    return message


def load_catalog(lang: str) -> dict[str, str]:
    """The translations of *lang* (message → text), leaving out fuzzy and empty ones."""
    path = TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    from babel.messages.pofile import read_po  # only where something is translated

    with open(path, "rb") as f:
        catalog = read_po(f, locale=lang)
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
