"""The production web stack for tests and benchmarks: nginx -> `hub web` on a unix socket.

Everything lives in a temporary folder: the hub's data, the socket, nginx's
pid file, logs and temp paths. Both processes run in the foreground and are
stopped by their pids, optionally inside a network namespace.

Run as root, the stack is laid out as on a Pi, so that permission bugs show:
nginx's workers run as www-data, and the hub runs as an unprivileged user
(nobody) whose group is one www-data has (www-data's own; on a Pi, www-data is
in the group hub), with the units' umask and no memory it may lock. Its data
folder belongs to that user and group, 0750, in a folder everyone can enter;
its Python is a venv outside the checkout (tests.conftest.unprivileged_python).
"""

from __future__ import annotations

import grp
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
from tests.conftest import as_user, no_memory_lock, unprivileged_python, user_ids

#: The hub's user and group when the stack runs as root, and nginx's workers' user.
HUB_USER, HUB_GROUP, NGINX_USER = "nobody", "www-data", "www-data"
#: The units' UMask=.
UNIT_UMASK = 0o027


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


def runs_deployed() -> bool:
    """Whether a stack runs as deployed by default: as root, the hub runs as its own user."""
    return os.geteuid() == 0


def hub_ids() -> tuple[int, int]:
    """The uid and gid the stack runs the hub as, when deployed."""
    return user_ids(HUB_USER)[0], grp.getgrnam(HUB_GROUP).gr_gid


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
        deployed: bool | None = None,
        as_installed: bool = False,
        site_edits: dict[str, str] | None = None,
    ):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.netns = netns
        self.workers = workers
        # The site exactly as `hub netconfig` installs it (its own listen addresses), not test ports.
        self.as_installed = as_installed
        # Exact replacements in the rendered site (e.g. a shorter timeout); each must match once.
        self.site_edits = site_edits or {}
        self.deployed = runs_deployed() if deployed is None else deployed
        # A unix socket path must stay under 108 bytes; pytest's tmp paths can be long. As
        # deployed, everything the hub and nginx's workers touch is here too: pytest's tmp
        # folders are private to root.
        self.top = Path(tempfile.mkdtemp(prefix="hubweb-"))
        self.python = None
        if self.deployed:
            self.top.chmod(0o755)
            self.hub_ids = hub_ids()
            self.python = unprivileged_python(*self.hub_ids)
            home = self.top
            data = self._hub_dir(self.top / "data", 0o750)  # as install-hub.sh makes /var/lib/hub
            self.sockdir = self._hub_dir(self.top / "run", 0o755)  # RuntimeDirectoryMode=0755
        else:
            home = self.tmp
            data = self.tmp / "data"
            self.sockdir = self.top
        self.villager_port = free_port()
        self.staff_port = free_port()
        self.villager_listen = villager_listen or f"127.0.0.1:{self.villager_port}"
        self.staff_listen = staff_listen or f"127.0.0.1:{self.staff_port}"
        host = self.villager_listen.rsplit(":", 1)[0] if ":" in self.villager_listen else "127.0.0.1"
        values = {
            "data_dir": data,
            "behind_proxy": True,
            "portal_url": f"http://{self.villager_listen}/".replace(":80/", "/"),
            "web_socket": str(self.sockdir / "web.sock"),
            "hostnames": ["hub.local", host],
            "log_level": "warning",
        }
        values.update(settings or {})
        self.config = write_toml(home / "hub.toml", values)
        self.config.chmod(0o644)
        self.settings = settings_mod.load(self.config, env={})
        self.gunicorn: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None
        self.prefix = home / "nginx"

    def _hub_dir(self, path: Path, mode: int) -> Path:
        path.mkdir(exist_ok=True)
        os.chown(path, *self.hub_ids)
        path.chmod(mode)
        return path

    def hub(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """Run `hub ARGS` with this stack's config, as the hub's user."""
        env = {**clean_env(), "XDG_RUNTIME_DIR": str(self.sockdir)}
        if not self.deployed:
            return subprocess.run(hub_cmd(self.config, *args), capture_output=True, text=True, env=env,
                                  input=input)
        return subprocess.run(
            [*as_user(*self.hub_ids), *self.python.hub("--config", str(self.config), *args)],
            capture_output=True, text=True, input=input, umask=UNIT_UMASK, cwd=self.settings.data_dir,
            env={**env, "HOME": "/nonexistent"},
        )

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
        # As deployed, nginx serves the static files of the hub's install, not of the checkout.
        static = self.python.static_dir if self.deployed else None
        if self.as_installed:
            site.write_text(nginx.nginx_site(self.settings, static=static))
        else:
            site.write_text(
                nginx.nginx_site(self.settings, villager_listen=self.villager_listen, staff_listen=self.staff_listen,
                                 static=static)
            )
        text = site.read_text()
        for before, after in self.site_edits.items():
            if text.count(before) < 1:
                raise ValueError(f"site edit: {before!r} is not in the rendered site")
            text = text.replace(before, after)
        site.write_text(text)
        main = self.prefix / "nginx.conf"
        main.write_text(nginx.nginx_standalone(site, self.prefix, user=NGINX_USER if self.deployed else None))
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
        if self.deployed:
            # Whatever a test put in the data folder beforehand is the hub's, as after a restore.
            for path in (self.settings.data_dir, *self.settings.data_dir.rglob("*")):
                os.chown(path, *self.hub_ids, follow_symlinks=False)
        r = self.hub("migrate")
        if r.returncode != 0:
            raise RuntimeError(f"hub migrate failed: {r.stderr}")
        self.start_gunicorn()
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
            # From outside the namespace, ask its kernel whether nginx listens on every port yet.
            listens = (self.villager_listen,) if self.as_installed else (self.villager_listen, self.staff_listen)
            ports = {int(listen.rsplit(":", 1)[1]) for listen in listens}
            wait_for(lambda: ports <= self._listening_ports(), 10, "nginx", self.nginx)

    def _listening_ports(self) -> set[int]:
        out = subprocess.run(self._wrap(["ss", "-Hltn"]), capture_output=True, text=True).stdout
        return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line.split()[3:]}

    def start_gunicorn(self, timeout: float = 30, env: dict | None = None, **popen) -> subprocess.Popen:
        """Start `hub web` on the socket, as the unit does (with *env* added to its environment),
        and wait until it accepts connections."""
        sock = self.sockdir / "web.sock"
        # gunicorn's control socket goes to $XDG_RUNTIME_DIR, else ~/.gunicorn: keep it in our folder.
        env = {**clean_env(), "XDG_RUNTIME_DIR": str(self.sockdir), **(env or {})}
        web = ["web", "--bind", f"unix:{sock}", "--workers", str(self.workers)]
        if self.deployed:
            cmd = [*no_memory_lock(), *as_user(*self.hub_ids), *self.python.hub("--config", str(self.config), *web)]
            extra = {"umask": UNIT_UMASK, "cwd": self.settings.data_dir, "env": {**env, "HOME": "/nonexistent"}}
        else:
            cmd, extra = hub_cmd(self.config, *web), {"env": env}
        with open(self.tmp / "gunicorn.log", "ab") as log:
            self.gunicorn = subprocess.Popen(self._wrap(cmd), stdout=log, stderr=subprocess.STDOUT,
                                             **extra, **popen)
        wait_for(lambda: _unix_connects(sock), timeout, "gunicorn", self.gunicorn)
        return self.gunicorn

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
        shutil.rmtree(self.top, ignore_errors=True)

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
