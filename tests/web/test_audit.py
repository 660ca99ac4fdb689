"""axe-core on every page of the portal and the console, and Lighthouse on the main villager pages.

Both come from npm, pinned in tests/browser/package-lock.json (`make test` runs `npm ci` there), and run in
Debian's Chromium. Lighthouse runs in a network namespace of its own with only loopback in it, so it can
fetch nothing from outside the hub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from hub import accounts, feedback, notices, reply_templates
from hub.announce import store as announcements
from hub.core.context import open_context
from hub.core.settings import load
from hub.migrations import MIGRATIONS
from hub.sync.engine import run_cycle
from hub.voice import transcripts
from tests.conftest import ROOT
from tests.livehub import LiveHub
from tests.phone_audio import encode, tone_wav
from tests.web.test_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOOLS = ROOT / "tests" / "browser"
AXE = TOOLS / "node_modules" / "axe-core" / "axe.min.js"
#: GET endpoints that are not pages: files, feeds, redirects and machine answers.
NOT_PAGES = {"static", "media.media_file", "captive.captive_api", "portal.set_language",
             "clerk_feedback.export", "clerk_announcements.log_csv", "clerk_voice.default_prompt",
             "voice.say", "voice.prompt_clip", "appinfo.favicon", "appinfo.manifest"}
#: Lighthouse's floor on each of its categories, out of 1.
LIGHTHOUSE_FLOOR = 0.95


def need_tools() -> None:
    if not AXE.exists():
        pytest.fail("axe-core is not installed; `make test` runs `npm ci` in tests/browser")
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed; `make test` installs it")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A live hub holding one of everything a page can show: notices, feedback with voice, replies, ..."""
    need_tools()
    base = tmp_path_factory.mktemp("audit")
    # Sync is set up, and its server is not there (nothing listens on port 9): the sync page's offline words.
    uplink = {"HUB_CENTRAL_URL": "http://127.0.0.1:9/", "HUB_CENTRAL_TOKEN": "t" * 40}
    hub = LiveHub(base / "data", **uplink).start()
    ctx = open_context(load(env={"HUB_DATA_DIR": str(hub.data_dir), **uplink}), MIGRATIONS)
    accounts.add_user(ctx.db, "clerk1", "correct horse", "clerk")
    m4a = encode(tone_wav(base / "t.wav", seconds=1.5), "m4a", base)
    png = base / "p.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=teal:s=1280x800", "-frames:v", "1",
                    str(png)], check=True)
    audio, image = ctx.media.prepare_audio(m4a, 300), ctx.media.prepare_image(png)
    notice = notices.create(ctx, {"title_km": "ប្រជុំឃុំ", "title_en": "Commune meeting",
                                  "body_km": "សូមអញ្ជើញចូលរួមប្រជុំ នៅថ្ងៃសុក្រ", "urgent": True,
                                  "audio_id": audio["id"], "image_id": image["id"]}, [audio, image])
    notices.create(ctx, {"title_km": "ចែកពូជស្រូវ", "title_en": "Rice seed", "pinned": True})
    voice = ctx.media.prepare_audio(m4a, 300)
    item = feedback.store(ctx, feedback.validate({"category": "water", "body": "អណ្តូងខូច", "phone": "012345678",
                                                  "village": "ភូមិថ្មី", "consent_share": "1"}), voice)
    feedback.set_status(ctx, item["id"], "answered", "ជាងនឹងមកជួសជុលថ្ងៃស្អែក", ctx.media.prepare_audio(m4a, 300))
    feedback.submit(ctx, {"category": "roads", "body": "ផ្លូវខូច"})
    transcripts.enqueue_new(ctx)
    (t,) = transcripts.listing(ctx.db)
    template = reply_templates.create(ctx.db, "អរគុណ", "អរគុណ យើងនឹងពិនិត្យ")
    sound = ctx.media.prepare_audio(m4a, 300)
    announcement = announcements.create(ctx, {
        "title": "ចាក់វ៉ាក់សាំង", "audio_id": sound["id"],
        "rrule": "DTSTART;TZID=Asia/Phnom_Penh:20300101T070000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH"}, [sound])
    run_cycle(ctx)  # offline: the sync page says since when, and how much waits
    hub.ids = {"notice": notice, "feedback": item["id"], "receipt": item["receipt"], "transcript": t["id"],
               "template": template, "announcement": announcement}
    hub.ctx = ctx
    yield hub
    hub.stop()
    ctx.close()


def villager_pages(ids: dict) -> dict[str, str]:
    return {
        "home": "/",
        "notice": f"/notice/{ids['notice']}",
        "feedback": "/feedback",
        "receipt-lookup": "/receipt",
        "receipt": f"/receipt/{ids['receipt']}?new=1",
        "receipt-unknown": "/receipt/000000",
        "welcome": "/welcome",
        "my-messages": "/mine",
        "not-found": "/notice/no-such-notice",
    }


def console_pages(ids: dict) -> dict[str, str]:
    return {
        "dashboard": "/clerk/",
        "notices": "/clerk/notices/",
        "notice-new": "/clerk/notices/new",
        "notice-edit": f"/clerk/notices/{ids['notice']}/edit",
        "notice-expire": f"/clerk/notices/{ids['notice']}/expire",
        "inbox": "/clerk/feedback/",
        "inbox-search": "/clerk/feedback/?q=012345678",
        "feedback-item": f"/clerk/feedback/{ids['feedback']}",
        "templates": "/clerk/feedback/templates",
        "template": f"/clerk/feedback/templates/{ids['template']}",
        "template-delete": f"/clerk/feedback/templates/{ids['template']}/delete",
        "sync": "/clerk/sync/",
        "announcements": "/clerk/announcements/",
        "announcement-new": "/clerk/announcements/new",
        "announcement-stop": f"/clerk/announcements/{ids['announcement']}/stop",
        "week": "/clerk/announcements/week",
        "proof-of-play": "/clerk/announcements/log",
        "recordings": "/clerk/voice/",
        "transcript": f"/clerk/voice/{ids['transcript']}",
        "prompts": "/clerk/voice/prompts",
        "poster": "/clerk/poster/",
    }


def test_the_audit_covers_every_page_the_app_serves(site):
    """A new page fails here until it is added to the lists above, so axe sees it too."""
    from hub.web import create_app

    app = create_app(site.ctx.settings, context=site.ctx)
    adapter = app.url_map.bind("hub.local")
    audited = set()
    for path in [*villager_pages(site.ids).values(), *console_pages(site.ids).values(), "/clerk/login"]:
        audited.add(adapter.match(path.split("?")[0], method="GET")[0])
    pages = {r.endpoint for r in app.url_map.iter_rules() if "GET" in r.methods} - NOT_PAGES
    assert pages - audited == set()


def run_axe(page) -> list[dict]:
    page.evaluate(AXE.read_text(encoding="utf-8"))  # through the DevTools protocol: the page's CSP stays on
    return page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    need_tools()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield p, browser
        browser.close()


#: Console pages whose screenshots are kept (tests/artifacts/console-NAME.png), to be looked at.
SCREENSHOTS = ("dashboard", "notices", "notice-expire", "inbox", "feedback-item", "templates", "sync",
               "announcements", "poster")


def test_axe_finds_nothing_on_any_page(site, chromium, artifacts):
    """Every page in Khmer (the default), on a phone; the villager pages in English too."""
    p, browser = chromium
    phone = {k: v for k, v in p.devices["Pixel 5"].items() if k != "default_browser_type"}
    found = {}
    context = browser.new_context(**phone)
    try:
        page = context.new_page()
        for lang in ("en", "km"):
            page.goto(f"{site.url}/lang/{lang}?next=/")
            for name, path in villager_pages(site.ids).items():
                page.goto(site.url + path)
                found[f"{name} ({lang})"] = run_axe(page)
        page.goto(site.url + "/clerk/login")
        found["login"] = run_axe(page)
        page.fill("#username", "clerk1")
        page.fill("#password", "correct horse")
        page.locator("form button[type=submit]").last.click()
        page.wait_for_url(site.url + "/clerk/")
        for name, path in console_pages(site.ids).items():
            page.goto(site.url + path)
            found[name] = run_axe(page)
            if name in SCREENSHOTS:
                page.screenshot(path=str(artifacts / f"console-{name}.png"), full_page=True)
    finally:
        context.close()
    bad = {name: v for name, v in found.items() if v}
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)
    assert len(found) == 2 * len(villager_pages(site.ids)) + len(console_pages(site.ids)) + 1


def test_lighthouse_scores_at_least_95_on_a_phone_with_no_network(site, tmp_path, artifacts):
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not installed; `make test` installs nodejs")
    out = tmp_path / "lighthouse"
    out.mkdir()
    paths = ["/", f"/notice/{site.ids['notice']}", "/feedback"]
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    script = ("ip link set lo up && ip -o link | grep -v ' lo:' | grep -q . && exit 3; "
              f'exec "{sys.executable}" -m tests.web.offline_lighthouse "$@"')
    r = subprocess.run([*unshare, "sh", "-c", script, "sh", str(site.data_dir), str(out), *paths],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={**os.environ, "CHROME_PATH": CHROMIUM, "LH_FLOOR": str(LIGHTHOUSE_FLOOR)})
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    for report in out.glob("lighthouse-*.json"):
        shutil.copy(report, artifacts / report.name)
    assert len(summary) == 3
    for url, result in summary.items():
        print(f"lighthouse {urlsplit(url).path}: {result['scores']} (runs: {result['tries']})")
    for url, result in summary.items():
        assert result["runtimeError"] is None, (url, result)
        origin = "{0.scheme}://{0.netloc}/".format(urlsplit(url))
        # data: addresses are the browser's own media-control icons.
        fetched = [u for u in result["requests"] if not u.startswith("data:")]
        assert fetched and all(u.startswith(origin) for u in fetched), fetched
        for category in ("performance", "accessibility", "best-practices"):
            assert result["scores"][category] >= LIGHTHOUSE_FLOOR, (url, result["scores"], result["failing"])

