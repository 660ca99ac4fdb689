"""Rebuild the bundled Khmer web font: a Khmer-only WOFF2 subset of Noto Sans Khmer.

Run with ``make font`` on a machine with Debian's fonts-noto-core. The result
is committed, so hubs never need the source font or fonttools.
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE = Path("/usr/share/fonts/truetype/noto/NotoSansKhmer-Regular.ttf")
ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "hub" / "web" / "static" / "fonts" / "NotoSansKhmer-Regular.khmer.woff2"
#: Khmer, Khmer symbols, zero-width space and joiners, and the dotted circle.
UNICODES = "U+1780-17FF,U+19E0-19FF,U+200B-200D,U+25CC"


def main() -> int:
    from fontTools import subset  # only `make font` installs fonttools

    if not SOURCE.exists():
        print(f"font: {SOURCE} is missing (apt-get install fonts-noto-core)", file=sys.stderr)
        return 1
    subset.main([
        str(SOURCE), f"--unicodes={UNICODES}", "--layout-features=*", "--flavor=woff2",
        "--no-hinting", "--desubroutinize", f"--output-file={TARGET}",
    ])
    print(f"font: wrote {TARGET} ({TARGET.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
