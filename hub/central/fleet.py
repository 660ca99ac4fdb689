"""The fleet's care on the central server: each hub's health, its newest backup, and alerts to officers.

A hub sends a small health report with every hello (:mod:`hub.sync.health`);
the store keeps the newest in ``hubs.health``. From it and the last contact,
:func:`problems_of` finds what officers must hear about:

- ``silent``: nothing heard for ``fleet_silent_hours``;
- ``disk_low``: less free disk than ``fleet_disk_low_mb``;
- ``missed_plays``: announcements the loudspeaker missed in the last day.

:func:`run_alerts` (``hub central alerts``) turns them into Telegram messages
to ``fleet_chat_id``. A problem is a row in ``fleet_alerts`` while it lasts.
Its alert goes out once, and only after the problem has lasted
``fleet_alert_after_minutes``, so a hub that blinks off for a moment wakes nobody.
When the problem clears, a recovery message follows, and only if the alert was
sent. Each message is claimed in the database before it is sent, so two runs at
once never send it twice; a message Telegram refused is tried on the next run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import requests

from hub.central import database
from hub.central.areas import scope_clause
from hub.central.errors import CentralError
from hub.core.db import transaction, utcnow
from hub.core.words import N_, load_catalog
from hub.sync.client import redact

log = logging.getLogger(__name__)

#: Largest backup a hub may upload.
MAX_BACKUP_BYTES = 4 * 1024 * 1024 * 1024

ALERTS = {
    "silent": N_("%(hub)s: no contact since %(since)s"),
    "disk_low": N_("%(hub)s: low disk space, %(mb)s MB free"),
    "missed_plays": N_("%(hub)s: %(count)s announcements missed in the last day"),
}
RECOVERIES = {
    "silent": N_("%(hub)s: in contact again"),
    "disk_low": N_("%(hub)s: enough disk space again"),
    "missed_plays": N_("%(hub)s: no more missed announcements"),
}
PROBLEM_NAMES = {"silent": N_("Silent"), "disk_low": N_("Low disk"), "missed_plays": N_("Missed plays")}


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def problems_of(hub: dict, settings, now: datetime) -> dict[str, dict]:
    """What is wrong with *hub* now: problem → the values its message needs."""
    out: dict[str, dict] = {}
    last = _when(hub.get("last_contact"))
    if hub.get("revoked_at") or last is None:
        return out  # not deployed yet, or taken out of service: nobody expects to hear from it
    if (now - last).total_seconds() > settings.fleet_silent_hours * 3600:
        out["silent"] = {"since": hub["last_contact"]}
    health = hub.get("health") or {}
    free = health.get("disk_free_mb")
    if isinstance(free, int) and 0 <= free < settings.fleet_disk_low_mb:
        out["disk_low"] = {"mb": free}
    missed = health.get("missed_plays")
    if isinstance(missed, int) and missed > 0:
        out["missed_plays"] = {"count": missed}
    return out


def message(problem: str, values: dict, recovered: bool = False) -> str:
    """Khmer first, English beside, as the officers read everything else."""
    template = (RECOVERIES if recovered else ALERTS)[problem]
    km = load_catalog("km").get(template, template)
    mark = "✅" if recovered else "⚠️"
    return f"{mark} {km % values}\n{template % values}"


def telegram_sender(settings) -> Callable[[str], None]:
    """Send one message to the officers' chat through the Telegram Bot API."""
    token, chat = settings.telegram_bot_token, settings.fleet_chat_id
    url = f"{settings.telegram_api_url.rstrip('/')}/bot{token}/sendMessage"
    session = requests.Session()
    session.trust_env = False

    def send(text: str) -> None:
        try:
            resp = session.post(url, data={"chat_id": chat, "text": text}, timeout=settings.sync_timeout_seconds)
            body = resp.json()
        except (requests.RequestException, ValueError) as e:
            raise CentralError(redact(f"Telegram: {type(e).__name__}: {e}", [token])) from None
        if not body.get("ok"):
            raise CentralError(f"Telegram: {body.get('error_code', resp.status_code)} {body.get('description', '')}")

    return send


def run_alerts(store, settings, send: Callable[[str], None], now: datetime | None = None) -> list[str]:
    """One pass over the fleet: open, alert, recover. Returns the messages sent."""
    now = now or datetime.now(UTC)
    stamp = now.isoformat(timespec="seconds")
    debounce = settings.fleet_alert_after_minutes * 60
    sent: list[str] = []
    current = {(r["hub_id"], r["problem"]): r for r in store.db.query("select * from fleet_alerts")}
    hubs = {h["id"]: h for h in store.hubs()}
    found: dict[tuple[str, str], dict] = {}
    for hub in hubs.values():
        for problem, values in problems_of(hub, settings, now).items():
            found[(hub["id"], problem)] = {"hub": hub["name"], **values}
    with transaction(store.db) as conn:
        for (hub_id, problem), values in found.items():
            detail = json.dumps(values, ensure_ascii=False, sort_keys=True)
            conn.execute("insert into fleet_alerts (hub_id, problem, detail, opened_at) values (?, ?, ?, ?)"
                         " on conflict (hub_id, problem) do update set detail = excluded.detail",
                         (hub_id, problem, detail, stamp))
    # Cleared problems: a recovery message if the alert went out, else nothing at all.
    for key, row in current.items():
        if key in found:
            continue
        hub = hubs.get(key[0])
        with transaction(store.db) as conn:
            claimed = conn.execute("delete from fleet_alerts where hub_id = ? and problem = ? returning alerted_at",
                                   key).fetchone()
        if claimed is None or claimed[0] is None:
            continue
        text = message(key[1], {"hub": hub["name"] if hub else key[0]}, recovered=True)
        try:
            send(text)
            sent.append(text)
        except CentralError as e:
            log.warning("recovery message not sent, will retry: %s", e)
            with transaction(store.db) as conn:
                conn.execute("insert into fleet_alerts (hub_id, problem, detail, opened_at, alerted_at)"
                             " values (?, ?, ?, ?, ?) on conflict do nothing",
                             (*key, row["detail"], row["opened_at"], claimed[0]))
    # Problems that have lasted long enough: their alert, once.
    for row in list(store.db.query("select * from fleet_alerts where alerted_at is null")):
        key = (row["hub_id"], row["problem"])
        if key not in found or (now - _when(row["opened_at"])).total_seconds() < debounce:
            continue
        with transaction(store.db) as conn:
            won = conn.execute("update fleet_alerts set alerted_at = ? where hub_id = ? and problem = ?"
                               " and alerted_at is null", (stamp, *key)).rowcount
        if not won:
            continue
        text = message(key[1], found[key])
        try:
            send(text)
            sent.append(text)
        except CentralError as e:
            log.warning("alert not sent, will retry: %s", e)
            with transaction(store.db) as conn:
                conn.execute("update fleet_alerts set alerted_at = null where hub_id = ? and problem = ?", key)
    return sent


class Fleet:
    """The fleet part of :class:`hub.central.store.CentralStore`: health, backups, alerts."""

    # --- backups, uploaded like media and kept newest-only ---
    def backup_upload(self, hub_id: str, backup_id: str) -> dict | None:
        """The upload of *backup_id*, if it is *hub_id*'s; CentralError if another hub's."""
        state = self.upload_state(backup_id)
        if state is not None and state["hub_id"] != hub_id:
            raise CentralError("this backup belongs to another hub")
        return state

    def append_backup(self, hub_id: str, backup_id: str, offset: int, total: int, sha256: str, chunk: bytes,
                      made_at: str) -> dict:
        """Append a chunk of a hub's backup; when it is whole, it replaces the hub's previous one."""
        if total > MAX_BACKUP_BYTES:
            raise CentralError("the backup is too large")
        if self.media_record(backup_id) is not None:
            raise CentralError("this id is a media file's, not a backup's")
        self.backup_upload(hub_id, backup_id)
        result = self.append_media(hub_id, backup_id, offset, total, sha256, chunk)
        if result.get("complete") and not result.get("mismatch"):
            self._keep_newest_backup(hub_id, backup_id, total, sha256, made_at)
        return result

    def _keep_newest_backup(self, hub_id: str, backup_id: str, total: int, sha256: str, made_at: str) -> None:
        with transaction(self.db) as conn:
            lock = " for update" if self.backend == database.POSTGRESQL else ""
            old = conn.execute(f"select backup_id from hub_backups where hub_id = ?{lock}", (hub_id,)).fetchone()
            if old and old[0] == backup_id:
                return
            conn.execute("insert into hub_backups (hub_id, backup_id, bytes, sha256, made_at, received_at)"
                         " values (?, ?, ?, ?, ?, ?) on conflict (hub_id) do update set backup_id = excluded.backup_id,"
                         " bytes = excluded.bytes, sha256 = excluded.sha256, made_at = excluded.made_at,"
                         " received_at = excluded.received_at",
                         (hub_id, backup_id, total, sha256, made_at, utcnow()))
            if old:
                conn.execute("delete from uploads where id = ?", (old[0],))
        if old:
            self.media.delete(self._upload_name(old[0], part=False))

    def latest_backup(self, hub_name: str) -> tuple[dict, str] | None:
        """(the row, the stored file's name) of the newest whole backup of the hub named *hub_name*."""
        rows = list(self.db.query("select b.* from hub_backups b join hubs h on h.id = b.hub_id where h.name = ?",
                                  [hub_name]))
        if not rows:
            return None
        return rows[0], self._upload_name(rows[0]["backup_id"], part=False)

    # --- the console's fleet page ---
    def fleet(self, scope: str | None = None, settings=None, now: datetime | None = None) -> list[dict]:
        """Every hub in *scope* with its health, newest backup, problems now and alerts sent."""
        now = now or datetime.now(UTC)
        where, args = scope_clause(scope)
        backups = {r["hub_id"]: r for r in self.db.query(
            f"select b.* from hub_backups b join hubs h on h.id = b.hub_id where {where}", args)}
        alerted: dict[str, list[str]] = {}
        for r in self.db.query(f"select a.hub_id, a.problem from fleet_alerts a join hubs h on h.id = a.hub_id"
                               f" where {where} and a.alerted_at is not null", args):
            alerted.setdefault(r["hub_id"], []).append(r["problem"])
        out = []
        for hub in self.hubs(scope):
            hub["backup"] = backups.get(hub["id"])
            hub["problems"] = sorted(problems_of(hub, settings, now)) if settings is not None else []
            hub["alerted"] = sorted(alerted.get(hub["id"], []))
            out.append(hub)
        out.sort(key=lambda h: (not h["problems"], h["name"]))
        return out
