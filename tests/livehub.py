"""A real hub process on loopback, for tests that need a browser or a crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub import accounts
from hub.core.context import open_context
from hub.core.settings import load
from hub.migrations import MIGRATIONS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveHub:
    """`hub run --only web` (or gunicorn) in its own process, stopped by pid."""

    def __init__(self, data_dir: Path, gunicorn: bool = False, **env: str):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gunicorn = gunicorn
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        self.env.update({"HUB_DATA_DIR": str(self.data_dir), "HUB_PORT": str(self.port), **env})
        self.proc: subprocess.Popen | None = None
        self.log = self.data_dir.parent / f"hub-{self.port}.log"

    def start(self, timeout: float = 30) -> LiveHub:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.gunicorn:
            args = ["web", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"]
        else:
            args = ["run", "--only", "web"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "hub.cli", *args], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir.parent,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/captive", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"hub did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: a power cut as far as the server can tell."""
        if self.proc and self.proc.poll() is None:
            # The whole session: gunicorn's workers die with their arbiter.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def hub_with_clerk(data_dir: Path, **env: str) -> Iterator[LiveHub]:
    """A started LiveHub whose ``ctx`` is open on its store, with the clerk account clerk1."""
    hub = LiveHub(data_dir, **env).start()
    try:
        hub.ctx = open_context(load(env={"HUB_DATA_DIR": str(hub.data_dir), **env}), MIGRATIONS)
        try:
            accounts.add_user(hub.ctx.db, "clerk1", "correct horse", "clerk")
            yield hub
        finally:
            hub.ctx.close()
    finally:
        hub.stop()
