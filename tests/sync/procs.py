"""Real processes for the sync tests: the central server, `hub sync once`, a faulty TCP proxy."""

from __future__ import annotations

import json
import os
import random
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
HUB = str(Path(sys.executable).parent / "hub")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(data_dir: Path, **settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATA_DIR"] = str(data_dir)
    for k, v in settings.items():
        env["HUB_" + k.upper()] = str(v)
    return env


def hub_cmd(args: list[str], env: dict, timeout: float = 120, stdin: str | None = None):
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, input=stdin)


class Central:
    """`hub central` in its own process on a free loopback port, stopped by its pid."""

    def __init__(self, data_dir: Path, workers: int = 1, database_url: str = "", **settings):
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = base_env(self.data_dir, port=self.port, host="127.0.0.1", **settings)
        if database_url:
            self.env["HUB_DATABASE_URL"] = database_url
        self.log = self.data_dir / "central.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([HUB, "central", "--workers", str(workers)], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("hub central died: " + self.log.read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("hub central did not start")

    def open_store(self):
        from hub.central.store import CentralStore

        return CentralStore.open(self.data_dir, self.database_url)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return hub_cmd(["central", *args], self.env, stdin=stdin)

    def add_hub(self, name: str) -> str:
        r = self.run("add-hub", name)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def export(self) -> list[dict]:
        r = self.run("export", "--format", "jsonl")
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def sync_once(env: dict, timeout: float = 300) -> tuple[int, dict | None, str]:
    """Run `hub sync once --json`; return (exit code, outcome, stderr)."""
    r = hub_cmd(["sync", "once", "--json"], env, timeout=timeout)
    outcome = None
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            outcome = json.loads(line)
    return r.returncode, outcome, r.stderr


class FaultProxy:
    """A TCP proxy on loopback that cuts and stalls connections on purpose.

    Each piece of data read from either side may trigger a fault, so a
    kept-alive connection is as exposed as a fresh one:
    - ``cut_up``: chance that a piece of a request is cut at a random point
      and the connection closed (the server sees half a request);
    - ``cut_down``: chance that a piece of an answer is cut, after the server
      has already acted on the request (the hub never hears the answer);
    - ``cut_at``: cumulative request-byte offsets at which to cut (to cut one
      upload at chosen points);
    - ``stall``: chance that a piece of a request is held for ``stall_seconds``;
    - ``down``: refuse every connection.
    Counts bytes each way, so it also measures what goes over the wire.
    """

    def __init__(self, target_port: int, seed: int = 1):
        self.target = ("127.0.0.1", target_port)
        self.rand = random.Random(seed)
        self.cut_up = 0.0
        self.cut_down = 0.0
        self.cut_at: list[int] = []
        self.stall = 0.0
        self.stall_seconds = 3.0
        self.down = False
        self.up_bytes = 0
        self.down_bytes = 0
        self.connections = 0
        self.cuts = 0
        self.stalls = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _fault(self, data: bytes, upstream: bool) -> tuple[bytes, bool, bool]:
        """Decide what happens to one piece of data: (what to forward, cut after it, stall first)."""
        with self._lock:
            r = self.rand
            cut = False
            stall = upstream and r.random() < self.stall
            if upstream:
                start = self.up_bytes
                at = next((c for c in self.cut_at if start < c <= start + len(data)), None)
                if at is not None:
                    self.cut_at.remove(at)
                    data, cut = data[:at - start], True
                elif r.random() < self.cut_up:
                    data, cut = data[:r.randrange(0, len(data))], True
                self.up_bytes += len(data)
            else:
                if r.random() < self.cut_down:
                    data, cut = data[:r.randrange(0, len(data))], True
                self.down_bytes += len(data)
            self.cuts += cut
            self.stalls += stall
        return data, cut, stall

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        socks = [client, upstream]
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select(socks, [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    data, cut, stall = self._fault(data, upstream=s is client)
                    if stall:
                        time.sleep(self.stall_seconds)
                    (upstream if s is client else client).sendall(data)
                    if cut:
                        return
        except OSError:
            return
        finally:
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
