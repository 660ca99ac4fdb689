"""The central part of remote settings and diagnostics: what officers ask of a hub, and what it answers.

Changes are checked here (:func:`hub.sync.remote.check_change`, the hub's own
settings checks) before they are accepted, and again on the hub against its
real hub.toml. At most one change waits per hub: a second change asked before
the hub synced is merged into the waiting one. The hub learns of both kinds
in its hello answer (:meth:`Remote.waiting_for`).
"""

from __future__ import annotations

import json

from hub.central.areas import within
from hub.central.errors import CentralError
from hub.core.db import new_id, transaction, utcnow
from hub.core.settings import REMOTE_SETTINGS, SETTINGS
from hub.sync import wire
from hub.sync.remote import check_change

#: What a secret in a change becomes once the hub has answered.
HIDDEN = "***"
_SECRET = {s.name for s in SETTINGS if s.secret}
#: Largest diagnostics bundle accepted.
MAX_BUNDLE_BYTES = 2 * 1024 * 1024


def _hidden(changes: dict) -> dict:
    return {k: (HIDDEN if k in _SECRET and v else v) for k, v in changes.items()}


class Remote:
    """The remote-care part of :class:`hub.central.store.CentralStore`."""

    def hub_in_scope(self, hub_id: str, scope: str | None) -> dict:
        rows = list(self.db.query("select * from hubs where id = ?", [hub_id]))
        if not rows or not within(rows[0]["commune_code"], scope):
            raise CentralError("no such hub")
        return rows[0]

    # --- settings ---
    def ask_settings(self, hub_id: str, changes: dict, asked_by: str) -> str:
        """Accept an officer's change (SettingsError if a value cannot be used); return its id."""
        unknown = [k for k in changes if k not in REMOTE_SETTINGS]
        if unknown or not changes:
            raise CentralError("nothing to change" if not changes else f"{unknown[0]} cannot be changed remotely")
        check_change(changes)
        with transaction(self.db) as conn:
            row = conn.execute("select id, changes from hub_settings_changes where hub_id = ? and state = 'waiting'",
                               (hub_id,)).fetchone()
            if row:
                merged = {**json.loads(row[1]), **changes}
                check_change(merged)
                conn.execute("update hub_settings_changes set changes = ?, asked_by = ?, asked_at = ? where id = ?",
                             (json.dumps(merged, ensure_ascii=False, sort_keys=True), asked_by, utcnow(), row[0]))
                return row[0]
            change_id = new_id()
            conn.execute("insert into hub_settings_changes (id, hub_id, changes, asked_by, asked_at)"
                         " values (?, ?, ?, ?, ?)",
                         (change_id, hub_id, json.dumps(changes, ensure_ascii=False, sort_keys=True), asked_by,
                          utcnow()))
        return change_id

    def settings_changes(self, hub_id: str, limit: int = 20) -> list[dict]:
        out = []
        for r in self.db.query("select * from hub_settings_changes where hub_id = ? order by asked_at desc limit ?",
                               [hub_id, limit]):
            r["changes"] = _hidden(json.loads(r["changes"]))
            out.append(r)
        return out

    def reported_settings(self, hub_id: str) -> dict | None:
        rows = list(self.db.query("select * from hub_remote_settings where hub_id = ?", [hub_id]))
        if not rows:
            return None
        return {"settings": json.loads(rows[0]["settings"]), "reported_at": rows[0]["reported_at"]}

    def settings_answer(self, hub_id: str, change_id: str, state: str, message: str, values: dict) -> bool:
        """Record the hub's answer to a change; False if the change is not this hub's."""
        if state not in ("applied", "refused"):
            raise CentralError("state must be applied or refused")
        with transaction(self.db) as conn:
            row = conn.execute("select changes, state from hub_settings_changes where id = ? and hub_id = ?",
                               (change_id, hub_id)).fetchone()
            if row is None:
                return False
            if row[1] == "waiting":
                conn.execute("update hub_settings_changes set state = ?, message = ?, answered_at = ?, changes = ?"
                             " where id = ?", (state, message[:1000], utcnow(),
                                               json.dumps(_hidden(json.loads(row[0])), ensure_ascii=False,
                                                          sort_keys=True), change_id))
            shown = {k: str(v)[:200] for k, v in values.items() if k in REMOTE_SETTINGS}
            conn.execute("insert into hub_remote_settings (hub_id, settings, reported_at) values (?, ?, ?)"
                         " on conflict (hub_id) do update set settings = excluded.settings,"
                         " reported_at = excluded.reported_at",
                         (hub_id, json.dumps(_hidden(shown), ensure_ascii=False, sort_keys=True), utcnow()))
        return True

    # --- diagnostics ---
    def ask_diagnostics(self, hub_id: str, asked_by: str) -> str:
        with transaction(self.db) as conn:
            row = conn.execute("select id from hub_diagnostics where hub_id = ? and received_at is null",
                               (hub_id,)).fetchone()
            if row:
                return row[0]
            request_id = new_id()
            conn.execute("insert into hub_diagnostics (id, hub_id, asked_by, asked_at) values (?, ?, ?, ?)",
                         (request_id, hub_id, asked_by, utcnow()))
        return request_id

    def diagnostics(self, hub_id: str, limit: int = 10) -> list[dict]:
        return list(self.db.query("select id, hub_id, asked_by, asked_at, received_at, bytes from hub_diagnostics"
                                  " where hub_id = ? order by asked_at desc limit ?", [hub_id, limit]))

    def diagnostics_bundle(self, request_id: str) -> dict | None:
        rows = list(self.db.query("select * from hub_diagnostics where id = ? and bundle is not null", [request_id]))
        return rows[0] if rows else None

    def store_diagnostics(self, hub_id: str, request_id: str, bundle: dict) -> bool:
        text = wire.canonical(bundle).decode()
        if len(text) > MAX_BUNDLE_BYTES:
            raise CentralError("the bundle is too large")
        with transaction(self.db) as conn:
            return conn.execute("update hub_diagnostics set bundle = ?, bytes = ?, received_at = ?"
                                " where id = ? and hub_id = ? and received_at is null",
                                (text, len(text), utcnow(), request_id, hub_id)).rowcount > 0 or bool(
                conn.execute("select 1 from hub_diagnostics where id = ? and hub_id = ?",
                             (request_id, hub_id)).fetchone())

    # --- what the hub's hello answer names ---
    def waiting_for(self, hub_id: str) -> dict:
        change = list(self.db.query("select id, changes from hub_settings_changes where hub_id = ?"
                                    " and state = 'waiting' order by asked_at limit 1", [hub_id]))
        asked = [r["id"] for r in self.db.query("select id from hub_diagnostics where hub_id = ?"
                                                " and received_at is null order by asked_at", [hub_id])]
        return {"settings": {"id": change[0]["id"], "values": json.loads(change[0]["changes"])} if change else None,
                "diagnostics": asked}
