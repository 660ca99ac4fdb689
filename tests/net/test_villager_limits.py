"""The villagers' side through the rendered nginx site: per-address limits, and no timeout for a stored message."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time

import pytest
import requests

from hub import feedback
from hub.core import settings as settings_mod
from hub.net import nginx
from tests.conftest import need
from tests.net.webstack import WebStack
from tests.phone_audio import encode, tone_wav

pytestmark = pytest.mark.slow
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    # As a phone's browser says of a form posted from the portal's own (cached) page.
    s.headers["Sec-Fetch-Site"] = "same-origin"
    return s


def count(stack, sql: str) -> int:
    conn = sqlite3.connect(f"file:{stack.settings.db_path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def from_nginx(r: requests.Response) -> bool:
    """nginx's own 429: the hub's static page, Khmer with English beside (the app's pages are in one language)."""
    return r.status_code == 429 and '<h2 lang="en">Too many tries from this phone</h2>' in r.text


def test_the_rendered_limits_pass_nginx_t_with_and_without_limits(tmp_path):
    need("nginx")
    for name, values in (("on", {}), ("off", {"feedback_per_hour": 0, "receipt_lookups_per_minute": 0})):
        web = WebStack(tmp_path / name, settings=values)
        try:
            site = nginx.nginx_site(web.settings)
            assert ("limit_req zone=hub_submit" in site) == (name == "on")
            assert "limit_conn hub_uploads 2;" in site
            r = web.nginx_test()
            assert r.returncode == 0, r.stderr
        finally:
            web.close()


def test_nginx_waits_longer_than_the_longest_conversion_the_settings_allow(hub_settings):
    site = nginx.nginx_site(hub_settings)
    timeouts = {int(t) for t in re.findall(r"proxy_read_timeout (\d+)s;", site)}
    assert timeouts and min(timeouts) > settings_mod.MAX_CONVERSION_SECONDS + 10
    with pytest.raises(settings_mod.SettingsError, match="conversion_seconds"):
        settings_mod.load(config=None, env={}, overrides={"conversion_seconds": min(timeouts)})


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    need("nginx")
    tmp = tmp_path_factory.mktemp("limited")
    # The app's count of wrong receipt numbers is off here, so a refused lookup is refused by nginx.
    with WebStack(tmp, settings={"feedback_per_hour": 3, "receipt_lookups_per_minute": 5,
                                 "receipt_misses_per_hour": 0}) as web:
        yield web


def test_a_flood_of_receipt_lookups_gets_429_from_nginx(limited):
    s = session()
    guess = "1000000" + feedback.check_digit("1000000")
    answers = [s.get(f"{limited.villager_url}/receipt/{guess}") for _ in range(12)]
    codes = [r.status_code for r in answers]
    assert codes[:5] == [404] * 5, codes
    assert 429 in codes and all(from_nginx(r) for r in answers if r.status_code == 429), codes
    # The rest of the portal is not held up.
    assert all(s.get(f"{limited.villager_url}/").status_code == 200 for _ in range(10))


def test_a_flood_of_messages_gets_429_from_nginx_and_stores_only_what_passed(limited):
    s = session()
    token = CSRF_RE.search(s.get(f"{limited.villager_url}/feedback").text).group(1)
    answers = [s.post(f"{limited.villager_url}/feedback", allow_redirects=False,
                      data={"csrf_token": token, "category": "water", "body": f"flood {i}"}) for i in range(8)]
    codes = [r.status_code for r in answers]
    assert codes[:3] == [303] * 3, codes
    # The app counts the hour (its 429 is a page in Khmer); nginx turns the rest of the flood away itself.
    assert set(codes[3:]) == {429}, codes
    assert not from_nginx(answers[3]) and "ម៉ោង" in answers[3].text
    assert all(from_nginx(r) for r in answers[5:]), codes
    assert count(limited, "select count(*) from feedback where body like 'flood %'") == 3
    # Reading the form is not a submission.
    assert all(s.get(f"{limited.villager_url}/feedback").status_code == 200 for _ in range(6))


class ImpatientNginx(WebStack):
    """The stack with nginx waiting only a few seconds for the app, as a slow Pi would meet 120 s."""

    PROXY_SECONDS = 4

    def write_nginx(self):
        main = super().write_nginx()
        site = self.prefix / "site.conf"
        site.write_text(site.read_text().replace("proxy_read_timeout 120s;",
                                                 f"proxy_read_timeout {self.PROXY_SECONDS}s;"))
        return main


def test_a_phone_never_gets_a_timeout_for_a_message_that_is_stored(tmp_path):
    """A conversion slower than nginx's wait: the app gives up first (503), and nothing is stored."""
    need("nginx")
    slow = encode(tone_wav(tmp_path / "long.wav", seconds=280.0), "ogg", tmp_path)
    with ImpatientNginx(tmp_path / "stack", settings={"conversion_seconds": 2}) as web:
        s = session()
        token = CSRF_RE.search(s.get(f"{web.villager_url}/feedback").text).group(1)
        with open(slow, "rb") as f:
            r = s.post(f"{web.villager_url}/feedback", allow_redirects=False, timeout=60,
                       data={"csrf_token": token, "category": "water", "body": "slow one"},
                       files={"voice": ("long.ogg", f, "audio/ogg")})
        time.sleep(web.PROXY_SECONDS + 2)  # whatever the app was still doing has finished by now
        stored = count(web, "select count(*) from feedback where body = 'slow one'")
        files = subprocess.run(["find", str(web.settings.media_dir), "-type", "f"], capture_output=True,
                               text=True).stdout.split()
        assert (r.status_code, stored) in ((303, 1), (503, 0)), (r.status_code, stored, r.text[:200])
        assert r.status_code == 503 and not from_nginx(r)
        assert not files, files
