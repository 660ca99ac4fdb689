"""Publications: what the central server sends down to hubs, and each hub's pull."""

from __future__ import annotations

import json

from hub.central.areas import within
from hub.central.errors import CentralError
from hub.core.db import new_id, transaction, utcnow
from hub.sync import wire

KINDS = ("notice", "announcement")


def _pub_out(r: dict) -> dict:
    return {"id": r["id"], "seq": r["seq"], "kind": r["kind"], "data": json.loads(r["data"]),
            "targets": json.loads(r["targets"]) if r["targets"] else None,
            "areas": json.loads(r["areas"]) if r.get("areas") else None, "scope": r.get("scope"),
            "withdrawn": bool(r["withdrawn"]), "created_by": r["created_by"],
            "created_at": r["created_at"], "updated_at": r["updated_at"]}


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
        pub_id = new_id()
        now = utcnow()
        with transaction(self.db) as conn:
            conn.execute(
                "insert into publications (id, seq, kind, data, targets, areas, scope, created_by, created_at,"
                " updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pub_id, self._next_seq(conn), kind, wire.canonical(data).decode(),
                 json.dumps(targets) if targets else None, json.dumps(areas) if areas else None, scope, user,
                 now, now),
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
    def publications_since(self, hub_id: str, since: int, limit: int = 100, address: str | None = None) -> dict:
        """What *hub_id* has not pulled yet; the hub's cursor is kept here as well.

        Only publications addressed to the hub are read (to all, to it, or
        to its commune, district or province), so a hub's pull costs the
        same whatever is published elsewhere.
        """
        hub = list(self.db.query("select province_code, district_code, commune_code from hubs where id = ?",
                                 [hub_id]))
        codes = [hub[0][k] for k in ("province_code", "district_code", "commune_code")] if hub else [None] * 3
        top = self.db.conn.execute("select coalesce(max(seq), 0) from publications").fetchone()[0]
        rows = list(self.db.query(
            "select p.* from publications p where p.seq > ? and p.seq <= ?"
            " and ((p.targets is null and p.areas is null) or exists (select 1 from publication_targets t"
            " where t.publication_id = p.id and (t.hub_id = ? or t.area_code in (?, ?, ?))))"
            " order by p.seq limit ?", [since, top, hub_id, *codes, limit + 1]))
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = rows[-1]["seq"] if more else max(top, since)
        pubs = [_pub_out(r) for r in rows]
        for p in pubs:
            for k in ("targets", "areas", "scope", "created_by"):
                p.pop(k)
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
