"""The doctor's report: each finding said in Khmer or English, as text for a technician or JSON for scripts."""


from __future__ import annotations

import json
import time
import unicodedata
from typing import Any

from hub import __version__
from hub.core import khmer
from hub.core.checks import FAIL, OK, SKIP, WARN, Finding
from hub.core.words import N_, load_catalog

MARKS = {OK: "✓", WARN: "!", FAIL: "✗", SKIP: "-"}


TITLES = {
    "config": N_("Configuration"),
    "database": N_("Database"),
    "disk": N_("Free disk space"),
    "clock": N_("Clock"),
    "services": N_("Hub services"),
    "access_point": N_("Wi-Fi access point"),
    "portal": N_("Portal"),
    "audio": N_("Sound devices"),
    "gpio": N_("Relay and button pins"),
    "speech": N_("Speech models"),
    "uplink": N_("Uplink"),
    "sync": N_("Sync with the central server"),
    "backup": N_("Backups"),
}


class Words:
    """The report's language: the Khmer catalogue, or English as written."""

    def __init__(self, lang: str):
        self.lang = lang
        self.catalog: dict[str, str] = {}
        if lang != "en":
            try:
                self.catalog = load_catalog(lang)
            except Exception:  # a report in English beats no report
                self.catalog = {}

    def __call__(self, message: str, values: dict[str, Any] | None = None) -> str:
        text = self.catalog.get(message, message)
        if values:
            shown = {k: self.show(v) for k, v in values.items()}
            try:
                text = text % shown
            except (KeyError, ValueError, TypeError):
                text = message % shown
        return text

    def show(self, value: Any) -> Any:
        if isinstance(value, list):  # findings another part of the hub reported, each said in turn
            return "; ".join(self(f.detail, f.values) for f in value)
        if isinstance(value, int) and not isinstance(value, bool):
            return khmer.digits(value, self.lang)
        return value


def _columns(text: str) -> int:
    """Terminal columns *text* takes: Khmer vowel signs and subscripts sit on their consonant."""
    n, after_coeng = 0, False
    for ch in text:
        if after_coeng:
            after_coeng = False
            continue
        if ch == "\u17d2":  # coeng: the next consonant is written below
            after_coeng = True
            continue
        if unicodedata.category(ch) not in ("Mn", "Mc", "Me", "Cf"):
            n += 1
    return n


def render_text(results: list[Finding], lang: str, hub_name: str = "") -> str:
    words = Words(lang)

    head = words(N_("Hub doctor")) + f" — {hub_name or 'hub'} {__version__}"
    lines = [head, ""]
    width = max(_columns(words(TITLES[r.name])) for r in results)
    for r in results:
        title = words(TITLES[r.name])
        pad = " " * (width - _columns(title))
        lines.append(f" {MARKS[r.status]} {title}{pad}  {words(r.detail, r.values)}")
        if r.status in (FAIL, WARN) and r.hint:
            lines.append(f"   {' ' * width}  → {words(r.hint, r.hint_values)}")
    failed = sum(r.status == FAIL for r in results)
    warned = sum(r.status == WARN for r in results)
    lines.append("")
    if failed:
        lines.append(words(N_("%(failed)s checks failed, %(warned)s warnings."),
                           {"failed": failed, "warned": warned}))
    else:
        lines.append(words(N_("All checks passed (%(warned)s warnings)."), {"warned": warned}))
    return "\n".join(lines) + "\n"


def render_json(results: list[Finding], lang: str) -> str:
    words = Words(lang)
    out = {
        "ok": not any(r.status == FAIL for r in results),
        "lang": lang,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checks": [
            {"id": r.name, "status": r.status, "title": words(TITLES[r.name]),
             "detail": words(r.detail, r.values),
             "hint": words(r.hint, r.hint_values) if r.hint and r.status in (FAIL, WARN) else "",
             "values": {k: words.show(v) if isinstance(v, list) else v for k, v in r.values.items()}}
            for r in results
        ],
    }
    return json.dumps(out, ensure_ascii=False, indent=2, default=str) + "\n"
