"""The console in a real Chromium: the poster's QR codes read back, a spoken answer recorded in the browser,
and whole inbox rows that open their item."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from hub import feedback
from tests.livehub import hub_with_clerk
from tests.web.test_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.browser
#: Chromium's stand-in microphone (a beep) and no permission prompt: MediaRecorder records for real.
FAKE_MIC = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    base = tmp_path_factory.mktemp("console")
    with hub_with_clerk(base / "data", HUB_HUB_NAME="ឃុំស្វាយរៀង", HUB_SSID="Khum-Svay-Rieng") as hub:
        yield hub


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed; `make test` installs it")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *FAKE_MIC])
        yield b
        b.close()


def clerk_page(browser, live, **kw):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, **kw)
    page = context.new_page()
    page.goto(live.url + "/clerk/login")
    page.fill("#username", "clerk1")
    page.fill("#password", "correct horse")
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(live.url + "/clerk/")
    return context, page


def decode_qr(png) -> list[str]:
    zbarimg = shutil.which("zbarimg")
    if not zbarimg:
        pytest.fail("zbarimg is not installed; `make test` installs zbar-tools")
    r = subprocess.run([zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                       capture_output=True, text=True)
    return sorted(line for line in r.stdout.splitlines() if line)


def test_the_poster_prints_on_one_a4_page_and_its_codes_read_back(live, browser, artifacts):
    context, page = clerk_page(browser, live, java_script_enabled=False)
    try:
        page.goto(live.url + "/clerk/poster/")
        assert page.inner_text("#poster-name") == "ឃុំស្វាយរៀង"
        assert page.inner_text("#poster-address") == live.url + "/"
        size = page.evaluate("getComputedStyle(document.getElementById('poster-address')).fontSize")
        assert float(size.rstrip("px")) >= 40, "the address is in large type"
        for word in ("អាន", "ស្តាប់", "និយាយ", "បង្កាន់ដៃ"):  # read, listen, speak, follow up (receipt)
            assert word in page.inner_text(".picts").replace("\u200b", ""), word
        page.emulate_media(media="print")
        shot = artifacts / "console-poster-print.png"
        page.screenshot(path=str(shot), full_page=True)
        assert page.locator("nav.menu").is_hidden() and page.locator(".noprint").is_hidden()
        assert decode_qr(shot) == sorted(["WIFI:T:nopass;S:Khum-Svay-Rieng;;", live.url + "/"])
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        (artifacts / "console-poster.pdf").write_bytes(pdf)
        assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1, "one A4 sheet"
        box = [float(v) for v in re.search(rb"/MediaBox\s*\[([^\]]+)\]", pdf).group(1).split()]
        assert [round(v) for v in box] == [0, 0, 595, 842], "A4 is 595 x 842 points"
    finally:
        context.close()


def test_a_clerk_records_a_spoken_answer_in_the_browser_and_the_villager_hears_it(live, browser, artifacts):
    item = feedback.submit(live.ctx, {"category": "health", "body": "the clinic is closed"})
    context, page = clerk_page(browser, live)
    context.grant_permissions(["microphone"], origin=live.url)
    try:
        page.goto(f"{live.url}/clerk/feedback/{item['id']}")
        assert page.locator("#recorder").is_visible(), "the recorder shows when the browser can record"
        page.click("#rec-start")
        page.wait_for_timeout(2500)
        page.click("#rec-stop")
        page.wait_for_function("document.getElementById('reply_audio').files.length === 1")
        assert page.locator("#rec-preview").is_visible()
        page.screenshot(path=str(artifacts / "console-spoken-answer.png"), full_page=True)
        page.get_by_role("button", name=re.compile("រក្សាទុក")).click()
        page.wait_for_url(re.compile(r"/clerk/feedback/"))
        assert "ចម្លើយ" in page.inner_text(".flash")
        row = feedback.get(live.ctx.db, item["id"])
        assert row["reply_audio_name"] and 1500 < row["reply_audio_ms"] < 4000, row["reply_audio_ms"]
        villager = browser.new_context(java_script_enabled=False)
        receipt = villager.new_page()
        receipt.goto(f"{live.url}/receipt/{item['receipt']}")
        src = receipt.locator("#reply-audio").get_attribute("src")
        assert src == f"/media/{row['reply_audio_name']}"
        response = receipt.request.get(live.url + src)
        assert response.status == 200 and response.headers["content-type"] == "audio/mpeg"
        receipt.screenshot(path=str(artifacts / "receipt-spoken-answer.png"), full_page=True)
        villager.close()
    finally:
        context.close()


def test_a_click_anywhere_on_an_inbox_row_opens_the_item_without_javascript(live, browser, artifacts):
    item = feedback.submit(live.ctx, {"category": "roads", "body": "the bridge near the school is broken"})
    context, page = clerk_page(browser, live, java_script_enabled=False)
    try:
        page.goto(live.url + "/clerk/feedback/")
        page.screenshot(path=str(artifacts / "console-inbox-rows.png"), full_page=True)
        cell = page.locator("td", has_text="the bridge near the school").first
        box = cell.bounding_box()
        page.mouse.click(box["x"] + box["width"] - 5, box["y"] + box["height"] / 2)  # not on the link's text
        page.wait_for_url(f"{live.url}/clerk/feedback/{item['id']}")
        assert feedback.get(live.ctx.db, item["id"])["seen_at"]
    finally:
        context.close()
