"""CSV that a spreadsheet opens safely: the one formula guard every export uses."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

#: A cell starting with one of these runs as a formula in Excel, LibreOffice or Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Written first, so spreadsheet programs read the file as UTF-8 (Khmer would be garbled otherwise).
BOM = "\ufeff"


def formula_safe(value):
    """*value*, with a leading ``'`` if a spreadsheet would read it as a formula; other values as they are.

    Empty cells stay empty, and numbers stay numbers.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_rows(out, rows: Iterable[Iterable]) -> None:
    """Write *rows* to the text stream *out* as CSV, every cell through :func:`formula_safe`."""
    w = csv.writer(out)
    for row in rows:
        w.writerow([formula_safe(v) for v in row])


def to_text(rows: Iterable[Iterable], bom: bool = True) -> str:
    """*rows* as one CSV text, starting with the UTF-8 byte order mark unless *bom* is false."""
    out = io.StringIO()
    if bom:
        out.write(BOM)
    write_rows(out, rows)
    return out.getvalue()
