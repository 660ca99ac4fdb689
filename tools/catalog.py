"""Keep the Khmer catalogue in step with the code: `make messages`.

Extracts every ``_()``/``N_()`` string from the package and templates and
merges them into ``hub/translations/km/LC_MESSAGES/messages.po``, keeping
existing translations. New strings arrive untranslated; a test fails until
each has its Khmer.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "hub" / "translations" / "km" / "LC_MESSAGES" / "messages.po"
METHODS = [("hub/**.py", "python"), ("hub/web/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "N_": None}


def extract() -> Catalog:
    template = Catalog(project="commune-hub", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def update(extra: dict[str, str] | None = None) -> Catalog:
    template = extract()
    if PO.exists():
        with open(PO, "rb") as f:
            catalog = read_po(f, locale="km")
    else:
        catalog = Catalog(locale="km", project="commune-hub", charset="utf-8")
    catalog.update(template, no_fuzzy_matching=True)
    for msgid, msgstr in (extra or {}).items():
        if msgid in catalog:
            catalog[msgid].string = msgstr
    PO.parent.mkdir(parents=True, exist_ok=True)
    with open(PO, "wb") as f:
        write_po(f, catalog, width=0, omit_header=False, ignore_obsolete=True)
    return catalog


def main() -> int:
    catalog = update()
    missing = [m.id for m in catalog if m.id and not m.string]
    print(f"messages: {len(catalog)} strings, {len(missing)} without Khmer")
    for m in missing:
        print(f"  untranslated: {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
