"""The production web setup, for real: our nginx config in front of `hub web` on a socket."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
import requests

from hub.core import settings as settings_mod
from hub.core.context import open_context
from hub.migrations import MIGRATIONS
from hub.net import nginx
from tests.conftest import need
from tests.net.webstack import WebStack
from tests.phone_audio import encode, tone_wav

pytestmark = pytest.mark.slow

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # never a proxy from the environment
    return s


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    need("nginx")
    tmp = tmp_path_factory.mktemp("webstack")
    web = WebStack(tmp)
    # A real audio notice file, made by the media pipeline before the app starts.
    ctx = open_context(web.settings, MIGRATIONS)
    mp3 = encode(tone_wav(tmp / "tone.wav", seconds=1.0), "mp3", tmp)
    media_id = ctx.media.add_audio(mp3)
    web.audio = ctx.media.get(media_id)
    png = tmp / "photo.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1", str(png)], check=True
    )
    web.image = ctx.media.get(ctx.media.add_image(png))
    # Files no request may get: an HTML file beside the media, and a web-named file holding HTML.
    fake = str(uuid.uuid4())
    (web.settings.media_dir / f"{fake}.web.html").write_text("<script>alert(1)</script>")
    (web.settings.media_dir / f"{fake}.web.mp3").write_text("<html><script>alert(1)</script></html>")
    web.fake = fake
    ctx.close()
    with web:
        yield web


def test_nginx_t_accepts_the_rendered_config(tmp_path, hub_settings):
    need("nginx")
    web = WebStack(tmp_path, villager_listen="127.0.0.1:18081", staff_listen="127.0.0.1:18082")
    r = web.nginx_test()
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr
    # The production layout (AP address, every other address) passes too.
    site = tmp_path / "prod.conf"
    site.write_text(nginx.nginx_site(hub_settings))
    main = tmp_path / "main.conf"
    main.write_text(nginx.nginx_standalone(site, web.prefix))
    r = subprocess.run(["nginx", "-t", "-c", str(main), "-p", str(web.prefix)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_broken_site_is_refused_by_nginx_t(tmp_path):
    need("nginx")
    web = WebStack(tmp_path)
    main = web.write_nginx()
    site = web.prefix / "site.conf"
    site.write_text(site.read_text().replace("proxy_pass http://hub_web;", "proxy_pass http://hub_web"))
    r = subprocess.run(["nginx", "-t", "-c", str(main), "-p", str(web.prefix)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "site.conf" in r.stderr


def test_static_files_come_from_nginx_with_cache_headers(stack):
    s = session()
    r = s.get(f"{stack.villager_url}/static/hub.css?v=0123456789")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/css")
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # The app adds a CSP to everything it answers; nginx's own files have none.
    assert "Content-Security-Policy" not in r.headers
    assert r.content == (nginx.static_dir() / "hub.css").read_bytes()
    unversioned = s.get(f"{stack.villager_url}/static/hub.css")
    assert unversioned.headers["Cache-Control"] == "public, max-age=3600"
    font = s.get(f"{stack.villager_url}/static/fonts/NotoSansKhmer-Regular.khmer.woff2")
    assert font.status_code == 200
    assert font.headers["Content-Type"] == "font/woff2"
    assert "max-age=31536000" in font.headers["Cache-Control"]
    assert s.get(f"{stack.villager_url}/static/../hub.toml").status_code in (400, 404)


def test_pages_link_static_files_nginx_serves(stack):
    s = session()
    home = s.get(f"{stack.villager_url}/", headers={"Accept-Encoding": "gzip"})
    assert home.status_code == 200
    assert home.headers.get("Content-Encoding") == "gzip"
    links = re.findall(r'(/static/[^"?]+\?v=[0-9a-f]+)', home.text)
    assert links, home.text[:500]
    for link in links:
        r = s.get(stack.villager_url + link)
        assert r.status_code == 200, link
        assert "immutable" in r.headers["Cache-Control"]


def test_media_web_copies_served_with_type_from_extension(stack):
    s = session()
    name = stack.audio["web_name"]
    assert name.endswith(".web.mp3")
    r = s.get(f"{stack.villager_url}/media/{name}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "audio/mpeg"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "sandbox" in r.headers["Content-Security-Policy"]
    assert r.content == (stack.settings.media_dir / name).read_bytes()
    image = s.get(f"{stack.villager_url}/media/{stack.image['web_name']}")
    assert stack.image["web_name"].endswith(".web.jpg")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    # Phones seek in audio with range requests.
    part = s.get(f"{stack.villager_url}/media/{name}", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100


def test_media_masters_and_other_names_are_not_served(stack):
    s = session()
    for name in (
        stack.audio["master_name"],
        stack.audio["loud_name"],
        f"{stack.fake}.web.html",
        "hub.db",
        "../hub.db",
        "%2e%2e/hub.db",
    ):
        r = s.get(f"{stack.villager_url}/media/{name}")
        assert r.status_code in (400, 404), name
        assert b"SQLite" not in r.content and b"RIFF" not in r.content


def test_media_file_holding_html_is_never_served_as_html(stack):
    r = session().get(f"{stack.villager_url}/media/{stack.fake}.web.mp3")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "audio/mpeg"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in r.headers["Content-Security-Policy"]


def test_clerk_console_refused_on_villager_side_served_on_staff_side(stack):
    s = session()
    for path in ("/clerk/login", "/clerk/", "/clerk", "/%63lerk/login", "//clerk/login"):
        r = s.get(stack.villager_url + path, allow_redirects=False)
        assert r.status_code == 404, path
        assert "csrf_token" not in r.text
    staff = s.get(f"{stack.staff_url}/clerk/login")
    assert staff.status_code == 200
    assert 'name="csrf_token"' in staff.text
    assert staff.headers["Cache-Control"] == "no-store"
    # Clerks reach the hub by whatever address the office LAN gave it: not a foreign host there.
    lan = s.get(f"{stack.staff_url}/clerk/login", headers={"Host": "192.168.1.50"}, allow_redirects=False)
    assert lan.status_code == 200 and 'name="csrf_token"' in lan.text


def test_foreign_host_is_sent_to_the_portal(stack):
    s = session()
    r = s.get(
        f"{stack.villager_url}/generate_204",
        headers={"Host": "connectivitycheck.gstatic.com"},
        allow_redirects=False,
    )
    assert r.status_code == 302
    assert r.headers["Location"] == f"{stack.villager_url}/welcome"
    r = s.get(f"{stack.villager_url}/some/page", headers={"Host": "example.org"}, allow_redirects=False)
    assert r.status_code == 302
    # The hub's own name is not foreign.
    assert s.get(f"{stack.villager_url}/", headers={"Host": "hub.local"}, allow_redirects=False).status_code == 200


def test_feedback_post_through_nginx(stack):
    s = session()
    form = s.get(f"{stack.villager_url}/feedback")
    token = CSRF_RE.search(form.text).group(1)
    r = s.post(
        f"{stack.villager_url}/feedback",
        allow_redirects=False,
        data={
            "csrf_token": token,
            "category": "water",
            "body": "The well in the north village is broken.",
        },
    )
    assert r.status_code == 303, r.text[:300]
    assert "/receipt/" in r.headers["Location"]
    receipt = s.get(stack.villager_url + r.headers["Location"])
    assert receipt.status_code == 200
    settings = settings_mod.load(stack.config, env={})
    ctx = open_context(settings, MIGRATIONS, migrate=False)
    try:
        row = ctx.db.conn.execute("select body from feedback order by created_at desc limit 1").fetchone()
    finally:
        ctx.close()
    assert "well" in row[0]


def test_app_sees_the_phones_address_not_a_forged_header(stack):
    s = session()
    token = CSRF_RE.search(s.get(f"{stack.villager_url}/welcome").text).group(1)
    r = s.post(
        f"{stack.villager_url}/welcome",
        data={"csrf_token": token},
        headers={"X-Forwarded-For": "198.51.100.66"},
        allow_redirects=False,
    )
    assert r.status_code == 303
    ctx = open_context(stack.settings, MIGRATIONS, migrate=False)
    try:
        clients = [row[0] for row in ctx.db.conn.execute("select client from portal_clients")]
    finally:
        ctx.close()
    assert clients and all(c in ("ip:127.0.0.1",) or c.startswith("mac:") for c in clients), clients
    # Now the check answers like the internet would, so the phone stays on the Wi-Fi.
    assert s.get(f"{stack.villager_url}/generate_204", allow_redirects=False).status_code == 204


def test_doctor_probe_sees_the_portal(stack):
    from hub.net import checks

    ok = checks.portal_answers(stack.settings, base_url=stack.villager_url)
    assert ok.ok, ok
    down = checks.portal_answers(stack.settings, base_url="http://127.0.0.1:9", timeout=2)
    assert not down.ok and down.hint
