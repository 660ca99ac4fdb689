"""The production web stack for tests and benchmarks: nginx -> `hub web` on a unix socket.

Everything lives in a temporary folder: the hub's data, the socket, nginx's
pid file, logs and temp paths. Both processes run in the foreground and are
stopped by their pids, optionally inside a network namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hub.core import settings as settings_mod
from hub.net import nginx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The environment without HUB_ settings or proxies, so only the test's hub.toml counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and "proxy" not in k.lower()}


def hub_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", "--config", str(config), *args]


def write_toml(path: Path, values: dict) -> Path:
    import tomli_w

    path.write_bytes(tomli_w.dumps({k: str(v) if isinstance(v, Path) else v for k, v in values.items()}).encode())
    return path


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready after {timeout}s")


def stop(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """Stop one process we started, by its pid: TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class WebStack:
    """nginx in front of `hub web --bind unix:SOCK`, configured by the hub's own renderer."""

    def __init__(
        self,
        tmp: Path,
        settings: dict | None = None,
        villager_listen: str | None = None,
        staff_listen: str | None = None,
        netns: str | None = None,
        workers: int = 2,
    ):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.netns = netns
        self.workers = workers
        # A unix socket path must stay under 108 bytes; pytest's tmp paths can be long.
        self.sockdir = Path(tempfile.mkdtemp(prefix="hubweb-"))
        self.villager_port = free_port()
        self.staff_port = free_port()
        self.villager_listen = villager_listen or f"127.0.0.1:{self.villager_port}"
        self.staff_listen = staff_listen or f"127.0.0.1:{self.staff_port}"
        host = self.villager_listen.rsplit(":", 1)[0] if ":" in self.villager_listen else "127.0.0.1"
        values = {
            "data_dir": self.tmp / "data",
            "behind_proxy": True,
            "portal_url": f"http://{self.villager_listen}/".replace(":80/", "/"),
            "web_socket": str(self.sockdir / "web.sock"),
            "hostnames": ["hub.local", host],
            "log_level": "warning",
        }
        values.update(settings or {})
        self.config = write_toml(self.tmp / "hub.toml", values)
        self.settings = settings_mod.load(self.config, env={})
        self.gunicorn: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None
        self.prefix = self.tmp / "nginx"

    @property
    def villager_url(self) -> str:
        return f"http://{self.villager_listen}"

    @property
    def staff_url(self) -> str:
        return f"http://{self.staff_listen}"

    def _wrap(self, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *cmd] if self.netns else cmd

    def write_nginx(self) -> Path:
        """The renderer's site file inside a standalone nginx.conf; returns the main file."""
        self.prefix.mkdir(parents=True, exist_ok=True)
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / sub).mkdir(exist_ok=True)
        site = self.prefix / "site.conf"
        site.write_text(
            nginx.nginx_site(self.settings, villager_listen=self.villager_listen, staff_listen=self.staff_listen)
        )
        main = self.prefix / "nginx.conf"
        # Workers run as root only because the test's temp folders are private to root;
        # on a Pi they run as www-data.
        main.write_text(nginx.nginx_standalone(site, self.prefix, user="root" if os.geteuid() == 0 else None))
        return main

    def nginx_test(self) -> subprocess.CompletedProcess:
        main = self.write_nginx()
        return subprocess.run(["nginx", "-t", "-c", str(main), "-p", str(self.prefix)], capture_output=True, text=True)

    def start(self) -> WebStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        env = clean_env()
        # gunicorn's control socket goes to $XDG_RUNTIME_DIR, else ~/.gunicorn: keep it in our folder.
        env["XDG_RUNTIME_DIR"] = str(self.sockdir)
        r = subprocess.run(hub_cmd(self.config, "migrate"), capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"hub migrate failed: {r.stderr}")
        sock = self.sockdir / "web.sock"
        with open(self.tmp / "gunicorn.log", "ab") as log:
            self.gunicorn = subprocess.Popen(
                self._wrap(hub_cmd(self.config, "web", "--bind", f"unix:{sock}", "--workers", str(self.workers))),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: _unix_connects(sock), 30, "gunicorn", self.gunicorn)
        t = self.nginx_test()
        if t.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {t.stderr}")
        with open(self.tmp / "nginx.stderr", "ab") as log:
            self.nginx = subprocess.Popen(
                self._wrap(["nginx", "-c", str(self.prefix / "nginx.conf"), "-p", str(self.prefix)]),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        if not self.netns:
            for listen in (self.villager_listen, self.staff_listen):
                host, port = listen.rsplit(":", 1)
                wait_for(lambda h=host, p=int(port): _tcp_connects(h, p), 10, "nginx", self.nginx)
        else:
            wait_for(lambda: (self.prefix / "nginx.pid").exists(), 10, "nginx", self.nginx)

    def pids(self) -> list[int]:
        """gunicorn's master and its workers (the web process's memory is theirs)."""
        if self.gunicorn is None:
            return []
        out = [self.gunicorn.pid]
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == self.gunicorn.pid:
                    out.append(int(d.name))
        return out

    def close(self) -> None:
        stop(self.nginx)
        stop(self.gunicorn)
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def __enter__(self) -> WebStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _unix_connects(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(1)
        s.connect(str(path))
    return True


def _tcp_connects(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1):
        return True
