"""Parallel login tries against gunicorn (several workers, several threads each) cannot beat the counter."""

from __future__ import annotations

import re
import subprocess
import threading

import pytest
import requests

from tests.net.webstack import clean_env, free_port, hub_cmd, stop, wait_for, write_toml

pytestmark = pytest.mark.slow

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LIMIT = 5
TRIES = 36


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    config = write_toml(tmp_path / "hub.toml", {"data_dir": tmp_path / "data", "port": port, "log_level": "warning",
                                                "login_attempts": LIMIT})
    env = clean_env()
    r = subprocess.run(hub_cmd(config, "user", "add", "sokha"), input="a long pass phrase\n", capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "gunicorn.log", "ab") as log:
        proc = subprocess.Popen(hub_cmd(config, "web", "--bind", f"127.0.0.1:{port}", "--workers", "3"),
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/clerk/login", timeout=2).status_code == 200, 90, "gunicorn", proc)
        yield url
    finally:
        stop(proc)


def test_parallel_wrong_passwords_are_checked_at_most_limit_times(gunicorn, tmp_path):
    sessions = []
    for _ in range(TRIES):
        s = requests.Session()
        s.trust_env = False
        token = CSRF_RE.search(s.get(f"{gunicorn}/clerk/login", timeout=10).text).group(1)
        sessions.append((s, token))
    start = threading.Barrier(TRIES)
    codes: list[int | str] = []

    def attempt(i: int) -> None:
        s, token = sessions[i]
        start.wait()
        try:
            r = s.post(f"{gunicorn}/clerk/login", timeout=120, allow_redirects=False,
                       data={"username": "sokha", "password": f"guess number {i}", "csrf_token": token})
            codes.append(r.status_code)
        except requests.RequestException as e:  # shown in the assertion below, not lost in a thread
            codes.append(repr(e))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(TRIES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert len(codes) == TRIES, codes
    assert set(codes) <= {401, 429}, (codes, (tmp_path / "gunicorn.log").read_text()[-2000:])
    # Every password that was checked answered 401; past the limit none is checked.
    assert codes.count(401) <= LIMIT, sorted(codes)
    assert codes.count(429) >= TRIES - LIMIT
    # And the clerk's own password from this address now waits too.
    s, token = sessions[0]
    r = s.post(f"{gunicorn}/clerk/login", timeout=30, allow_redirects=False,
               data={"username": "sokha", "password": "a long pass phrase", "csrf_token": token})
    assert r.status_code == 429
