"""Shared pieces of `make bench`: wrk runs, a throwaway nginx, process memory."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def wrk_rps(url: str, connections: int = 50, seconds: int = 5, runs: int = 3) -> float:
    """Median requests per second of several wrk runs."""
    results = []
    for _ in range(runs):
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url],
                             capture_output=True, text=True, check=True).stdout
        results.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
    return statistics.median(results)


def rss_kb(pid: int, include_children: bool = True) -> int:
    """Resident memory of a process (and its children), in KiB."""
    pids = [pid]
    if include_children:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class StaticNginx:
    """nginx serving one directory on a loopback port, with its pid file in a temp folder."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        self.proc = None

    def __enter__(self):
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = self.dir / "nginx.conf"
        conf.write_text(f"""{user}
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {self.dir}/body; proxy_temp_path {self.dir}/proxy;
  fastcgi_temp_path {self.dir}/fcgi; uwsgi_temp_path {self.dir}/uwsgi; scgi_temp_path {self.dir}/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
    location / {{ default_type text/html; try_files /index.html =404; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if (self.dir / "nginx.pid").exists():
                break
            time.sleep(0.1)
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
