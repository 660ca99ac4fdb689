"""Clerk console: a poster for the notice board, with QR codes to join the Wi-Fi and open the portal.

Captive-portal windows often fail to open on phones; a poster is how many people find the portal.
It is a web page with print CSS for A4 (the browser's print or "save as PDF" makes the PDF).
"""

from __future__ import annotations

from flask import Blueprint, render_template
from markupsafe import Markup

from hub.sync import state as sync_state
from hub.web.captive import portal_url
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import N_, in_language
from hub.web.security import login_required

bp = Blueprint("clerk_poster", __name__, url_prefix="/clerk/poster")

#: The poster's words, each shown in Khmer with English beneath.
WORDS = {
    "join": N_("Scan to join the Wi-Fi"),
    "open": N_("Scan to open the commune's page"),
    "free": N_("No internet needed. No data is used."),
    "read": N_("Read the notices"),
    "listen": N_("Listen"),
    "speak": N_("Speak: send your message"),
    "follow": N_("Follow up with your receipt number"),
}


def wifi_text(ssid: str, passphrase: str | None = None) -> str:
    """The Wi-Fi join text phones' cameras read: ``WIFI:T:WPA;S:name;P:secret;;``, or ``T:nopass`` when open."""
    import segno.helpers  # about 1 MB in every hub-web process, for a page a clerk prints once

    if passphrase:
        return segno.helpers.make_wifi_data(ssid=ssid, password=passphrase, security="WPA")
    return segno.helpers.make_wifi_data(ssid=ssid, password=None, security="nopass")


def qr_svg(text: str, label: str) -> Markup:
    """*text* as a QR code in inline SVG (medium error correction: a poster gets dirty), named *label*."""
    import segno  # see wifi_text

    svg = segno.make(text, error="m", micro=False).svg_inline(scale=1, border=4, omitsize=True, title=label,
                                                              svgclass="qr", lineclass=None)
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(label)}" ', 1))


def commune_name_khmer(db, settings) -> str:
    """The commune's name for the poster: hub_name, else the name the district gave, else "Commune hub"."""
    return (settings.hub_name or sync_state.get_state(db, "central_hub_name")
            or in_language("Commune hub", "km"))


@bp.route("/")
@login_required
def poster():
    s = hub_settings()
    address = portal_url()  # the address the captive portal sends phones to (portal_url)
    wifi = wifi_text(s.ssid)
    return render_template("clerk/poster.html", address=address, ssid=s.ssid, name=commune_name_khmer(
        hub_context().db, s), wifi_qr=qr_svg(wifi, f"Wi-Fi {s.ssid}"), portal_qr=qr_svg(address, address),
        wifi=wifi, words=WORDS)
