"""What officers read: the dashboard's counts by area and week, feedback lists and exports."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from hub.central.areas import AREA_COLUMN, LEVELS, scope_clause
from hub.central.errors import CentralError
from hub.core.csvsafe import formula_safe

#: Records read per query while exporting.
EXPORT_PAGE = 5000


def _record_out(r: dict) -> dict:
    r = dict(r)
    r["data"] = json.loads(r["data"])
    return r


class Reports:
    """The reporting part of :class:`hub.central.store.CentralStore`: reads only."""

    # --- what the dashboard shows ---
    def feedback_overview(self, weeks: int = 8, today: datetime | None = None, scope: str | None = None) -> dict:
        """Feedback by hub, category, current status and week (Monday first), in grouped queries."""
        today = today or datetime.now(UTC)
        monday = (today - timedelta(days=today.weekday())).date()
        starts = [monday - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
        where, args = scope_clause(scope)
        base = f"from feedback_state f join hubs h on h.id = f.hub_id where {where}"
        by_category, by_status = Counter(), Counter()
        for r in self.db.query(f"select f.category, f.status, count(*) as n {base} group by f.category, f.status",
                               args):
            by_category[r["category"]] += r["n"]
            by_status[r["status"]] += r["n"]
        by_hub = {r["name"]: r["n"] for r in self.db.query(
            f"select h.name, count(*) as n {base} group by h.name", args)}
        weekly: dict[str, list[int]] = {}
        for r in self.db.query(f"select substr(f.created_at, 1, 10) as day, f.category, count(*) as n {base}"
                               " and f.created_at >= ? group by substr(f.created_at, 1, 10), f.category",
                               [*args, starts[0].isoformat()]):
            try:
                idx = (datetime.fromisoformat(r["day"]).date() - starts[0]).days // 7
            except ValueError:
                continue
            if 0 <= idx < weeks:
                weekly.setdefault(r["category"], [0] * weeks)[idx] += r["n"]
        return {"weeks": [s.isoformat() for s in starts], "weekly": weekly,
                "by_category": dict(by_category.most_common()), "by_status": dict(by_status.most_common()),
                "by_hub": by_hub, "total": sum(by_category.values())}
    def areas_overview(self, area: str | None = None, page: int = 1, per_page: int = 50,
                       heard_within_days: int = 7) -> dict:
        """One row per area one level below *area* (the country: provinces), with counts, a page at a time."""
        level_len = len(area) if area else 0
        if level_len >= 6:
            raise CentralError("a commune has hubs, not areas, below it")
        child_col = AREA_COLUMN[level_len + 2]
        if area:
            total = self.db.conn.execute("select count(*) from areas where parent_code = ?", (area,)).fetchone()[0]
            page_rows = list(self.db.query("select code, name_km, name_en from areas where parent_code = ?"
                                           " order by code limit ? offset ?", [area, per_page, (page - 1) * per_page]))
        else:
            total = self.db.conn.execute("select count(*) from areas where level = 'province'").fetchone()[0]
            page_rows = list(self.db.query("select code, name_km, name_en from areas where level = 'province'"
                                           " order by code limit ? offset ?", [per_page, (page - 1) * per_page]))
        codes = [r["code"] for r in page_rows]
        for r in page_rows:
            r.update(hubs=0, heard=0, feedback=0, open=0)
        if codes:
            marks = ", ".join("?" * len(codes))
            since = (datetime.now(UTC) - timedelta(days=heard_within_days)).isoformat(timespec="seconds")
            by_code = {r["code"]: r for r in page_rows}
            for r in self.db.query(
                    f"select h.{child_col} as code, count(*) as hubs,"
                    " sum(case when h.last_contact >= ? then 1 else 0 end) as heard"
                    f" from hubs h where h.revoked_at is null and h.{child_col} in ({marks}) group by h.{child_col}",
                    [since, *codes]):
                by_code[r["code"]].update(hubs=r["hubs"], heard=r["heard"] or 0)
            for r in self.db.query(
                    f"select h.{child_col} as code, count(*) as n, sum(case when f.status = 'new' then 1 else 0 end)"
                    f" as open from feedback_state f join hubs h on h.id = f.hub_id where h.{child_col} in ({marks})"
                    f" group by h.{child_col}", codes):
                by_code[r["code"]].update(feedback=r["n"], open=r["open"] or 0)
        return {"level": LEVELS[level_len + 2], "rows": page_rows, "total": total, "page": page,
                "pages": max(1, -(-total // per_page))}
    def feedback_items(self, category: str | None = None, status: str | None = None,
                       hub: str | None = None, limit: int = 200, scope: str | None = None,
                       offset: int = 0) -> list[dict]:
        """Feedback with its replies merged in, newest first: one query for the page, one for its revisions."""
        where, args = scope_clause(scope)
        for column, value in (("f.category", category), ("f.status", status), ("h.name", hub)):
            if value:
                where += f" and {column} = ?"
                args.append(value)
        items = [_record_out(r) for r in self.db.query(
            "select r.*, h.name as hub_name from feedback_state f join records r on r.id = f.id"
            f" join hubs h on h.id = f.hub_id where {where} order by f.created_at desc, r.seq desc limit ? offset ?",
            [*args, limit, offset])]
        if items:
            by_id = {r["id"]: r for r in items}
            for rev in self.db.query(
                    f"select of_id, data from records where of_id in ({', '.join('?' * len(by_id))})"
                    " order by created_at, seq", list(by_id)):
                by_id[rev["of_id"]]["data"].update({k: v for k, v in json.loads(rev["data"]).items() if k != "of"})
        return items
    # --- export ---
    def export(self, fmt: str, out, scope: str | None = None) -> int:
        """Write every record held (and every publication) in *scope* as JSON lines or CSV; return the count."""
        n = 0
        where, args = scope_clause(scope)

        def rows():
            # A page at a time, so a national export never holds every record in memory.
            last = 0
            while True:
                page = list(self.db.query("select r.*, h.name as hub_name from records r join hubs h"
                                          f" on h.id = r.hub_id where {where} and r.seq > ? order by r.seq limit ?",
                                          [*args, last, EXPORT_PAGE]))
                yield from page
                if len(page) < EXPORT_PAGE:
                    return
                last = page[-1]["seq"]

        if fmt == "csv":
            w = csv.writer(out)
            w.writerow(["id", "kind", "hub_id", "hub_name", "created_at", "received_at", "sha256", "data"])
        for r in rows():
            if fmt == "jsonl":
                out.write(json.dumps({"id": r["id"], "kind": r["kind"], "hub_id": r["hub_id"],
                                      "hub_name": r["hub_name"], "created_at": r["created_at"],
                                      "received_at": r["received_at"], "sha256": r["sha256"],
                                      "data": json.loads(r["data"])}, ensure_ascii=False) + "\n")
            else:
                w.writerow([formula_safe(v) for v in (r["id"], r["kind"], r["hub_id"], r["hub_name"],
                                                   r["created_at"], r["received_at"], r["sha256"], r["data"])])
            n += 1
        for p in reversed(self.publications(scope, limit=1_000_000)):
            kind = "published." + p["kind"]
            if fmt == "jsonl":
                out.write(json.dumps({"id": p["id"], "kind": kind, "hub_id": None, "hub_name": None,
                                      "created_at": p["created_at"], "received_at": None, "sha256": None,
                                      "data": {**p["data"], "targets": p["targets"], "areas": p["areas"],
                                               "withdrawn": p["withdrawn"]}}, ensure_ascii=False) + "\n")
            else:
                w.writerow([formula_safe(v) for v in (p["id"], kind, "", "", p["created_at"], "", "",
                                                      json.dumps(p["data"], ensure_ascii=False))])
            n += 1
        return n
