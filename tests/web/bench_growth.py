"""How cost grows, for `make bench`: 10, 1,000 and 10,000 notices and feedback items.

For each size, a fresh hub with that many notices and that many feedback
items (inserted in one transaction, with the migrations' triggers and
indexes), then the median of repeated runs of:

- the home list: the page rendered by the app (the cache bypassed) and its query;
- the clerk's inbox: the page, logged in, and its query (all, and the "new" filter);
- sync's outbox scan when nothing changed (what every cycle does), after a first
  scan has turned every row into a record: it reads the change log the tables'
  triggers keep (migration 0013), not the tables. Its time, and its SQLite
  steps, which the machine's load does not change.

Each query's plan is printed: a SEARCH or a SCAN USING INDEX reads a page of
rows whatever the table's size; a bare SCAN reads them all.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

SIZES = (10, 1_000, 10_000)


def _timed(fn, repeats: int) -> float:
    took = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        took.append(time.perf_counter() - t)
    return statistics.median(took) * 1000


def _fill(ctx, n: int) -> None:
    from hub.core.db import transaction

    now = datetime.now(UTC)
    _ = ctx.hub_id  # made and stored now, not inside the transaction below
    with transaction(ctx.db) as conn:
        conn.executemany(
            "insert into notices (id, hub_id, title_km, title_en, body_km, body_en, urgent, pinned, published_at,"
            " expires_at, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(str(uuid.uuid4()), ctx.hub_id, f"សេចក្តីជូនដំណឹង {i}", f"Notice {i}", "អត្ថបទ " * 20, "Text " * 20,
              int(i % 97 == 0), int(i % 31 == 0), (t := (now - timedelta(minutes=i)).isoformat(timespec="seconds")),
              (now - timedelta(days=1)).isoformat(timespec="seconds") if i % 3 == 0 else None, t, t)
             for i in range(n)])
        conn.executemany(
            "insert into feedback (id, hub_id, receipt, source, category, body, status, created_at, updated_at)"
            " values (?, ?, ?, 'portal', ?, ?, ?, ?, ?)",
            [(str(uuid.uuid4()), ctx.hub_id, f"{i:06d}", ("water", "roads", "health")[i % 3], f"Message {i}",
              ("new", "in_progress", "answered", "closed")[i % 4],
              (t := (now - timedelta(minutes=i)).isoformat(timespec="seconds")), t) for i in range(n)])


def _vm_steps(conn, fn) -> int:
    """SQLite virtual-machine steps *fn* takes (counted by hundreds): what it reads, whatever the load."""
    steps = [0]

    def count():
        steps[0] += 100
        return 0

    conn.set_progress_handler(count, 100)
    try:
        fn()
    finally:
        conn.set_progress_handler(None, 0)
    return steps[0]


def _plan(db, sql: str, args: list) -> str:
    steps = [r[3] for r in db.conn.execute("explain query plan " + sql, args)]
    return "; ".join(s for s in steps if s.split()[1] in ("n", "f", "t", "sync_changes"))[:70]


def _one(n: int) -> dict:
    from hub import accounts, feedback, notices
    from hub.core.context import open_context
    from hub.core.settings import load
    from hub.migrations import MIGRATIONS
    from hub.sync import outbox
    from hub.web import create_app

    data = Path(tempfile.mkdtemp(prefix=f"bench-grow-{n}-"))
    ctx = open_context(load(env={"HUB_DATA_DIR": str(data)}), MIGRATIONS)
    _fill(ctx, n)
    accounts.add_user(ctx.db, "clerk1", "correct horse", "clerk")
    app = create_app(ctx.settings, context=ctx)
    client = app.test_client()
    page = client.get("/clerk/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]*)"', page).group(1)
    client.post("/clerk/login", data={"username": "clerk1", "password": "correct horse", "csrf_token": token})
    now = ctx.clock.now()
    out = {
        "home page, rendered (ms)": _timed(lambda: client.get("/?lang=km"), 15),
        "home query (ms)": _timed(lambda: notices.current(ctx.db, now, 16, 0), 50),
        "inbox page (ms)": _timed(lambda: client.get("/clerk/feedback/"), 15),
        "inbox query (ms)": _timed(lambda: feedback.inbox(ctx.db, None, None, 51, 0), 50),
        "inbox query, status new (ms)": _timed(lambda: feedback.inbox(ctx.db, "new", None, 51, 0), 50),
    }
    assert client.get("/clerk/feedback/").status_code == 200
    first = time.perf_counter()
    outbox.scan(ctx)
    out["sync scan, first (ms)"] = (time.perf_counter() - first) * 1000
    out["sync scan, nothing new (ms)"] = _timed(lambda: outbox.scan(ctx), 50)
    out["sync scan, nothing new (SQLite VM steps)"] = _vm_steps(ctx.db.conn, lambda: outbox.scan(ctx))
    stamp = now.isoformat(timespec="seconds")
    plans = {
        "plan: home": _plan(ctx.db, notices._SELECT + " where n.expires_at is null or n.expires_at > ?"
                            " order by n.urgent desc, n.pinned desc, n.published_at desc limit 16", [stamp]),
        "plan: inbox": _plan(ctx.db, feedback._SELECT + " order by f.created_at desc limit 51", []),
        "plan: inbox, status": _plan(ctx.db, feedback._SELECT + " where f.status = 'new'"
                                     " order by f.created_at desc limit 51", []),
        "plan: sync scan": _plan(ctx.db, "select source_id, max(seq) as upto from sync_changes where source = ?"
                                 " group by source_id order by upto", ["feedback"]),
    }
    ctx.close()
    return {**out, **plans}


def run() -> list[tuple[str, str]]:
    results = {n: _one(n) for n in SIZES}
    head = "  ".join(f"{n:>10,}" for n in SIZES)
    rows = [("growth: notices and feedback items", f"{head}   (10,000 / 10)")]
    for key in results[SIZES[0]]:
        if key.startswith("plan:"):
            continue
        vals = [results[n][key] for n in SIZES]
        rows.append((f"growth: {key}", "  ".join(f"{v:10.2f}" for v in vals)
                     + f"   {vals[-1] / max(vals[0], 1e-6):6.1f}x"))
    for key in results[SIZES[0]]:
        if key.startswith("plan:"):
            rows.append((f"growth: query {key}", results[SIZES[-1]][key]))
    return rows


if __name__ == "__main__":
    for label, value in run():
        print(f"  {label:<48} {value}")
