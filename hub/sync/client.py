"""Talking to the central server: signed answers, retries, a speed cap and a data budget.

Every request carries the hub's bearer token and a fresh nonce; every
answer must carry the central server's signature over that nonce and the
answer's body (:func:`hub.sync.wire.sign`). An answer without a valid
signature, however friendly its status code, is treated as "not online".
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from hub.core.errors import HubError
from hub.sync import state as sync_state
from hub.sync import wire

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


class SyncError(HubError):
    """A sync step failed; the message never holds a secret."""


class NotOnline(SyncError):
    """No authenticated answer from the central server: offline, or a captive network."""


class BudgetExhausted(SyncError):
    """Today's data budget is spent."""


class Rejected(SyncError):
    """The central server answered, signed, with a refusal (revoked token, bad request)."""

    def __init__(self, status: int, message: str, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


def redact(text: str, secrets_: list[str]) -> str:
    for s in secrets_:
        if s and len(s) >= 6:  # real tokens are long; a one-letter test token is not a secret
            text = text.replace(s, "***")
    return text


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_insecure: bool) -> str:
    """Refuse plain HTTP to anything but loopback, unless explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return url.rstrip("/")
    if parts.scheme == "http" and (allow_insecure or is_loopback(parts.hostname)):
        return url.rstrip("/")
    raise SyncError("central_url must use https:// (plain http only on loopback or with allow_insecure_http)")


class Throttle:
    """Paces bytes to at most *kbps* kilobits per second (0: no cap).

    Long waits are slept in slices with *beat* between them, so a slow cap
    never starves systemd's watchdog.
    """

    def __init__(self, kbps: int, beat: Callable[[], None] = lambda: None):
        self.rate = kbps * 1000 / 8 if kbps > 0 else 0
        self.beat = beat
        self._free_at = time.monotonic()

    def take(self, nbytes: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        start = max(now, self._free_at)
        self._free_at = start + nbytes / self.rate
        while (left := start - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))
            self.beat()


class CentralClient:
    """One sync cycle's conversation with the central server."""

    #: Attempts per request, and the first wait between them (it doubles).
    attempts = 3
    first_retry_wait = 0.5

    def __init__(self, settings, ctx, beat: Callable[[], None] = lambda: None,
                 stopping: Callable[[], bool] = lambda: False):
        self.base = check_url(settings.central_url, settings.allow_insecure_http) + wire.API
        self.token = settings.central_token
        if not self.token:
            raise SyncError("central_token is not set (`hub central add-hub NAME` prints one)")
        self.ctx = ctx
        self.timeout = settings.sync_timeout_seconds
        self.budget = int(settings.sync_daily_budget_mb * 1024 * 1024)
        self.throttle = Throttle(settings.sync_bandwidth_kbps, beat)
        self.beat = beat
        self.stopping = stopping
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy from the environment must not see the token
        self.wire_bytes = 0
        # urllib3 logs request lines at debug level; the Telegram token sits in a path.
        logging.getLogger("urllib3").setLevel(logging.WARNING)

    def close(self) -> None:
        self.session.close()

    def redact(self, text: str) -> str:
        return redact(text, [self.token])

    # --- accounting ---
    def _today(self) -> str:
        return self.ctx.clock.now().date().isoformat()

    def spend(self, nbytes: int) -> None:
        self.wire_bytes += nbytes
        sync_state.add_usage(self.ctx.db, self._today(), nbytes)

    def check_budget(self, upcoming: int) -> None:
        if self.budget and sync_state.usage(self.ctx.db, self._today()) + upcoming > self.budget:
            raise BudgetExhausted("today's data budget (sync_daily_budget_mb) is used up")

    # --- one signed request ---
    def call(self, method: str, path: str, body: bytes = b"", headers: dict | None = None,
             params: dict | None = None, retry: bool = True) -> tuple[int, dict, bytes]:
        """Send one request; return (status, headers, body) of a *signed* answer.

        Connection failures and unsigned answers are retried with a doubling
        wait, then raise :class:`NotOnline`.
        """
        wait = self.first_retry_wait
        last = "no answer"
        for attempt in range(self.attempts if retry else 1):
            if self.stopping():
                raise SyncError("stopping")
            if attempt:
                time.sleep(wait)
                wait *= 2
            self.beat()
            nonce = secrets.token_hex(16)
            h = {"Authorization": f"Bearer {self.token}", "X-Hub-Nonce": nonce,
                 "X-Hub-Id": self.ctx.hub_id, **(headers or {})}
            estimate = len(body) + 300 + len(path)
            self.check_budget(estimate)
            self.throttle.take(estimate)
            try:
                resp = self.session.request(method, self.base + path, data=body or None, headers=h,
                                            params=params, timeout=self.timeout, allow_redirects=False)
                content = resp.content
            except requests.RequestException as e:
                self.spend(estimate)
                last = self.redact(f"{type(e).__name__}: {e}")[:300]
                log.info("sync request %s %s failed: %s", method, path, last)
                continue
            self.spend(estimate + len(content) + 200)
            if not wire.signature_ok(self.token, nonce, content, resp.headers.get("X-Hub-Signature")):
                last = f"answer to {method} {path} is not signed by the central server (HTTP {resp.status_code})"
                log.info("%s", last)
                continue
            return resp.status_code, resp.headers, content
        raise NotOnline(last)

    def call_json(self, method: str, path: str, value=None, params: dict | None = None,
                  ok: tuple[int, ...] = (200,)) -> tuple[int, dict]:
        body = wire.gzip_json(value) if value is not None else b""
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"} if body else {}
        headers["Accept-Encoding"] = "gzip"
        status, resp_headers, content = self.call(method, path, body, headers, params)
        try:
            # requests has already undone any gzip; the signature covers the plain body.
            data = wire.read_json_body(content, None) if content else {}
        except ValueError:
            data = {}
        if status not in ok:
            raise Rejected(status, f"central server answered {status}: {data.get('error', '')}".strip(), data)
        return status, data

    # --- the protocol ---
    def hello(self, health: dict | None = None) -> dict:
        """Prove the uplink reaches the real central server; return its answer (with server time)."""
        sent = time.time()
        _, data = self.call_json("POST", "/hello", {"hub_id": self.ctx.hub_id, "health": health or {}})
        rtt = time.time() - sent
        if not isinstance(data.get("server_time"), (int, float)):
            raise NotOnline("central server's answer has no time")
        data["time_estimate"] = data["server_time"] + rtt / 2
        return data

    def push(self, records: list[dict]) -> dict:
        _, data = self.call_json("POST", "/records", {"records": records}, ok=(200, 403))
        return data

    # A resumable upload (media, backups): HEAD says how much the central server holds,
    # PUT sends one chunk at an offset; 409 answers with the server's offset.
    def upload_offset(self, path: str) -> tuple[int, bool]:
        status, headers, _ = self.call("HEAD", path)
        if status == 404:
            return 0, False
        if status != 200:
            raise Rejected(status, f"central server answered {status} for {path}")
        return int(headers.get("Upload-Offset", "0")), headers.get("Upload-Complete") == "1"

    def upload_chunk(self, path: str, offset: int, total: int, sha256: str, chunk: bytes,
                     extra_headers: dict | None = None, ok=(200, 409)) -> dict:
        headers = {"Upload-Offset": str(offset), "Upload-Length": str(total),
                   "Upload-Sha256": sha256, "Content-Type": "application/octet-stream", **(extra_headers or {})}
        status, _, content = self.call("PUT", path, chunk, headers, retry=False)
        try:
            data = wire.read_json_body(content, None) if content else {}
        except ValueError:
            data = {}
        if status not in ok:
            raise Rejected(status, f"central server answered {status} for {path}: {data.get('error', '')}", data)
        data["status"] = status
        return data

    def media_offset(self, media_id: str) -> tuple[int, bool]:
        return self.upload_offset(f"/media/{media_id}")

    def media_chunk(self, media_id: str, offset: int, total: int, sha256: str, chunk: bytes) -> dict:
        return self.upload_chunk(f"/media/{media_id}", offset, total, sha256, chunk)

    def publications(self, since: int) -> dict:
        _, data = self.call_json("GET", "/publications", params={"since": since})
        return data

    def file(self, file_id: str) -> bytes:
        status, _, content = self.call("GET", f"/files/{file_id}")
        if status != 200:
            raise Rejected(status, f"central server answered {status} for file {file_id}")
        return content
