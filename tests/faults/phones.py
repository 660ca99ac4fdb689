"""Villagers' phones for the fault and load figures: each its own source address, cookies and CSRF token.

Every phone talks HTTP to nginx on loopback from an address of its own
(127.0.x.y: Linux lets a socket bind any address of 127.0.0.0/8), so nginx's
``$remote_addr`` and the app's per-address limits see as many villagers as
there are phones, as on the Wi-Fi.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter

from hub.core import settings as settings_mod

#: The form's CSRF field; empty on a cached villager page (the browser's Origin header vouches instead).
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
#: The receipt code in the redirect after a submission, whatever its length or grouping.
RECEIPT_RE = re.compile(r"/receipt/([^/?#\s]+)")
#: Settings that look like a per-address limit on villagers' requests (names containing these words).
LIMIT_WORDS = ("rate", "per_minute", "per_hour", "per_address", "burst")


def phone_address(i: int) -> str:
    """The source address of phone *i*: 127.0.10.1, 127.0.10.2, ... (never 127.0.0.1)."""
    return f"127.0.{10 + i // 250}.{1 + i % 250}"


class _SourceAddress(HTTPAdapter):
    def __init__(self, address: str, **kw):
        self.address = address
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.address, 0)
        return super().init_poolmanager(*args, **kw)


def raised_limits(factor: int = 1000) -> dict[str, int | float]:
    """Settings (for a hub.toml) that lift any per-address request limit the hub declares, for load tests.

    Limits are found by name, so this keeps working whatever they are called; with none declared
    it returns nothing, and the phones' own addresses keep each under a per-address limit.
    """
    out = {}
    for s in settings_mod.SETTINGS:
        if s.type in (int, float) and any(w in s.name for w in LIMIT_WORDS) and s.default:
            out[s.name] = s.type(s.default * factor)
    return out


@dataclass
class Answer:
    kind: str
    status: int
    seconds: float
    location: str = ""
    text: str = ""


@dataclass
class Phone:
    """One phone: a requests session bound to its own address, with timings of every request."""

    base: str
    address: str
    timeout: float = 30.0
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self):
        self.s = requests.Session()
        self.s.trust_env = False  # never a proxy from the environment
        self.s.mount("http://", _SourceAddress(self.address))

    def request(self, kind: str, method: str, path: str, **kw) -> Answer:
        """One request; a failed connection or timeout is an answer of status 0 (the error in text)."""
        t = time.perf_counter()
        try:
            r = self.s.request(method, self.base + path, timeout=self.timeout, allow_redirects=False, **kw)
        except requests.RequestException as e:
            a = Answer(kind, 0, time.perf_counter() - t, text=type(e).__name__)
        else:
            a = Answer(kind, r.status_code, time.perf_counter() - t, r.headers.get("Location", ""), r.text)
        self.answers.append(a)
        return a

    def csrf(self) -> str | None:
        a = self.request("form", "GET", "/feedback")
        m = CSRF_RE.search(a.text) if a.status == 200 else None
        return m.group(1) if m else None

    def send(self, body: str, voice: bytes | None = None, voice_name: str = "v.ogg",
             kind: str | None = None) -> tuple[Answer, str | None]:
        """Fill the feedback form and send it: (the answer, the receipt code if it was acknowledged)."""
        token = self.csrf()
        kind = kind or ("voice" if voice else "text")
        if token is None:
            return self.answers[-1], None
        files = {"voice": (voice_name, voice, "application/octet-stream")} if voice else None
        # As a browser posts a form: with the page's origin and address.
        headers = {"Origin": self.base, "Referer": self.base + "/feedback"}
        a = self.request(kind, "POST", "/feedback", data={"csrf_token": token, "category": "water", "body": body},
                         files=files, headers=headers)
        m = RECEIPT_RE.search(a.location) if a.status == 303 else None
        return a, (m.group(1) if m else None)

    def close(self) -> None:
        self.s.close()


def percentile(values: list[float], p: float) -> float:
    """The *p*-th percentile (0-100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]
