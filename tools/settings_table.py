"""Refresh the settings table in README.md from the declared settings: `make docs`."""

from __future__ import annotations

import sys
from pathlib import Path

from hub.core.settings import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def update_readme(path: Path = README) -> bool:
    """Rewrite the README's settings table between its markers; True if it changed."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = f"{head}{START}\n{markdown_table()}\n{END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main() -> int:
    print("README.md updated" if update_readme() else "README.md already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
