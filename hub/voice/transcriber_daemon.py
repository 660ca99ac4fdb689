"""Daemon ``hub-transcriber``: one queue for every recording, one job at a time, at low priority.

Every feedback recording (kiosk or phone) is queued. Before each job the
daemon looks at which languages have a model installed, so installing one
(``hub model install``) releases that language's waiting recordings with no
restart. A long job calls the heartbeat between chunks, so the watchdog
sees a working loop, and stops early when the daemon is asked to quit (the
job stays pending).

A speech model holds most of the Pi's memory (about 0.6 GB for Vosk's Korean
model), and most of the day there is nothing to transcribe. The model is
loaded when a job needs it and freed after ``model_idle_seconds`` without
work; loading it again costs a few seconds (``make bench`` measures it).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys
import threading
import time

from hub.core.context import open_context
from hub.core.daemon import Daemon, service_main
from hub.migrations import MIGRATIONS
from hub.voice import models, transcripts
from hub.voice.engines import Abandoned, engine_class
from hub.voice.sound import read_pcm

log = logging.getLogger(__name__)


def lower_priority(niceness: int) -> int:
    """Make the calling thread (and the threads it starts) run at *niceness*; return it.

    On Linux each thread has its own nice value, so under `hub run` this
    lowers only the transcriber's thread, not the web server beside it.
    """
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if niceness > current:
            os.setpriority(os.PRIO_PROCESS, tid, min(niceness, 19))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as e:
        log.warning("cannot lower the transcriber's priority: %s", e)
        return 0


class Transcriber(Daemon):
    """Works through the transcripts queue with the installed speech models."""

    name = "transcriber"
    poll_interval = 2.0

    def __init__(self, settings, engine_factory=None):
        super().__init__(settings)
        self.ctx = None
        self.engine_factory = engine_factory
        self._engines: dict[tuple[str, str], object] = {}
        self.niceness = 0
        self.jobs_done = 0
        self.last_work = time.monotonic()
        self.models_loaded = 0

    def setup(self) -> None:
        self.niceness = lower_priority(self.settings.transcriber_nice)
        self.ctx = open_context(self.settings, MIGRATIONS, migrate=False)

    def engine(self, lang: str, path):
        key = (lang, str(path.resolve()))
        eng = self._engines.get(key)
        if eng is None:
            self._engines.clear()  # one model in memory at a time
            factory = self.engine_factory or engine_class(self.settings.speech_engine)
            eng = self._engines[key] = factory(path)
            self.models_loaded += 1
        return eng

    def release_idle_model(self, now: float | None = None) -> bool:
        """Free the model after ``model_idle_seconds`` without work; True if one was freed."""
        now = time.monotonic() if now is None else now
        if not self._engines or now - self.last_work < self.settings.model_idle_seconds:
            return False
        releases = {getattr(type(e), "release_all", None) for e in self._engines.values()}
        self._engines.clear()
        for release in releases - {None}:
            release()  # an engine class's own cache of models
        gc.collect()
        _give_memory_back()
        log.info("speech model freed after %.0f s without work", now - self.last_work)
        return True

    def poll(self) -> None:
        # One job at a time, back to back while the queue has work; then a pause.
        while not self.quitting and self.work_once() is not None:
            self.last_work = time.monotonic()
            self.heartbeat()
        self.release_idle_model()

    def work_once(self) -> str | None:
        """Queue new recordings and transcribe at most one; return the job's id, if any."""
        ctx = self.ctx
        transcripts.enqueue_new(ctx)
        installed = models.installed_models(self.settings)
        job = transcripts.claim(ctx, set(installed))
        if job is None:
            return None
        started = time.monotonic()
        try:
            eng = self.engine(job["lang"], installed[job["lang"]])
            pcm = read_pcm(ctx.media.path(job["master_name"]))

            def progress() -> bool:
                self.heartbeat()
                return not self.quitting

            result = eng.transcribe_pcm(pcm, progress=progress)
        except Abandoned:
            log.info("transcription of %s stopped by shutdown; it stays pending", job["id"])
            return None
        except Exception as e:
            log.exception("transcription of %s failed", job["id"])
            transcripts.fail(ctx, job["id"], f"{type(e).__name__}: {e}")
            return job["id"]
        took = time.monotonic() - started
        transcripts.finish(ctx, job["id"], result, eng.name, eng.model_name, took)
        self.jobs_done += 1
        log.info("transcribed %s (%s, %.1f s of audio in %.1f s)", job["id"], job["lang"],
                 result.audio_seconds, took)
        return job["id"]

    def teardown(self) -> None:
        self._engines.clear()
        if self.ctx is not None:
            self.ctx.close()


def _give_memory_back() -> None:
    """Ask glibc to return freed heap pages to the system, so the model's memory leaves RSS."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hub-transcriber`` service, at the niceness its settings ask for."""

    def make(settings) -> Transcriber:
        os.nice(max(0, settings.transcriber_nice - os.nice(0)))
        return Transcriber(settings)

    return service_main("hub-transcriber", __doc__.splitlines()[0], make, argv)


if __name__ == "__main__":
    sys.exit(main())
