"""A hub that speaks the sync protocol directly, for tests and the bench that need many hubs at once.

The real hub (``hub sync once``) is one process per hub; a thousand of them
would measure process start-up. This speaks the same wire: bearer token,
``X-Hub-Id``, a nonce whose signed answer is checked, gzipped JSON batches.
"""

from __future__ import annotations

import gzip
import http.client
import json
import secrets
import time
import uuid

from hub.sync import wire


class WireHub:
    def __init__(self, port: int, token: str, hub_id: str, host: str = "127.0.0.1"):
        self.host, self.port, self.token, self.hub_id = host, port, token, hub_id
        self.conn: http.client.HTTPConnection | None = None
        self.cursor = 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, method: str, path: str, value=None) -> tuple[int, dict | None, float]:
        """One request; return (status, JSON answer, seconds). A bad signature raises."""
        nonce = secrets.token_hex(12)
        headers = {"Authorization": f"Bearer {self.token}", "X-Hub-Id": self.hub_id, "X-Hub-Nonce": nonce,
                   "Accept-Encoding": "gzip"}
        body = None
        if value is not None:
            body = wire.gzip_json(value)
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            started = time.perf_counter()
            try:
                self.conn.request(method, wire.API + path, body=body, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (ConnectionError, http.client.HTTPException):
                # A kept-alive connection the server closed between requests: open another once.
                self.close()
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            content = gzip.decompress(raw) if resp.getheader("Content-Encoding") == "gzip" else raw
            if not wire.signature_ok(self.token, nonce, content, resp.getheader("X-Hub-Signature")):
                raise AssertionError(f"unsigned answer {resp.status} to {method} {path}")
            return resp.status, (json.loads(content) if content else None), elapsed
        raise AssertionError("unreachable")

    def hello(self, health: dict | None = None):
        return self.call("POST", "/hello", {"hub_id": self.hub_id, "health": health or {}})

    def push(self, records: list[dict]):
        return self.call("POST", "/records", {"records": records})

    def pull(self):
        status, body, elapsed = self.call("GET", f"/publications?since={self.cursor}")
        if status == 200:
            self.cursor = body["cursor"]
        return status, body, elapsed

    def record(self, kind: str, data: dict, created_at: str | None = None, record_id: str | None = None) -> dict:
        return {"id": record_id or str(uuid.uuid4()), "kind": kind, "hub_id": self.hub_id,
                "created_at": created_at or "2026-12-01T03:00:00+00:00", "data": data}
