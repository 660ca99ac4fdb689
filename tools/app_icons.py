"""Draw the home-screen icons and the favicon from hub/web/static/icon.svg with Chromium and ffmpeg.

Run after changing icon.svg: ``.venv/bin/python tools/app_icons.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from playwright.sync_api import sync_playwright

STATIC = Path(__file__).resolve().parent.parent / "hub" / "web" / "static"
SIZES = (32, 180, 192, 512)


def main() -> None:
    svg = (STATIC / "icon.svg").read_text()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        for n in SIZES:
            page = browser.new_page(viewport={"width": n, "height": n})
            page.set_content(f'<body style="margin:0">{svg.replace("<svg ", f"<svg width={n} height={n} ")}</body>')
            page.screenshot(path=str(STATIC / f"icon-{n}.png"), omit_background=True)
            page.close()
        browser.close()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(STATIC / "icon-32.png"), str(STATIC / "favicon.ico")],
                   check=True)
    (STATIC / "icon-32.png").unlink()


if __name__ == "__main__":
    main()
