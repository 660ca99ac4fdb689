"""Hub releases on the central server: stored once by `hub central release publish`, fetched by hubs in ranges."""

from __future__ import annotations

import json

from hub.core.db import transaction, utcnow
from hub.update import release as rel


def wheel_name(version: str) -> str:
    return f"release-{version}.whl"


class Releases:
    """The release part of :class:`hub.central.store.CentralStore`."""

    def add_release(self, body: bytes, signature: bytes, wheel_bytes: bytes) -> str:
        manifest = json.loads(body)
        version = manifest["version"]
        self.media.put(wheel_name(version), wheel_bytes)
        with transaction(self.db) as conn:
            conn.execute("delete from hub_releases where version = ?", (version,))
            conn.execute("insert into hub_releases (version, manifest, signature, bytes, published_at)"
                         " values (?, ?, ?, ?, ?)",
                         (version, body.decode(), signature.decode(), manifest["bytes"], utcnow()))
        return version

    def newest_release(self) -> dict | None:
        rows = list(self.db.query("select version, manifest, signature, bytes from hub_releases"))
        if not rows:
            return None
        return max(rows, key=lambda r: rel.version_key(r["version"]))

    def release_range(self, version: str, start: int, length: int) -> bytes | None:
        name = wheel_name(version)
        if not self.media.exists(name):
            return None
        with self.media.open(name) as f:
            f.seek(start)
            return f.read(length)
