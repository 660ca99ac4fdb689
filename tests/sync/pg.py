"""A real PostgreSQL server for the tests and the bench, from Debian's `postgresql` package.

It runs from the system binaries as an unprivileged user (``nobody`` when
the tests run as root, as in CI) in a temporary directory that user owns,
listening only on a unix socket inside it, and is stopped by ``pg_ctl``.
The checkout may sit in a directory that user cannot enter, so every
command runs with the temporary directory as its working directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package (make test does)")
    return found[-1]


class PostgresServer:
    def __init__(self, fsync: bool = False):
        self.user = "nobody" if os.geteuid() == 0 else None
        # /tmp, not TMPDIR, for the unprivileged user: TMPDIR may sit in a directory it cannot enter,
        # and a unix socket's path must stay short.
        self.dir = Path(tempfile.mkdtemp(prefix="hub-pg-", dir="/tmp" if self.user else None))
        self.data = self.dir / "data"
        self.socket_dir = self.dir
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--locale=C.UTF-8"])
        options = (f"-k {self.socket_dir} -c listen_addresses='' -c max_connections=200"
                   f" -c fsync={'on' if fsync else 'off'} -c synchronous_commit={'on' if fsync else 'off'}"
                   " -c full_page_writes=on")
        self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60",
                   "-o", options, "start"])

    def _run(self, cmd: list[str]) -> None:
        if self.user:
            cmd = ["setpriv", f"--reuid={self.user}", "--regid=nogroup", "--clear-groups", "--", *cmd]
        r = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=120,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"})
        if r.returncode != 0:
            log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}{log[-2000:]}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; return its URL."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1].split("?")[0]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def stop(self) -> None:
        try:
            self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
