"""Sync figures for `make bench`: wire bytes per record and time to sync 10,000 records on loopback.

The hub and the central server run as real processes; a proxy without
faults counts every byte both ways.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

RECORDS = 10_000
BODIES = (
    "អណ្តូងទឹកនៅភូមិខាងជើងខូចអស់ពីរសប្តាហ៍ហើយ សូមជួយជួសជុល។",
    "The road to the school floods every time it rains; children cannot pass.",
    "សូមបន្ថែមថ្ងៃពិនិត្យសុខភាពសម្រាប់មនុស្សចាស់។",
    "Street light near the pagoda is broken.",
)


def _fill(ctx, n: int) -> None:
    """n feedback rows as the portal makes them, written in one transaction to save time."""
    from hub import feedback
    from hub.core.db import new_id, transaction, utcnow

    rng = random.Random(3)
    now = utcnow()
    hub_id = ctx.hub_id
    with transaction(ctx.db) as conn:
        for i in range(n):
            # Sentences shuffled word by word, so the text compresses no better than real messages.
            words = " ".join(rng.choice(BODIES).split())
            body = " ".join(rng.sample(words.split(), k=len(words.split())))
            row = feedback.validate({"category": rng.choice(feedback.CATEGORY_KEYS),
                                     "body": body, "village": f"ភូមិ {rng.randrange(40)}"})
            row.update(id=new_id(), hub_id=hub_id, source="portal", status="new", receipt=f"{i:06d}",
                       created_at=now, updated_at=now, clock_trusted=1)
            conn.execute(f"insert into feedback ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                         tuple(row.values()))


def run() -> list[tuple[str, str]]:
    from hub.core import settings as settings_mod
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.sync import outbox
    from tests.sync.procs import Central, FaultProxy, base_env, sync_once

    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        tmp = Path(tmp)
        central = Central(tmp / "central", workers=1)
        proxy = FaultProxy(central.port)
        try:
            token = central.add_hub("bench")
            values = {"central_url": proxy.url, "central_token": token, "sync_daily_budget_mb": 0,
                      "backup_interval_hours": 0}
            ctx = open_context(settings_mod.load(config=None, env={},
                                                 overrides={"data_dir": tmp / "hub", **values}), MIGRATIONS)
            _fill(ctx, RECORDS)
            env = base_env(tmp / "hub", **values)

            started = time.monotonic()
            rc, out, err = sync_once(env, timeout=600)
            elapsed = time.monotonic() - started
            if rc != 0:
                return [("sync failed", (out or {}).get("message") or err[-300:])]
            wire = proxy.up_bytes + proxy.down_bytes
            sent = [r["body"] for r in ctx.db.query("select body from sync_outbox where kind = 'feedback'")]
            payload = sum(len(b.encode()) for b in sent)

            proxy.up_bytes = proxy.down_bytes = 0
            started_idle = time.monotonic()
            sync_once(env)
            idle_seconds = time.monotonic() - started_idle
            idle = proxy.up_bytes + proxy.down_bytes
            counts = outbox.counts(ctx.db)
            ctx.close()
        finally:
            proxy.close()
            central.stop()
    batch = settings_mod.load(config=None, env={}).sync_batch_size
    return [
        ("records synced", f"{counts['sent']} ({RECORDS} feedback + health), batches of {batch}"),
        ("payload per record (canonical JSON)", f"{payload / len(sent):.0f} B"),
        ("bytes on the wire per record (both ways)", f"{wire / len(sent):.0f} B"),
        ("wire / payload", f"{wire / payload:.2f}  (gzip-compressed batches, headers and answers included)"),
        (f"time to sync {RECORDS} records on loopback", f"{elapsed:.1f} s  ({RECORDS / elapsed:.0f} records/s,"
                                                        f" incl. process start)"),
        ("an idle cycle (nothing to send)", f"{idle} B on the wire, {idle_seconds:.1f} s"),
    ]


if __name__ == "__main__":
    for label, value in run():
        print(f"{label}: {value}")
