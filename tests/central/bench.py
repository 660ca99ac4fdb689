"""The national shape for `make bench`: 1,652 hubs, a day of their traffic in a few minutes, on each backend.

Every hub is registered with its own token and placed in its own commune.
Each runs the cycles of one day, spread over ``HUB_BENCH_CENTRAL_SECONDS``
(default 90 s) with jitter: a hello, a push of what it made since the last
cycle (gzipped, as `hub-sync` sends it), a pull of publications. Its day
holds feedback, replies, transcripts, play logs and one health report per
cycle. The central server is `hub central serve` with several gunicorn
workers, on loopback; the hubs are a few client processes speaking the
sync wire (``tests.sync.wirehub``). Afterwards the database must hold every
record exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HUBS = 1652
#: Sync cycles in a hub's day: every three hours, as a paid, often-down uplink allows.
CYCLES = 8
WORKERS = 4
CLIENT_PROCESSES = 3
THREADS_PER_CLIENT = 12
#: The day may take this many times its planned length before the bench stops it.
OVERRUN = 4
DAY = datetime(2026, 12, 1, tzinfo=UTC)
BODIES = (
    "អណ្តូងទឹកនៅភូមិខាងជើងខូចអស់ពីរសប្តាហ៍ហើយ សូមជួយជួសជុល។",
    "The road to the school floods every time it rains; children cannot pass.",
    "សូមបន្ថែមថ្ងៃពិនិត្យសុខភាពសម្រាប់មនុស្សចាស់។",
    "Street light near the pagoda is broken.",
)
CATEGORIES = ("water", "roads", "health", "school", "safety", "other")


def hub_day(hub_id: str, rng: random.Random) -> list[list[dict]]:
    """The records one hub sends in each cycle of the day."""

    def rec(kind, data, at):
        return {"id": str(uuid.uuid4()), "kind": kind, "hub_id": hub_id,
                "created_at": at.isoformat(timespec="seconds"), "data": data}

    made: list[dict] = []
    feedback_ids = []
    for _ in range(rng.randint(3, 10)):
        at = DAY + timedelta(minutes=rng.randrange(6 * 60, 20 * 60))
        words = " ".join(rng.choice(BODIES).split())
        r = rec("feedback", {"category": rng.choice(CATEGORIES), "status": "new", "source": "portal",
                             "body": " ".join(rng.sample(words.split(), k=len(words.split()))),
                             "village": f"ភូមិ {rng.randrange(40)}", "receipt": f"{rng.randrange(10**6):06d}",
                             "clock_trusted": 1}, at)
        made.append(r)
        feedback_ids.append((r["id"], at))
    for fid, at in rng.sample(feedback_ids, k=len(feedback_ids) // 2):
        made.append(rec("feedback.revision", {"of": fid, "status": "answered",
                                              "reply": "យើងនឹងមកពិនិត្យនៅថ្ងៃច័ន្ទ។"}, at + timedelta(hours=2)))
    for fid, at in feedback_ids[:rng.randint(1, 4)]:
        made.append(rec("transcript", {"feedback_id": fid, "lang": "km", "state": "done", "engine": "vosk",
                                       "text": rng.choice(BODIES), "confidence": 0.71, "audio_seconds": 14.2},
                        at + timedelta(minutes=5)))
    for slot in range(rng.randint(4, 12)):
        at = DAY + timedelta(hours=6 + slot, minutes=rng.randrange(60))
        made.append(rec("play", {"announcement": "Vaccination day", "state": "ended", "scheduled_at": at.isoformat(),
                                 "started_at": at.isoformat(), "seconds": 42}, at))
    cycles: list[list[dict]] = [[] for _ in range(CYCLES)]
    for r in made:
        hour = datetime.fromisoformat(r["created_at"]).hour
        # Sent by the first cycle after it was made (cycles at 00:00, 03:00, ... 21:00).
        cycles[min(CYCLES - 1, hour * CYCLES // 24 + 1)].append(r)
    for i in range(CYCLES):
        at = DAY + timedelta(hours=3 * i)
        cycles[i].append(rec("health", {"version": "0.1.0", "disk_free_mb": 11000 - i, "uptime_seconds": 3600 * i,
                                        "outbox_pending": len(cycles[i]), "outbox_flagged": 0, "media_pending": 0,
                                        "clock_trust": "central", "hub_name": ""}, at))
    return cycles


def _client(port: int, hubs: list[tuple[str, str]], seconds: float, seed: int, out) -> None:
    """One client process: its hubs' cycles, each at its moment of the compressed day."""
    import heapq

    from tests.sync.wirehub import WireHub

    rng = random.Random(seed)
    jobs = []
    for hub_id, token in hubs:
        cycles = hub_day(hub_id, rng)
        offset = rng.random()
        for i in range(CYCLES):
            jobs.append(((i + offset) * seconds / CYCLES, hub_id, token, i, cycles[i]))
    heapq.heapify(jobs)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    stored = [0, 0]  # stored, sent
    clients: dict[str, WireHub] = {}
    start = time.monotonic()

    def worker():
        while True:
            with lock:
                if not jobs:
                    return
                if time.monotonic() - start > seconds * OVERRUN:
                    # Bounded: what the server could not take in time is reported, not waited for.
                    errors.extend(f"cycle not run in {seconds * OVERRUN:.0f} s" for _ in jobs)
                    jobs.clear()
                    return
                due, hub_id, token, i, batch = heapq.heappop(jobs)
                client = clients.setdefault(hub_id, WireHub(port, token, hub_id))
            wait = start + due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            mine, errs = [], []
            try:
                status, _, t = client.hello({"disk_free_mb": 11000, "outbox_pending": len(batch)})
                mine.append(t)
                if status != 200:
                    errs.append(f"hello {status}")
                if batch:
                    status, body, t = client.push(batch)
                    mine.append(t)
                    if status != 200:
                        errs.append(f"push {status}")
                    else:
                        bad = [s for s in body["status"].values() if s not in (200, 201)]
                        if bad or len(body["status"]) != len(batch):
                            errs.append(f"push answered {bad[:3]}")
                        with lock:
                            stored[0] += len(body["stored"])
                            stored[1] += len(batch)
                status, _, t = client.pull()
                mine.append(t)
                if status != 200:
                    errs.append(f"pull {status}")
            except Exception as e:  # noqa: BLE001 - counted and reported
                errs.append(repr(e)[:200])
                client.close()
            with lock:
                latencies.extend(mine)
                errors.extend(errs)
            # One connection per hub, closed between cycles, as a hub's uplink would.
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(THREADS_PER_CLIENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send({"latencies": latencies, "errors": errors, "stored": stored[0], "sent": stored[1]})
    out.close()


def _proc_cpu(pid: int, with_children: bool) -> float:
    """CPU seconds of *pid* (and of its children it has reaped, and of those still running)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if with_children else 0)
    cpu = total / tick
    if with_children:
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            kids = []
        cpu += sum(_proc_cpu(int(k), True) for k in kids)
    return cpu


def _db_size(store) -> int:
    if store.backend == "postgresql":
        return store.db.conn.execute("select pg_database_size(current_database())").fetchone()[0]
    store.db.conn.execute("pragma wal_checkpoint(truncate)")
    return sum(p.stat().st_size for p in store.data_dir.glob("central.db*"))


def run_backend(name: str, seconds: float) -> dict:
    from hub.central.store import CentralStore
    from tests.sync.pg import PostgresServer
    from tests.sync.procs import Central

    with tempfile.TemporaryDirectory(prefix=f"central-bench-{name}-") as tmp:
        tmp = Path(tmp)
        pg = PostgresServer(fsync=True) if name == "postgresql" else None
        try:
            url = pg.create_database() if pg else ""
            store = CentralStore.open(tmp / "central", url)
            communes = [r[0] for r in store.db.conn.execute(
                "select code from areas where level = 'commune' order by code")][:HUBS]
            hubs = []
            started = time.monotonic()
            for commune in communes:
                hub_id = str(uuid.uuid4())
                hubs.append((hub_id, store.add_hub(f"hub-{commune}", hub_id, commune)[1]))
            register_seconds = time.monotonic() - started
            store.publish("notice", {"title_km": "ជាតិ", "title_en": "National notice"}, None, "bench")
            for p in store.areas():
                store.publish("notice", {"title_en": f"For {p['name_en']}"}, None, "bench", areas=[p["code"]])
            size_before = _db_size(store)
            central = Central(tmp / "central", workers=WORKERS, database_url=url)
            postmaster = int((pg.data / "postmaster.pid").read_text().split()[0]) if pg else None
            try:
                cpu_before = _proc_cpu(central.proc.pid, True)
                pg_before = _proc_cpu(postmaster, True) if pg else 0.0
                ctx = multiprocessing.get_context("fork")
                pipes, procs = [], []
                t0 = time.monotonic()
                for n in range(CLIENT_PROCESSES):
                    recv, send = ctx.Pipe(duplex=False)
                    p = ctx.Process(target=_client, args=(central.port, hubs[n::CLIENT_PROCESSES], seconds, n, send))
                    p.start()
                    pipes.append(recv)
                    procs.append(p)
                results = [r.recv() for r in pipes]
                for p in procs:
                    p.join(60)
                elapsed = time.monotonic() - t0
                cpu = _proc_cpu(central.proc.pid, True) - cpu_before
                pg_cpu = (_proc_cpu(postmaster, True) - pg_before) if pg else 0.0
            finally:
                central.stop()
            held = store.db.conn.execute("select count(*), count(distinct id) from records").fetchone()
            size_after = _db_size(store)
            store.close()
            if pg:
                pg.drop_database(url)
        finally:
            if pg:
                pg.stop()
    latencies = sorted(x for r in results for x in r["latencies"])
    q = statistics.quantiles(latencies, n=100)
    errors = [e for r in results for e in r["errors"]]
    sent = sum(r["sent"] for r in results)
    return {"requests": len(latencies), "elapsed": elapsed, "records": sent,
            "stored": sum(r["stored"] for r in results), "held": held, "p50": q[49], "p95": q[94], "p99": q[98],
            "errors": errors, "db_per_hub_day": (size_after - size_before) / HUBS, "cpu": cpu, "pg_cpu": pg_cpu,
            "register": register_seconds}


def run() -> list[tuple[str, str]]:
    seconds = float(os.environ.get("HUB_BENCH_CENTRAL_SECONDS", "90"))
    got = {name: run_backend(name, seconds) for name in ("sqlite", "postgresql")}

    def both(fmt):
        return "  ".join(f"{label} {fmt(got[k])}" for k, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")))

    s = got["sqlite"]
    rows = [
        ("shape", f"{HUBS} hubs, own token and commune each; {CYCLES} cycles per hub-day (hello, push, pull)"
                  f" in {seconds:.0f} s; central: {WORKERS} gunicorn workers x 8 threads; loopback"),
        ("records in the day", f"{s['records']} ({s['records'] / HUBS:.1f} per hub: feedback, replies,"
                               " transcripts, play logs, health)"),
        ("requests", both(lambda r: f"{r['requests']} in {r['elapsed']:.0f} s ({r['requests'] / r['elapsed']:.0f}/s)")),
        ("records/s", both(lambda r: f"{r['records'] / r['elapsed']:.0f}")),
        ("latency p50 / p95 / p99",
         both(lambda r: f"{r['p50'] * 1000:.0f} / {r['p95'] * 1000:.0f} / {r['p99'] * 1000:.0f} ms")),
        ("errors", both(lambda r: f"{len(r['errors'])}" + (f" ({r['errors'][0]})" if r["errors"] else ""))),
        ("held after the day (rows, distinct ids)",
         both(lambda r: f"{r['held'][0]}/{r['held'][1]}" + ("" if r["held"][0] == r["held"][1] == r["records"]
                                                            else " MISMATCH"))),
        ("database growth per hub-day", both(lambda r: f"{r['db_per_hub_day'] / 1024:.1f} KiB")),
        ("central CPU (gunicorn + database)",
         both(lambda r: f"{r['cpu'] + r['pg_cpu']:.0f} s = {(r['cpu'] + r['pg_cpu']) / r['elapsed'] * 100:.0f}%"
                        f" of a core" + (f" (PostgreSQL {r['pg_cpu']:.0f} s)" if r["pg_cpu"] else ""))),
        ("registering the hubs", both(lambda r: f"{r['register']:.0f} s")),
    ]
    return rows


if __name__ == "__main__":
    for label, value in run():
        print(f"{label}: {value}")
