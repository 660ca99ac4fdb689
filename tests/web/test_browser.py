"""A real headless Chromium on a phone-sized screen, with JavaScript off for villagers."""

from __future__ import annotations

import re
import shutil
import textwrap

import pytest

from hub import feedback
from tests.livehub import hub_with_clerk
from tests.phone_audio import encode, speech_wav

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with hub_with_clerk(tmp_path_factory.mktemp("live") / "data") as hub:
        yield hub


@pytest.fixture(scope="module")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed; `make test` installs it")
    with sync_playwright() as p:
        yield p


def launch(p, tmp_path, env=None):
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS,
                             env=env)


def launch_persistent(p, tmp_path, **kw):
    profile = {k: v for k, v in p.devices["Pixel 5"].items() if k != "default_browser_type"}
    return p.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, **profile, **kw)


def test_villager_reads_sends_voice_gets_receipt_and_later_the_reply(live, playwright_instance, tmp_path,
                                                                      artifacts):
    from hub import notices

    notices.create(live.ctx, {"title_km": "ប្រជុំឃុំ", "title_en": "Meeting",
                              "body_km": "សូមអញ្ជើញចូលរួមប្រជុំ", "pinned": True})
    voice = encode(speech_wav(tmp_path / "v.wav", "the well is broken"), "m4a", tmp_path)
    browser = launch_persistent(playwright_instance, tmp_path, java_script_enabled=False)
    try:
        page = browser.new_page()
        page.goto(live.url + "/")
        page.screenshot(path=str(artifacts / "home-km.png"), full_page=True)
        page.get_by_text("ប្រជុំឃុំ").first.click()
        page.wait_for_url(re.compile(r"/notice/"))
        assert "សូមអញ្ជើញ" in page.inner_text("article").replace("\u200b", "")
        page.screenshot(path=str(artifacts / "notice-km.png"), full_page=True)
        page.goto(live.url + "/feedback")
        page.locator("label[for=cat-water]").click()
        page.fill("#body", "អណ្តូងខូច")
        page.set_input_files("#voice", str(voice))
        page.locator("label.choice", has_text="ស្រុក").first.click()
        page.screenshot(path=str(artifacts / "feedback-km.png"), full_page=True)
        page.get_by_role("button", name=re.compile("បញ្ជូន")).click()
        page.wait_for_url(re.compile(r"/receipt/\d{8}"))
        code = re.search(r"/receipt/(\d{8})", page.url).group(1)
        assert page.locator(".code").first.inner_text().strip() == \
            f"{code[:4]} {code[4:]}".translate(str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩"))
        page.screenshot(path=str(artifacts / "receipt-km.png"), full_page=True)
        item = feedback.by_receipt(live.ctx.db, code)
        assert item["audio_id"] and item["consent_share"] == 1 and item["category"] == "water"
        # The clerk answers in the console; the villager looks the code up later.
        feedback.set_status(live.ctx, item["id"], "answered", "ជាងនឹងមកជួសជុលថ្ងៃស្អែក")
        page.goto(live.url + "/")
        page.get_by_role("link", name=re.compile("បង្កាន់ដៃ")).first.click()
        page.fill("#code", code)
        page.get_by_role("button").last.click()
        assert "ជាងនឹងមកជួសជុល" in page.inner_text("main").replace("\u200b", "")
        page.screenshot(path=str(artifacts / "receipt-answered-km.png"), full_page=True)
    finally:
        browser.close()


def test_clerk_logs_in_and_publishes_a_notice(live, playwright_instance, tmp_path, artifacts):
    browser = launch_persistent(playwright_instance, tmp_path)
    try:
        page = browser.new_page()
        page.goto(live.url + "/clerk/")
        assert "/clerk/login" in page.url
        page.fill("#username", "clerk1")
        page.fill("#password", "correct horse")
        page.get_by_role("button", name=re.compile("ចូល")).click()
        page.wait_for_url(live.url + "/clerk/")
        page.screenshot(path=str(artifacts / "clerk-dashboard.png"), full_page=True)
        page.goto(live.url + "/clerk/notices/new")
        page.fill("#title_km", "ការចែកពូជស្រូវ")
        page.fill("#title_en", "Rice seed distribution")
        page.fill("#body_km", "នៅថ្ងៃសុក្រ នៅសាលាឃុំ")
        page.screenshot(path=str(artifacts / "clerk-notice-form.png"), full_page=True)
        page.get_by_role("button", name=re.compile("ផ្សព្វផ្សាយ")).click()
        page.wait_for_url(live.url + "/clerk/notices/")
        page.goto(live.url + "/")
        assert "ការចែកពូជស្រូវ" in page.inner_text("main").replace("\u200b", "")
    finally:
        browser.close()


def test_khmer_is_drawn_with_the_bundled_font_when_the_phone_has_none(live, playwright_instance, tmp_path,
                                                                      artifacts):
    """Chromium with a fontconfig that knows only DejaVu: no Khmer font on the 'phone'."""
    conf = tmp_path / "fonts.conf"
    conf.write_text(textwrap.dedent(f"""\
        <?xml version="1.0"?>
        <!DOCTYPE fontconfig SYSTEM "fonts.dtd">
        <fontconfig>
          <dir>/usr/share/fonts/truetype/dejavu</dir>
          <cachedir>{tmp_path}/fc-cache</cachedir>
        </fontconfig>
        """))
    import os

    env = {**os.environ, "FONTCONFIG_FILE": str(conf)}
    browser = launch(playwright_instance, tmp_path, env=env)
    try:
        phone = {k: v for k, v in playwright_instance.devices["Pixel 5"].items() if k != "default_browser_type"}
        page = browser.new_page(**phone)
        page.goto(live.url + "/feedback")
        page.evaluate("document.fonts.ready")
        for _ in range(50):  # the font may still be on its way (font-display: swap)
            if page.evaluate("document.fonts.check('16px \"Hub Khmer\"', 'ក')"):
                break
            page.wait_for_timeout(100)
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        doc = cdp.send("DOM.getDocument")
        node = cdp.send("DOM.querySelector", {"nodeId": doc["root"]["nodeId"], "selector": "label[for=cat-water] span"})
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
        page.screenshot(path=str(artifacts / "feedback-no-system-khmer-font.png"), full_page=True)
        # All Khmer glyphs came from the web font the hub served.
        assert fonts, fonts
        khmer = [f for f in fonts if "Khmer" in f["familyName"]]
        assert khmer and all(f["isCustomFont"] for f in khmer), fonts
        assert sum(f["glyphCount"] for f in khmer) >= sum(f["glyphCount"] for f in fonts) - 2
    finally:
        browser.close()


def test_english_and_console_screenshots(live, playwright_instance, tmp_path, artifacts):
    browser = launch_persistent(playwright_instance, tmp_path, java_script_enabled=False)
    try:
        page = browser.new_page()
        page.goto(live.url + "/lang/en?next=/")
        assert page.locator("html").get_attribute("lang") == "en"
        page.screenshot(path=str(artifacts / "home-en.png"), full_page=True)
        page.goto(live.url + "/welcome")
        page.screenshot(path=str(artifacts / "welcome-en.png"), full_page=True)
    finally:
        browser.close()
