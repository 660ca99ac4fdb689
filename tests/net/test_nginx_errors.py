"""nginx's own errors (403, 404, 413, 502) get the hub's Khmer pages, read by nginx's user."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import need
from tests.net.webstack import WebStack, stop

pytestmark = pytest.mark.slow


def test_nginx_answers_its_own_errors_with_the_hubs_khmer_pages(tmp_path):
    need("nginx")
    with WebStack(tmp_path, settings={"max_upload_mb": 1, "max_audio_seconds": 120}) as web:
        s = requests.Session()
        s.trust_env = False
        pages = {}
        pages[404] = s.get(f"{web.villager_url}/media/nothing.html")
        pages[403] = s.get(f"{web.villager_url}/static/fonts/")
        # Over nginx's own limit (max_upload_mb + 1): nginx refuses it before the app sees it.
        pages[413] = s.post(f"{web.villager_url}/feedback", data=b"\0" * (3 * 1024 * 1024),
                            headers={"Content-Type": "application/octet-stream"})
        stop(web.gunicorn)
        pages[502] = s.get(f"{web.villager_url}/")
        for status, r in pages.items():
            assert r.status_code == status, (status, r.text[:200])
            assert r.headers["Content-Type"].startswith("text/html"), status
            assert '<html lang="km">' in r.text and 'lang="en"' in r.text, (status, r.text[:300])
            assert "nginx" not in r.text
        assert "រហូតដល់ ២ នាទី" in pages[413].text and "up to 2 minutes" in pages[413].text
        assert "ហាប់កំពុងចាប់ផ្តើម" in pages[502].text
