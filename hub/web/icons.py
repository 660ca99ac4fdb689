"""Line icons drawn inline as SVG, so they show on any phone with no extra request."""

from __future__ import annotations

from markupsafe import Markup

PATHS = {
    "home": "M3 11l9-8 9 8M5 9.5V21h5v-6h4v6h5V9.5",
    # A notice board (read) and headphones (listen): two things, two pictures.
    "notice": "M4 4h16v12H4zM12 16v5M8 21h8M8 8h8M8 12h5",
    "listen": "M4 16v-4a8 8 0 0116 0v4M4 16h3v5H4zM17 16h3v5h-3z",
    "feedback": "M4 4h16v12H9l-5 4z",
    "mic": "M12 3a3 3 0 00-3 3v6a3 3 0 006 0V6a3 3 0 00-3-3zM5 11a7 7 0 0014 0M12 18v3M8 21h8",
    "receipt": "M6 2h12v20l-3-2-3 2-3-2-3 2zM9 7h6M9 11h6M9 15h4",
    "send": "M3 11l18-8-8 18-2-8z",
    "water": "M12 3c-4 5-6 8-6 11a6 6 0 0012 0c0-3-2-6-6-11z",
    "road": "M8 3L4 21M16 3l4 18M12 5v3M12 11v3M12 17v3",
    "health": "M9 3h6v6h6v6h-6v6H9v-6H3V9h6z",
    "school": "M3 5h7a2 2 0 012 2v13a2 2 0 00-2-2H3zM21 5h-7a2 2 0 00-2 2v13a2 2 0 012-2h7z",
    "land": "M3 20l4-12h10l4 12zM10 8l-1.5 12M14 8l1.5 12M5 14h14",
    "safety": "M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z",
    "papers": "M6 2h8l4 4v16H6zM14 2v4h4M9 12h6M9 16h6",
    "other": "M5 12h.01M12 12h.01M19 12h.01",
    "pin": "M9 3h6l-1 6 4 4H6l4-4zM12 13v8",
    "urgent": "M12 3l10 18H2zM12 10v5M12 18h.01",
    "language": "M12 3a9 9 0 100 18 9 9 0 000-18zM3 12h18M12 3c3 3 3 15 0 18M12 3c-3 3-3 15 0 18",
    "check": "M4 12l5 5L20 6",
    "clock": "M12 3a9 9 0 100 18 9 9 0 000-18zM12 7v5l3 3",
    "person": "M12 12a4 4 0 100-8 4 4 0 000 8zM4 21c0-4 4-6 8-6s8 2 8 6",
    "phone": "M5 3h4l2 5-3 2a11 11 0 006 6l2-3 5 2v4a2 2 0 01-2 2A17 17 0 013 5a2 2 0 012-2z",
    "village": "M3 12l9-8 9 8M5 10v10h14V10M10 20v-5h4v5",
    "image": "M3 5h18v14H3zM3 16l5-5 5 5 3-3 5 5M15 9h.01",
    "consent": "M4 12l5 5L20 6M3 3h18v18H3z",
    "inbox": "M3 13l3-9h12l3 9v7H3zM3 13h5l1 3h6l1-3h5",
    "chart": "M4 20V10M10 20V4M16 20v-7M21 20H3",
    "logout": "M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10",
    "edit": "M4 20h4L20 8l-4-4L4 16zM14 6l4 4",
    "expire": "M12 3a9 9 0 100 18 9 9 0 000-18zM6 6l12 12",
    "download": "M12 3v12M7 10l5 5 5-5M4 21h16",
    "loudspeaker": "M3 10v4h3l7 5V5L6 10H3zM16 9v6M19 7v10",
    "back": "M15 5l-7 7 7 7",
    "plus": "M12 5v14M5 12h14",
    "play": "M7 4l13 8-13 8z",
    "help": "M12 3a9 9 0 100 18 9 9 0 000-18zM9.5 9a2.5 2.5 0 115 .5c0 2-2.5 2-2.5 4M12 17h.01",
    "list": "M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01",
    "sync": "M4 12a8 8 0 0114-5l2 2M20 12a8 8 0 01-14 5l-2-2M20 4v5h-5M4 20v-5h5",
    "qr": "M3 3h7v7H3zM14 3h7v7h-7zM3 14h7v7H3zM14 14h3v3h-3zM20 14v1M14 20h1M18 18h3v3h-3z",
    "search": "M10.5 4a6.5 6.5 0 100 13 6.5 6.5 0 000-13zM15.5 15.5L21 21",
}


def icon(name: str, cls: str = "i") -> Markup:
    d = PATHS.get(name, PATHS["other"])
    return Markup(
        f'<svg class="{cls}" viewBox="0 0 24 24" aria-hidden="true" focusable="false">'
        f'<path d="{d}"/></svg>'
    )
