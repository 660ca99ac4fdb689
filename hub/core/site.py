"""What the app and nginx in front of it must agree on: where the static files are, the
Content-Security-Policy, and the largest body nginx passes on.

Both hub.web (the app) and hub.net (the nginx site it renders) read these, so they sit
here, below both: rendering nginx's site never needs the web app itself.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parents[1] / "web" / "static"
#: Nothing may load from outside the hub, even if a notice's text tried. The app sends it,
#: and nginx with the cached pages (hub.net.pages).
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self';"
       " script-src 'self'; form-action 'self'; frame-ancestors 'none'")


def proxy_body_mb(settings) -> int:
    """nginx's body limit: twice the app's, and a megabyte more.

    A body between the two reaches the app, which refuses it with the form again and the
    villager's typed text kept (hub.web.errors); only a body past this gets nginx's own page.
    """
    return 2 * settings.max_upload_mb + 1
