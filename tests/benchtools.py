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


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM a child's process group and wait; SIGKILL it if it has not stopped by *timeout*.

    A daemon at CPUWeight=10 and SCHED_IDLE on a loaded machine may get no CPU time to stop in.
    """
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    except ProcessLookupError:
        proc.wait(timeout)


def unit_settings(name: str) -> dict[str, str]:
    """The [Service] lines of systemd/NAME.service, so a bench runs a daemon as deployed."""
    path = Path(__file__).resolve().parent.parent / "systemd" / f"{name}.service"
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


CGROUP = Path("/sys/fs/cgroup")


def _disk_scheduler(path: Path) -> str:
    """The I/O scheduler of the disk holding *path* (IOWeight= acts only under bfq)."""
    try:
        dev = os.stat(path).st_dev
        block = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve()
        for d in (block, block.parent):
            sched = d / "queue" / "scheduler"
            if sched.exists():
                return re.search(r"\[(\S+)\]", sched.read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return "unknown"


class UnitCgroups:
    """One cgroup per unit with its CPUWeight= and IOWeight=, the way systemd writes them.

    Where systemd is not PID 1 (this machine, CI), the bench makes the cgroups itself:
    cgroup v2 (``cpu.weight``, ``io.weight``, the units' numbers as they are) where its
    cpu controller is there, else cgroup v1 (``cpu.shares`` = weight x 1024 / 100 and
    ``blkio[.bfq].weight`` = weight x 500 / 100 within 10..1000, systemd's own mapping).
    Each unit's cgroup is a sibling of the machine's other work at the default weight,
    as hub-announcer.service is a sibling of the other services on the Pi. ``applied``
    says what was written, for the bench to print.
    """

    def __init__(self):
        self.made: list[Path] = []
        self.applied: dict[str, str] = {}
        self.tag = f"hub-bench-{os.getpid()}"
        unified = CGROUP / "cgroup.controllers"
        if unified.exists() and "cpu" in unified.read_text().split():
            self.kind = "cgroup v2"
        elif (CGROUP / "cpu" / "cpu.shares").exists() and os.access(CGROUP / "cpu", os.W_OK):
            self.kind = "cgroup v1"
        else:
            self.kind = ""

    def _make(self, path: Path, values: dict[str, str]) -> list[str]:
        path.mkdir(exist_ok=True)
        self.made.append(path)
        done = []
        for key, value in values.items():
            try:
                (path / key).write_text(value)
                done.append(f"{key}={value}")
            except OSError:
                pass
        return done

    def paths(self, name: str) -> list[Path]:
        """The cgroups a process of unit *name* joins (made now); empty without cgroups or weights."""
        unit = unit_settings(name) if name in UNITS else {}
        cpu, io = unit.get("CPUWeight"), unit.get("IOWeight")
        if not self.kind:
            return []
        group = f"{self.tag}-{name}.service"
        cpu_w, io_w = int(cpu or 100), int(io or 100)
        if self.kind == "cgroup v2":
            path = CGROUP / group
            subtree = CGROUP / "cgroup.subtree_control"
            try:
                subtree.write_text("+cpu +io")
            except OSError:
                pass
            done = self._make(path, {"cpu.weight": str(cpu_w), "io.weight": f"default {io_w}"})
            self.applied[name] = " ".join(done)
            return [path]
        shares = max(2, min(262144, cpu_w * 1024 // 100))
        blkio = max(10, min(1000, io_w * 500 // 100))
        out = [CGROUP / "cpu" / group]
        done = self._make(out[0], {"cpu.shares": str(shares)})
        blk = CGROUP / "blkio"
        if blk.is_dir() and os.access(blk, os.W_OK):
            out.append(blk / group)
            self._make(out[1], {})
            key = "blkio.bfq.weight" if (out[1] / "blkio.bfq.weight").exists() else "blkio.weight"
            done += self._make(out[1], {key: str(blkio)})
        self.applied[name] = " ".join(done)
        return out

    def describe(self, data: Path | None = None) -> str:
        if not self.kind:
            return "no writable cgroup cpu controller here: CPUWeight=/IOWeight= not applied"
        units = "; ".join(f"{n}: {v}" for n, v in self.applied.items())
        sched = _disk_scheduler(data or Path(tempfile.gettempdir()))
        io_note = "" if sched == "bfq" else (f" (the disk's I/O scheduler is {sched}, not bfq: the IO weights"
                                             " are written but act only under bfq)")
        return f"{self.kind}, one cgroup per unit beside the machine's other work: {units}{io_note}"

    def close(self) -> None:
        for path in reversed(self.made):
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # its last process is still exiting
                    time.sleep(0.1)
        self.made.clear()


#: The units whose settings a bench may apply.
UNITS = ("hub-announcer", "hub-recorder", "hub-sync", "hub-transcriber", "hub-web", "hub-doctor")
_CGROUPS: UnitCgroups | None = None


def unit_cgroups() -> UnitCgroups:
    """The bench's one set of unit cgroups, removed at exit."""
    global _CGROUPS
    if _CGROUPS is None:
        import atexit

        _CGROUPS = UnitCgroups()
        atexit.register(_CGROUPS.close)
    return _CGROUPS


_SYS_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}.get(os.uname().machine)


def _io_idle() -> None:
    """IOSchedulingClass=idle for this process (ioprio_set; acts under bfq)."""
    if _SYS_IOPRIO_SET is None:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall(_SYS_IOPRIO_SET, 1, 0, 3 << 13)  # IOPRIO_WHO_PROCESS, this process, IOPRIO_CLASS_IDLE


def apply_unit(name: str):
    """A preexec_fn that runs a child as unit *name* would run: its cgroup weights, Nice= and scheduling.

    The cgroups (CPUWeight=, IOWeight=) are those of :func:`unit_cgroups`; Nice=,
    CPUSchedulingPolicy= and IOSchedulingClass= are set on the process, as systemd does.
    """
    unit = unit_settings(name)
    nice = int(unit.get("Nice", "0"))
    policy = unit.get("CPUSchedulingPolicy", "")
    io_idle = unit.get("IOSchedulingClass", "") == "idle"
    groups = unit_cgroups().paths(name)

    def preexec():
        for group in groups:
            try:
                (group / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                pass
        try:  # a negative Nice needs root, as systemd has when it starts the unit
            os.setpriority(os.PRIO_PROCESS, 0, nice)
            if policy == "idle":
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            elif policy == "batch":
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
            if io_idle:
                _io_idle()
        except OSError:
            pass

    return preexec
