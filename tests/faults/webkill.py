"""SIGKILL the production web server again and again while phones send feedback through nginx.

hub-web runs as the unit runs it (`hub web --bind unix:SOCK`, gunicorn with
2 gthread workers; as root: the hub's own unprivileged user, the unit's umask,
nginx's workers as www-data; tests.net.webstack). Several phones, each from
its own address, send text and voice feedback as fast as the hub answers.
Each kill waits until the server has acknowledged a submission since the
last one and another is in flight, then SIGKILLs either one
worker with its ffmpeg children (the arbiter forks a new one at once, so
kills come fast) or, every *whole_every*-th kill, the whole server: arbiter,
workers and conversions at the same instant, then starts it again.

Afterwards the server starts once more (as systemd would after the last
crash) and stops, and the store is checked: every receipt a phone got is
there with its text and, for voice, its three media files; PRAGMA
integrity_check says ok; no media file lacks its row (an orphan).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.phones import Phone, phone_address, raised_limits
from tests.net.webstack import WebStack, wait_for
from tests.phone_audio import encode, tone_wav


def children(pid: int) -> list[int]:
    """Every living descendant of *pid*."""
    parent: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parent.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in parent.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill(pids: list[int]) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class KillableWeb(WebStack):
    """The production stack whose gunicorn can be SIGKILLed whole or a worker at a time."""

    def __init__(self, tmp: Path, **kw):
        super().__init__(tmp, **kw)
        # Conversions' temporary folders: on a Pi PrivateTmp= gives hub-web its own /tmp, emptied
        # at each restart. Here they go to a folder of the stack, counted and removed with it.
        self.tmpdir = self.top / "tmp"
        if self.deployed:
            self._hub_dir(self.tmpdir, 0o700)
        else:
            self.tmpdir.mkdir()

    def start_gunicorn(self, timeout: float = 60, env: dict | None = None, **popen):
        return super().start_gunicorn(timeout, env={"TMPDIR": str(self.tmpdir), **(env or {})}, **popen)

    def workers_now(self) -> list[int]:
        return [p for p in self.pids() if p != self.gunicorn.pid]

    def kill_worker(self, rnd: random.Random) -> None:
        """SIGKILL one worker and its conversions; wait until the arbiter has forked its successor."""
        workers = self.workers_now()
        if not workers:
            return
        victim = rnd.choice(workers)
        _kill([victim, *children(victim)])
        wait_for(lambda: victim not in self.workers_now() and len(self.workers_now()) >= self.workers, 30,
                 "a new gunicorn worker", self.gunicorn)

    def kill_all(self) -> None:
        """SIGKILL the arbiter, its workers and their conversions at once, as a crash of the unit."""
        proc = self.gunicorn
        _kill([proc.pid, *children(proc.pid)])
        proc.wait(30)


@dataclass
class Figures:
    kills: int = 0
    worker_kills: int = 0
    whole_kills: int = 0
    interrupted: int = 0
    acknowledged: int = 0
    acknowledged_voice: int = 0
    lost: list = field(default_factory=list)
    media_missing: list = field(default_factory=list)
    orphans: list = field(default_factory=list)
    temp_left: int = 0
    integrity: str = ""
    seconds: float = 0.0
    refused: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.media_missing and not self.orphans and self.integrity == "ok"


def _phone_loop(web: WebStack, i: int, voice: bytes, acked: list, inflight: list, stop: threading.Event,
                refused: dict, lock: threading.Lock, seed: int) -> None:
    rnd = random.Random(seed)
    phone = Phone(web.villager_url, phone_address(i), timeout=60)
    k = 0
    while not stop.is_set():
        k += 1
        with_voice = rnd.random() < 0.4
        body = f"kill test phone {i} message {k} {rnd.random():.12f}"
        with lock:
            inflight[0] += 1
        try:
            a, code = phone.send(body, voice if with_voice else None)
        finally:
            with lock:
                inflight[0] -= 1
        if code:
            acked.append((code, body, with_voice))
        else:
            with lock:
                refused[a.status] = refused.get(a.status, 0) + 1
            time.sleep(0.1)
        phone.answers.clear()
    phone.close()


def run(tmp: Path, kills: int = 1000, phones: int = 4, whole_every: int = 10, seed: int = 20261202,
        max_seconds: float = 3600, pause: float = 0.5, voice_every: int = 16) -> Figures:
    """*kills* SIGKILLs of hub-web during submissions; the figures, checked against the store."""
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    voice = encode(tone_wav(tmp / "v.wav", seconds=1.0), "ogg", tmp).read_bytes()
    web = KillableWeb(tmp / "stack", settings=raised_limits())
    fig = Figures()
    acked: list = []
    inflight = [0]
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()
    threads: list[threading.Thread] = []
    try:
        web.start()
        threads = [threading.Thread(target=_phone_loop, daemon=True,
                                    args=(web, i, voice, acked, inflight, stop, fig.refused, lock, seed + i))
                   for i in range(phones)]
        for t in threads:
            t.start()
        deadline = started + max_seconds
        while fig.kills < kills and time.monotonic() < deadline:
            # Each kill comes once the server took a write since the last one (every *voice_every*-th kill: a voice
            # message, which takes longest), while a submission is on its way, a little into it.
            done = len(acked)
            wait_for(lambda done=done: len(acked) > done, 60, "a submission acknowledged since the last kill")
            if fig.kills % voice_every == voice_every - 1:
                voiced = sum(v for _, _, v in acked)
                _wait(lambda voiced=voiced: sum(v for _, _, v in acked) > voiced, 8)
            wait_for(lambda: inflight[0] > 0, 60, "a submission in flight")
            time.sleep(rnd.uniform(0.0, pause))
            if (fig.kills + 1) % whole_every == 0:
                web.kill_all()
                fig.whole_kills += 1
                web.start_gunicorn()
            else:
                web.kill_worker(rnd)
                fig.worker_kills += 1
            fig.kills += 1
            if fig.kills % 100 == 0:
                print(f"  ... {fig.kills} kills, {len(acked)} acknowledged, {time.monotonic() - started:.0f} s",
                      file=sys.stderr, flush=True)
        stop.set()
        for t in threads:
            t.join(90)
        # The last crash, then the start systemd would make after it (its sweep runs), and a clean stop.
        web.kill_all()
        web.start_gunicorn()
        wait_for(lambda: len(web.workers_now()) >= web.workers, 30, "workers after the last restart", web.gunicorn)
        time.sleep(1.0)  # the workers build the app (and sweep) right after they are forked
        web.gunicorn.terminate()
        web.gunicorn.wait(30)
        fig.seconds = time.monotonic() - started
        fig.interrupted = sum(n for status, n in fig.refused.items() if status in (0, 502, 503, 504))
        fig.temp_left = sum(1 for _ in web.tmpdir.rglob("*"))
        _check(web.settings.data_dir, acked, fig)
    finally:
        stop.set()
        web.close()
    return fig


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _check(data_dir: Path, acked: list, fig: Figures) -> None:
    db = sqlite3.connect(data_dir / "hub.db")
    try:
        fig.integrity = db.execute("pragma integrity_check").fetchone()[0]
        stored = {code: (body, web, master, loud) for code, body, web, master, loud in db.execute(
            "select f.receipt, f.body, m.web_name, m.master_name, m.loud_name"
            " from feedback f left join media m on m.id = f.audio_id")}
        known = {r[0] for r in db.execute("select id from media")}
    finally:
        db.close()
    media = data_dir / "media"
    present = {p.name: p.stat().st_size for p in media.iterdir() if p.is_file()}
    fig.acknowledged = len(acked)
    for code, body, with_voice in acked:
        key = "".join(c for c in code if c.isdigit())
        row = stored.get(key) or stored.get(code)
        if row is None or row[0] != body:
            fig.lost.append(code)
            continue
        if with_voice:
            fig.acknowledged_voice += 1
            names = [n for n in row[1:] if n]
            if len(names) != 3 or any(not present.get(n) for n in names):
                fig.media_missing.append(code)
    fig.orphans = sorted(n for n in present if n.startswith(".") or n.split(".", 1)[0] not in known)


def rows(fig: Figures, asked: int) -> list[tuple[str, str]]:
    """The figures as `make bench` prints them, each with its goal."""
    return [
        ("SIGKILLs of hub-web during submissions (goal 1,000)",
         f"{fig.kills:,} of {asked:,}: {fig.worker_kills:,} of a worker, {fig.whole_kills:,} of the whole server"),
        ("submissions refused while down or cut by a kill (502, broken)", f"{fig.interrupted:,}"),
        ("acknowledged (a receipt in the phone's hand)",
         f"{fig.acknowledged:,} ({fig.acknowledged_voice:,} with voice)"),
        ("acknowledged lost (goal 0)", f"{len(fig.lost)}" + (f": {fig.lost[:5]}" if fig.lost else "")),
        ("acknowledged voice without its media files (goal 0)", f"{len(fig.media_missing)}"),
        ("orphan media files, after the restart (goal 0)",
         f"{len(fig.orphans)}" + (f": {fig.orphans[:3]}" if fig.orphans else "")),
        ("PRAGMA integrity_check (goal ok)", fig.integrity),
        ("conversion temp files left in hub-web's /tmp (PrivateTmp clears)", f"{fig.temp_left}"),
        ("time taken", f"{fig.seconds:.0f} s ({fig.kills / max(fig.seconds, 1e-9):.1f} kills/s)"),
    ]
