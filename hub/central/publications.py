"""Publications: what the central server sends down to hubs, and each hub's pull."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from hub.central import cap
from hub.central.areas import within
from hub.central.errors import CentralError
from hub.core.db import new_id, transaction, utcnow
from hub.sync import wire

KINDS = ("notice", "announcement")
#: What a hub's announcer did with an urgent announcement, as its acknowledgement says.
ACK_OUTCOMES = ("played", "missed", "failed")
#: Urgent broadcasts a hub's urgent poll is answered with, at most.
URGENT_LIMIT = 20


def _urgent_fields(kind: str, data: dict, now: datetime) -> tuple[int, str | None]:
    """(urgent, expires_at) columns of a publication, with the CAP fields of an urgent one checked."""
    if not (kind == "announcement" and data.get("urgent")):
        return 0, None
    if not data.get("audio"):
        raise cap.CapError("urgent_audio")
    for name, allowed in (("urgency", cap.URGENCIES), ("severity", cap.SEVERITIES),
                          ("certainty", cap.CERTAINTIES)):
        data.setdefault(name, "Unknown")
        if data[name] not in allowed:
            raise cap.CapError("bad_value", field=name, value=str(data[name])[:40], allowed=", ".join(allowed))
    if not data.get("expires_at"):
        raise cap.CapError("no_expiry")
    expires = cap.cap_time(str(data["expires_at"]), "expires")
    if expires <= now:
        raise cap.CapError("expired", value=expires.isoformat())
    data["expires_at"] = cap.utc_text(expires)
    data.pop("play_at", None)  # an urgent one plays at once
    return 1, data["expires_at"]


def _pub_out(r: dict) -> dict:
    return {"id": r["id"], "seq": r["seq"], "kind": r["kind"], "data": json.loads(r["data"]),
            "targets": json.loads(r["targets"]) if r["targets"] else None,
            "areas": json.loads(r["areas"]) if r.get("areas") else None, "scope": r.get("scope"),
            "withdrawn": bool(r["withdrawn"]), "urgent": bool(r.get("urgent")),
            "expires_at": r.get("expires_at"), "created_by": r["created_by"],
            "created_at": r["created_at"], "updated_at": r["updated_at"]}


def _for_hub(r: dict) -> dict:
    p = _pub_out(r)
    for k in ("targets", "areas", "scope", "created_by", "urgent", "expires_at"):
        p.pop(k)
    return p


#: Publications addressed to the hub whose (id, three area codes) follow as arguments.
_ADDRESSED = ("((p.targets is null and p.areas is null) or exists (select 1 from publication_targets t"
              " where t.publication_id = p.id and (t.hub_id = ? or t.area_code in (?, ?, ?))))")


class Publications:
    """The publications part of :class:`hub.central.store.CentralStore`."""

    # --- publications ---
    def _next_seq(self, conn) -> int:
        conn.execute("insert into counters (name, value) values ('publication', 0) on conflict do nothing")
        # The update locks the counter's row until commit: seqs are handed out one at a time.
        return conn.execute("update counters set value = value + 1 where name = 'publication' returning value"
                            ).fetchone()[0]
    def publish(self, kind: str, data: dict, targets: list[str] | None, user: str = "",
                areas: list[str] | None = None, scope: str | None = None) -> str:
        """Publish to every hub, or to the hubs with these ids and the hubs in these areas.

        *scope* is the publishing officer's: nothing may be addressed outside
        it, and "every hub" means every hub inside it.
        """
        if kind not in KINDS:
            raise CentralError(f"kind must be one of {', '.join(KINDS)}")
        if not (data.get("title_km") or data.get("title_en")):
            raise CentralError("a publication needs a title")
        areas = sorted(set(areas or []))
        targets = sorted(set(targets or []))
        for code in areas:
            self._require_area(code)
            if not within(code, scope):
                raise CentralError(f"area {code} is outside your scope")
        if targets:
            found = {h["id"]: h for h in self.db.query(
                f"select id, commune_code from hubs where id in ({', '.join('?' * len(targets))})", targets)}
            for hub_id in targets:
                if hub_id not in found or not within(found[hub_id]["commune_code"], scope):
                    raise CentralError("a chosen hub is not registered within your scope")
        if scope and not areas and not targets:
            areas = [scope]
        data = dict(data)
        urgent, expires_at = _urgent_fields(kind, data, datetime.now(UTC))
        pub_id = new_id()
        now = utcnow()
        with transaction(self.db) as conn:
            conn.execute(
                "insert into publications (id, seq, kind, data, targets, areas, scope, created_by, created_at,"
                " updated_at, urgent, expires_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pub_id, self._next_seq(conn), kind, wire.canonical(data).decode(),
                 json.dumps(targets) if targets else None, json.dumps(areas) if areas else None, scope, user,
                 now, now, urgent, expires_at),
            )
            for code in areas:
                conn.execute("insert into publication_targets (publication_id, area_code) values (?, ?)",
                             (pub_id, code))
            for hub_id in targets:
                conn.execute("insert into publication_targets (publication_id, hub_id) values (?, ?)",
                             (pub_id, hub_id))
        return pub_id
    def withdraw(self, pub_id: str, scope: str | None = None) -> None:
        """Withdraw a publication; hubs expire the notice at their next pull."""
        if scope and not any(p["id"] == pub_id for p in self.publications(scope)):
            raise CentralError(f"no publication {pub_id}")
        with transaction(self.db) as conn:
            cur = conn.execute("update publications set withdrawn = 1, seq = ?, updated_at = ? where id = ?",
                               (self._next_seq(conn), utcnow(), pub_id))
            if cur.rowcount == 0:
                raise CentralError(f"no publication {pub_id}")
    def publications(self, scope: str | None = None, limit: int = 500) -> list[dict]:
        """The latest publications; with *scope*, those addressed only inside it."""
        pubs = [_pub_out(r) for r in self.db.query("select * from publications order by seq desc limit ?", [limit])]
        if not scope:
            return pubs
        hub_ids = sorted({h for p in pubs for h in p["targets"] or []})
        communes = {}
        if hub_ids:
            communes = {r["id"]: r["commune_code"] for r in self.db.query(
                f"select id, commune_code from hubs where id in ({', '.join('?' * len(hub_ids))})", hub_ids)}
        return [p for p in pubs if (p["areas"] or p["targets"])
                and all(within(a, scope) for a in p["areas"] or [])
                and all(within(communes.get(h), scope) for h in p["targets"] or [])]
    def _hub_codes(self, hub_id: str) -> list:
        hub = list(self.db.query("select province_code, district_code, commune_code from hubs where id = ?",
                                 [hub_id]))
        return [hub[0][k] for k in ("province_code", "district_code", "commune_code")] if hub else [None] * 3

    # --- urgent broadcasts ---
    def urgent_for(self, hub_id: str) -> tuple[str, list[dict]]:
        """(ETag, publications) of the urgent announcements addressed to *hub_id* that have not expired.

        Withdrawn ones stay in the list until they expire, so a hub that
        already has one learns of the withdrawal at its next urgent poll. The
        ETag changes whenever the list or any of its items does (each change
        gives the publication a new seq), so a poll with the same
        If-None-Match is answered 304 with no body.
        """
        rows = list(self.db.query(
            f"select p.* from publications p where p.urgent = 1 and p.expires_at > ? and {_ADDRESSED}"
            " order by p.seq desc limit ?", [utcnow(), hub_id, *self._hub_codes(hub_id), URGENT_LIMIT]))
        rows.reverse()
        tag = hashlib.sha256(",".join(f"{r['id']}:{r['seq']}" for r in rows).encode()).hexdigest()[:32]
        return f'"{tag}"', [_for_hub(r) for r in rows]

    def record_acks(self, hub_id: str, acks: list) -> list[str]:
        """Keep each acknowledgement a hub sends for an urgent announcement addressed to it; return their ids.

        One row per publication and hub: a later ack for the same one replaces it
        (a hub sends again when it was not sure the first arrived).
        """
        stored = []
        now = utcnow()
        codes = self._hub_codes(hub_id)
        with transaction(self.db) as conn:
            for a in acks:
                if not isinstance(a, dict) or a.get("outcome") not in ACK_OUTCOMES:
                    continue
                pub_id = str(a.get("publication_id", ""))[:64]
                addressed = conn.execute(f"select 1 from publications p where p.id = ? and p.urgent = 1"
                                         f" and {_ADDRESSED}", (pub_id, hub_id, *codes)).fetchone()
                if not addressed:
                    continue
                conn.execute(
                    "insert into publication_acks (publication_id, hub_id, outcome, started_at, ended_at, detail,"
                    " received_at) values (?, ?, ?, ?, ?, ?, ?) on conflict (publication_id, hub_id) do update"
                    " set outcome = excluded.outcome, started_at = excluded.started_at,"
                    " ended_at = excluded.ended_at, detail = excluded.detail, received_at = excluded.received_at",
                    (pub_id, hub_id, a["outcome"], _short(a.get("started_at"), 40), _short(a.get("ended_at"), 40),
                     _short(a.get("detail"), 300) or "", now))
                stored.append(pub_id)
        return stored

    def acks(self, pub_id: str) -> list[dict]:
        """Every hub an urgent announcement is addressed to (or that acknowledged it), with its ack or None.

        Hubs that played it come first, by when; those not heard from yet last.
        """
        rows = list(self.db.query("select * from publications where id = ?", [pub_id]))
        if not rows:
            raise CentralError(f"no publication {pub_id}")
        p = rows[0]
        everyone = p["targets"] is None and p["areas"] is None
        hubs = list(self.db.query(
            "select h.id, h.name, h.commune_code, h.last_contact, a.outcome, a.started_at, a.ended_at, a.detail,"
            " a.received_at from hubs h left join publication_acks a on a.hub_id = h.id and a.publication_id = ?"
            " where a.hub_id is not null or (h.revoked_at is null and (? or exists (select 1 from"
            " publication_targets t where t.publication_id = ? and (t.hub_id = h.id or t.area_code in"
            " (h.province_code, h.district_code, h.commune_code)))))",
            [pub_id, everyone, pub_id]))
        order = {"played": 0, "failed": 1, "missed": 1, None: 2}
        hubs.sort(key=lambda h: (order[h["outcome"]], h["started_at"] or h["received_at"] or "", h["name"]))
        return hubs

    def publish_cap(self, content: bytes, uploads: dict[str, bytes], targets: list[str] | None, user: str = "",
                    areas: list[str] | None = None, scope: str | None = None) -> list[str]:
        """Publish (or, for a Cancel, withdraw) from a CAP 1.2 message; return the publications' ids.

        An Alert or Update becomes an urgent announcement with the message's
        audio; an Update or Cancel withdraws the publications of the alerts it
        references.
        """
        alert = cap.parse(content, uploads)
        earlier = self._cap_publications(alert.references, scope) if alert.references else []
        if alert.msg_type == "Cancel":
            if not earlier:
                raise cap.CapError("no_reference")
            for pub_id in earlier:
                self.withdraw(pub_id, scope)
            return earlier
        name, audio, mime = alert.audio
        row = self.add_file(audio, name, mime)
        data = {**alert.data, "urgent": True, "cap_key": alert.key,
                "audio": {"id": row["id"], "sha256": row["sha256"], "bytes": row["bytes"]}}
        pub_id = self.publish("announcement", data, targets, user, areas=areas, scope=scope)
        for old in earlier:
            self.withdraw(old, scope)
        return [pub_id]

    def _cap_publications(self, references: list[str], scope: str | None) -> list[str]:
        keys = set(references)
        return [p["id"] for p in self.publications(scope) if p["urgent"] and p["data"].get("cap_key") in keys
                and not p["withdrawn"]]

    def publications_since(self, hub_id: str, since: int, limit: int = 100, address: str | None = None) -> dict:
        """What *hub_id* has not pulled yet; the hub's cursor is kept here as well.

        Only publications addressed to the hub are read (to all, to it, or
        to its commune, district or province), so a hub's pull costs the
        same whatever is published elsewhere.
        """
        codes = self._hub_codes(hub_id)
        top = self.db.conn.execute("select coalesce(max(seq), 0) from publications").fetchone()[0]
        rows = list(self.db.query(
            f"select p.* from publications p where p.seq > ? and p.seq <= ? and {_ADDRESSED}"
            " order by p.seq limit ?", [since, top, hub_id, *codes, limit + 1]))
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = rows[-1]["seq"] if more else max(top, since)
        pubs = [_for_hub(r) for r in rows]
        now = utcnow()
        with transaction(self.db) as conn:
            conn.execute("insert into pull_cursors (hub_id, cursor, at) values (?, ?, ?)"
                         " on conflict (hub_id) do update set cursor = excluded.cursor, at = excluded.at",
                         (hub_id, since, now))
            if address is not None:
                conn.execute("update hubs set last_contact = ?, last_address = ? where id = ?",
                             (now, address, hub_id))
        return {"publications": pubs, "cursor": cursor, "more": more}
    def pull_cursor(self, hub_id: str) -> int | None:
        row = self.db.conn.execute("select cursor from pull_cursors where hub_id = ?", (hub_id,)).fetchone()
        return row[0] if row else None


def _short(value, limit: int) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None
