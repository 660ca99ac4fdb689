"""The production web setup, for real: our nginx config in front of `hub web` on a socket."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

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

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # never a proxy from the environment
    # As a browser says of a form posted from the hub's own page (hub.web.pagecache).
    s.headers["Sec-Fetch-Site"] = "same-origin"
    return s


def refusal(r: requests.Response) -> tuple[int, str]:
    """A response's status and the error message on its page, for assertion messages."""
    m = re.search(r'<p class="error" role="alert">(.*?)</p>', r.text, re.S)
    return r.status_code, re.sub(r"<[^>]+>", "", m.group(1)).strip() if m else r.text[:300]


def rows(stack, sql: str, params=()) -> list[dict]:
    """Read the running hub's database (read-only: the data are the hub user's)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{stack.settings.db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def mode(path) -> str:
    return oct(path.stat().st_mode & 0o7777)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    need("nginx")
    tmp = tmp_path_factory.mktemp("webstack")
    with WebStack(tmp) as web:
        # A clerk publishes a notice with a recording and a picture through nginx: the media
        # files are made as the running hub makes them, by its user with its umask.
        r = web.hub("user", "add", "clerk1", "--role", "clerk", input="correct horse\n")
        assert r.returncode == 0, r.stderr
        mp3 = encode(tone_wav(tmp / "tone.wav", seconds=1.0), "mp3", tmp)
        png = tmp / "photo.png"
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1",
                        str(png)], check=True)
        s = session()
        token = CSRF_RE.search(s.get(f"{web.staff_url}/clerk/login").text).group(1)
        r = s.post(f"{web.staff_url}/clerk/login", allow_redirects=False,
                   data={"csrf_token": token, "username": "clerk1", "password": "correct horse"})
        assert r.status_code == 303, r.text[:300]
        token = CSRF_RE.search(s.get(f"{web.staff_url}/clerk/notices/new").text).group(1)
        with open(mp3, "rb") as audio, open(png, "rb") as image:
            r = s.post(f"{web.staff_url}/clerk/notices/new", allow_redirects=False,
                       data={"csrf_token": token, "title_km": "ប្រជុំភូមិ", "title_en": "Village meeting"},
                       files={"audio": ("notice.mp3", audio, "audio/mpeg"), "image": ("photo.png", image, "image/png")})
        assert r.status_code == 303, refusal(r)
        notice = rows(web, "select audio_id, image_id from notices")[0]
        web.audio = rows(web, "select * from media where id = ?", (notice["audio_id"],))[0]
        web.image = rows(web, "select * from media where id = ?", (notice["image_id"],))[0]
        # Files no request may get: an HTML file beside the media, and a web-named file holding HTML.
        fake = str(uuid.uuid4())
        (web.settings.media_dir / f"{fake}.web.html").write_text("<script>alert(1)</script>")
        (web.settings.media_dir / f"{fake}.web.mp3").write_text("<html><script>alert(1)</script></html>")
        web.fake = fake
        web.tmp_files = tmp
        yield web


def test_nginx_t_accepts_the_rendered_config(tmp_path, hub_settings):
    need("nginx")
    web = WebStack(tmp_path, villager_listen="127.0.0.1:18081", staff_listen="127.0.0.1:18082")
    try:
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
    finally:
        web.close()


def test_a_broken_site_is_refused_by_nginx_t(tmp_path):
    need("nginx")
    web = WebStack(tmp_path)
    try:
        main = web.write_nginx()
        site = web.prefix / "site.conf"
        site.write_text(site.read_text().replace("proxy_pass http://hub_web;", "proxy_pass http://hub_web"))
        r = subprocess.run(["nginx", "-t", "-c", str(main), "-p", str(web.prefix)], capture_output=True, text=True)
        assert r.returncode != 0
        assert "site.conf" in r.stderr
    finally:
        web.close()


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


def test_the_stack_runs_as_on_a_pi(stack):
    """nginx's workers are www-data and the hub an unprivileged user, so permission bugs show."""
    if not stack.deployed:
        pytest.skip("needs root to run nginx's workers and the hub as other users")
    import pwd

    def users(pid: int) -> set[str]:
        kids = [int(p) for p in (Path("/proc") / str(pid) / "task" / str(pid) / "children").read_text().split()]
        return {pwd.getpwuid((Path("/proc") / str(k)).stat().st_uid).pw_name for k in kids}

    assert users(stack.nginx.pid) == {"www-data"}
    assert {pwd.getpwuid((Path("/proc") / str(p)).stat().st_uid).pw_name for p in stack.pids()} == {"nobody"}
    media = stack.settings.media_dir
    assert (media.stat().st_uid, media.stat().st_gid) == stack.hub_ids
    assert mode(stack.settings.data_dir) == mode(media) == "0o750"
    for name in (stack.audio["web_name"], stack.audio["master_name"], stack.image["web_name"]):
        st = (media / name).stat()
        assert ((st.st_uid, st.st_gid), mode(media / name)) == (stack.hub_ids, "0o640"), name


@pytest.mark.parametrize("fmt", ["m4a", "3gp"])
def test_voice_feedback_through_nginx_plays_back_through_nginx(stack, fmt):
    """A villager's recording goes through nginx to the hub (its own user, real ffmpeg);
    its web copy then comes back through nginx."""
    voice = encode(tone_wav(stack.tmp_files / f"voice-{fmt}.wav", seconds=2.0), fmt, stack.tmp_files)
    s = session()
    token = CSRF_RE.search(s.get(f"{stack.villager_url}/feedback").text).group(1)
    with open(voice, "rb") as f:
        r = s.post(f"{stack.villager_url}/feedback", allow_redirects=False,
                   data={"csrf_token": token, "category": "water", "body": ""},
                   files={"voice": (voice.name, f, "application/octet-stream")})
    assert r.status_code == 303, refusal(r)
    code = r.headers["Location"].split("/receipt/", 1)[1].split("?")[0]
    assert s.get(stack.villager_url + r.headers["Location"]).status_code == 200
    row = rows(stack, "select m.web_name, m.duration_ms from feedback f join media m on m.id = f.audio_id"
                      " where f.receipt = ?", (code,))[0]
    assert 1800 < row["duration_ms"] < 2300
    played = s.get(f"{stack.villager_url}/media/{row['web_name']}")
    assert played.status_code == 200
    assert played.headers["Content-Type"] == "audio/mpeg"
    assert played.content == (stack.settings.media_dir / row["web_name"]).read_bytes()


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
        code = r.headers["Location"].split("/receipt/", 1)[1].split("?")[0]
        row = ctx.db.conn.execute("select body from feedback where receipt = ?", (code,)).fetchone()
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
