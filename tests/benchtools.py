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


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB, from /proc/PID/smaps_rollup (PSS splits shared pages)."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def tree_memory_kb(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, processes) of a process and its children."""
    pids = [pid, *children(pid)]
    rss = pss = 0
    for p in pids:
        r, s = memory_kb(p)
        rss, pss = rss + r, pss + s
    return rss, pss, len(pids)


WRK_P95 = """done = function(summary, latency, requests)
  io.write(string.format("P95_US %d\\n", latency:percentile(95)))
end
"""


def wrk(url: str, connections: int = 50, seconds: int = 5, headers: dict | None = None) -> tuple[float, float]:
    """(requests per second, p95 latency in ms) of one wrk run."""
    script = Path(tempfile.gettempdir()) / "hub-bench-p95.lua"
    script.write_text(WRK_P95)
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p95 = int(re.search(r"P95_US (\d+)", out).group(1)) / 1000
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk {url}: {errors.group(1)} error answers")
    return rps, p95


def unit_settings(name: str) -> dict[str, str]:
    """The [Service] lines of systemd/NAME.service, so a bench runs a daemon as deployed."""
    path = Path(__file__).resolve().parent.parent / "systemd" / f"{name}.service"
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def apply_unit(name: str):
    """A preexec_fn that gives a child the unit's Nice= and CPUSchedulingPolicy= (as systemd would)."""
    unit = unit_settings(name)
    nice = int(unit.get("Nice", "0"))
    policy = unit.get("CPUSchedulingPolicy", "")

    def preexec():
        try:  # a negative Nice needs root, as systemd has when it starts the unit
            os.setpriority(os.PRIO_PROCESS, 0, nice)
            if policy == "idle":
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            elif policy == "batch":
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        except OSError:
            pass

    return preexec
