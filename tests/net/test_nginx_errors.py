"""nginx's own errors (403, 404, 413, 502, 504) get the hub's Khmer pages, read by nginx's user."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from tests.conftest import need
from tests.net.webstack import WebStack, stop

pytestmark = pytest.mark.slow


def test_nginx_answers_its_own_errors_with_the_hubs_khmer_pages(tmp_path):
    need("nginx")
    # The site as rendered, with nginx's wait for the app cut from 120 s to 2 s for the 504.
    edits = {"proxy_read_timeout 120s;": "proxy_read_timeout 2s;"}
    with WebStack(tmp_path, settings={"max_upload_mb": 1, "max_audio_seconds": 120}, site_edits=edits) as web:
        s = requests.Session()
        s.trust_env = False
        pages = {}
        pages[404] = s.get(f"{web.villager_url}/media/nothing.html")
        pages[403] = s.get(f"{web.villager_url}/static/fonts/")
        # Over nginx's own limit (2 * max_upload_mb + 1): nginx refuses it before the app sees it.
        pages[413] = s.post(f"{web.villager_url}/feedback", data=b"\0" * (4 * 1024 * 1024),
                            headers={"Content-Type": "application/octet-stream"})
        pages[504], waited = slow_app(web, s)
        # Unfrozen, the app answers again through the same nginx.
        assert s.get(f"{web.villager_url}/feedback?lang=km", timeout=30).status_code == 200
        stop(web.gunicorn)
        pages[502] = s.get(f"{web.villager_url}/")
        for status, r in pages.items():
            assert r.status_code == status, (status, r.text[:200])
            assert r.headers["Content-Type"].startswith("text/html"), status
            assert r.headers.get("Cache-Control") == "no-store", status
            assert '<html lang="km">' in r.text and 'lang="en"' in r.text, (status, r.text[:300])
            assert 'name="viewport" content="width=device-width' in r.text, status
            assert "nginx" not in r.text and len(r.content) < 12 * 1024, status
        assert "រហូតដល់ ២ នាទី" in pages[413].text and "up to 2 minutes" in pages[413].text
        assert "ប៊ូតុងថយក្រោយ" in pages[413].text and "Back button" in pages[413].text
        assert "ហាប់កំពុងចាប់ផ្តើម" in pages[502].text
        assert "ហាប់កំពុងរវល់" in pages[504].text and "The hub is busy" in pages[504].text
        assert 1.5 < waited < 15


def slow_app(web, s):
    """The app stops answering (its processes frozen by their pids): nginx gives up after
    proxy_read_timeout and sends its 504 page. Returns the answer and how long it took."""
    frozen = web.pids()
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        r = s.get(f"{web.villager_url}/receipt/12345678", timeout=30)
        return r, time.monotonic() - started
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
