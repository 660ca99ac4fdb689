"""The voice-first portal in a real Chromium on a phone screen, with JavaScript off and on.

Screenshots of each page go to tests/artifacts/ (and /work/logs/shots/ where that folder exists).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hub import feedback, notices
from tests.phone_audio import encode, tone_wav
from tests.web.test_browser import launch_persistent, live, playwright_instance  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

SHOTS = Path("/work/logs/shots")
KM = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")


def shot(page, artifacts, name: str) -> None:
    path = artifacts / f"portal-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if SHOTS.is_dir():
        shutil.copy(path, SHOTS / path.name)


def wait_js(page, expression: str, timeout: float = 15) -> None:
    """Poll *expression* until true (wait_for_function evaluates strings, which the hub's CSP forbids)."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => !!({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {expression}")
        page.wait_for_timeout(100)


def phone(playwright_instance, tmp_path, js: bool):  # noqa: F811
    return launch_persistent(playwright_instance, tmp_path / ("js" if js else "nojs"), java_script_enabled=js)


@pytest.fixture(scope="module")
def voice_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voice")
    return encode(tone_wav(tmp / "v.wav", seconds=2.0), "m4a", tmp)


def test_without_javascript_a_villager_records_sends_hears_the_code_and_finds_it_again(
        live, playwright_instance, tmp_path, artifacts, voice_file):  # noqa: F811
    browser = phone(playwright_instance, tmp_path, js=False)
    try:
        page = browser.new_page()
        page.goto(live.url + "/")
        shot(page, artifacts, "home")
        # The big microphone is on the home page and first on the feedback page.
        page.get_by_role("link", name=re.compile("ថតសំឡេង")).first.click()
        page.wait_for_url(re.compile(r"/feedback"))
        mic = page.locator("label.mic").bounding_box()
        assert mic["y"] < 250 and mic["height"] >= 100 and mic["width"] >= 300
        page.set_input_files("#voice", str(voice_file))
        page.locator("label[for=cat-roads]").click()
        shot(page, artifacts, "feedback")
        page.get_by_role("button", name=re.compile("បញ្ជូន")).click()
        page.wait_for_url(re.compile(r"/receipt/\d+"))
        code = re.search(r"/receipt/(\d+)", page.url).group(1)
        assert page.locator("h1").count() == 1
        main = page.inner_text("main")
        assert "សារជាសំឡេងរបស់អ្នកបានមកដល់ហើយ៖ វែង ០:០២" in main
        assert re.search(r"ថ្ងៃនេះ ម៉ោង [០-៩]+:[០-៩]{2} (ព្រឹក|រសៀល|ល្ងាច|យប់)", main)
        # No JavaScript: the spoken number is one joined file the phone's player plays.
        players = page.locator(".say audio")
        assert players.first.is_visible() and page.locator(".say button").first.is_hidden()
        src = players.first.get_attribute("src")
        r = page.request.get(live.url + src)
        assert r.status == 200 and r.headers["content-type"] == "audio/mpeg" and len(r.body()) > 2000
        assert page.evaluate("document.querySelector('.say audio').canPlayType('audio/mpeg')") != ""
        own = page.locator("main audio[src^='/media/']")
        assert own.count() == 1
        shot(page, artifacts, "receipt")
        # Later: "my messages on this phone" lists it with its status.
        item = feedback.by_receipt(live.ctx.db, code)
        feedback.set_status(live.ctx, item["id"], "answered", "យើងនឹងជួសជុលផ្លូវនៅភូមិរបស់អ្នក។ សូមអរគុណ។")
        page.goto(live.url + "/")
        page.get_by_role("link", name=re.compile("សាររបស់ខ្ញុំ")).first.click()
        page.wait_for_url(re.compile(r"/mine"))
        card = page.locator(f"a.card[href='/receipt/{code}']")
        assert card.count() == 1 and "បានឆ្លើយ" in card.inner_text()
        shot(page, artifacts, "mine")
        card.click()
        page.wait_for_url(re.compile(rf"/receipt/{code}$"))
        reply = page.inner_text(".body")
        assert "យើងនឹងជួសជុលផ្លូវ" in reply.replace("\u200b", "")
        assert "\u200b" in reply and "\u200b។" not in reply  # break points, none before ។
        shot(page, artifacts, "status")
    finally:
        browser.close()


def test_with_javascript_the_recording_plays_back_before_sending_and_the_code_is_read_digit_by_digit(
        live, playwright_instance, tmp_path, artifacts, voice_file):  # noqa: F811
    browser = phone(playwright_instance, tmp_path, js=True)
    try:
        page = browser.new_page()
        failed, console_errors = [], []
        page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.goto(live.url + "/feedback")
        assert page.locator("#voice-check").is_hidden()
        page.set_input_files("#voice", str(voice_file))
        wait_js(page, "document.getElementById('voice-preview').readyState >= 1", 30)
        assert page.locator("#voice-check").is_visible()
        seconds = page.evaluate("document.getElementById('voice-preview').duration")
        assert 1.5 < seconds < 2.5
        page.evaluate("document.getElementById('voice-preview').play()")
        wait_js(page, "document.getElementById('voice-preview').currentTime > 0.2", 30)
        shot(page, artifacts, "feedback-preview")
        page.locator("label[for=cat-water]").click()
        page.get_by_role("button", name=re.compile("បញ្ជូន")).click()
        page.wait_for_url(re.compile(r"/receipt/\d+"))
        code = re.search(r"/receipt/(\d+)", page.url).group(1)
        heard = []
        page.expose_function("heard", lambda src: heard.append(src))
        page.evaluate("""() => { const box = document.querySelector('.say');
            new MutationObserver(() => { if (box.dataset.playing) window.heard(box.dataset.playing); })
              .observe(box, {attributes: true, attributeFilter: ['data-playing']}); }""")
        box = page.locator(".say").first
        assert box.locator("audio").is_hidden()
        lit = []
        page.expose_function("sawDigit", lambda i: lit.append(i))
        page.evaluate("""() => new MutationObserver(() => {
            const d = [...document.querySelectorAll('.digit')].findIndex(e => e.classList.contains('now'));
            if (d >= 0) window.sawDigit(d);
        }).observe(document.querySelector('.code'), {subtree: true, attributes: true})""")
        box.locator("button").click()
        wait_js(page, "document.querySelector('.say').dataset.done === '1'", 30)
        assert heard == ["/voice/thank_you_number.mp3", *[f"/voice/digit_{d}.mp3" for d in code]]
        assert sorted(set(lit)) == list(range(len(code)))
        shot(page, artifacts, "receipt-js")
        page.goto(live.url + "/mine")
        assert page.locator(f"a.card[href='/receipt/{code}']").count() == 1
        # The favicon, the manifest and its icons, every clip: nothing the pages asked for failed.
        page.goto(live.url + "/")
        manifest = page.request.get(live.url + "/manifest.webmanifest").json()
        for i in manifest["icons"]:
            assert page.request.get(live.url + i["src"]).status == 200
        assert failed == [] and console_errors == [], (failed, console_errors)
    finally:
        browser.close()


def test_a_recording_over_the_limit_is_caught_before_it_is_sent_and_kept(
        live, playwright_instance, tmp_path):  # noqa: F811
    big = tmp_path / "big.m4a"
    big.write_bytes(b"\0" * (21 * 1024 * 1024))  # over the 20 MB default
    browser = phone(playwright_instance, tmp_path, js=True)
    try:
        page = browser.new_page()
        page.goto(live.url + "/feedback")
        page.fill("#body", "សារវែង")
        page.set_input_files("#voice", str(big))
        page.locator("label[for=cat-water]").click()
        page.get_by_role("button", name=re.compile("បញ្ជូន")).click()
        error = page.locator("#voice-error")
        error.wait_for(state="visible")
        assert "រហូតដល់ ៥ នាទី" in error.inner_text()
        assert page.url.endswith("/feedback") and page.input_value("#body") == "សារវែង"
    finally:
        browser.close()


def test_notices_play_on_the_list_and_on_the_page_with_and_without_javascript(
        live, playwright_instance, tmp_path, artifacts):  # noqa: F811
    import subprocess

    row = live.ctx.media.prepare_audio(tone_wav(tmp_path / "n.wav", seconds=1.0))
    png = tmp_path / "p.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=green:s=800x600", "-frames:v", "1",
                    str(png)], check=True)
    image = live.ctx.media.prepare_image(png)
    nid = notices.create(live.ctx, {"title_km": "ការប្រកាសជាសំឡេង", "body_km": "ស្តាប់នៅទីនេះ",
                                    "audio_id": row["id"], "image_id": image["id"]}, media_rows=[row, image])
    for js in (False, True):
        browser = phone(playwright_instance, tmp_path, js=js)
        try:
            page = browser.new_page()
            page.goto(live.url + "/")
            card = page.locator(".card", has_text="ការប្រកាសជាសំឡេង")
            player = card.locator("audio")
            assert player.count() == 1 and player.is_visible()
            if js:
                player.evaluate("a => a.play()")
            else:
                shot(page, artifacts, "home-notices")
            page.goto(live.url + f"/notice/{nid}")
            img = page.locator("img.notice")
            assert img.get_attribute("width") == "800" and img.get_attribute("height") == "600"
            if js:
                button = page.get_by_role("button", name=re.compile("ស្តាប់"))
                button.click()
                wait_js(page, "document.getElementById('notice-audio').currentTime > 0.1", 30)
                assert page.url.endswith(f"/notice/{nid}")  # it played here, not on a bare media page
                assert button.get_attribute("aria-pressed") == "true"
            else:
                assert page.locator("#notice-audio").is_visible()
                assert page.locator("a[href^='/media/']").count() == 0
                shot(page, artifacts, "notice")
                # "Notices" and "Listen" are drawn differently.
                notice_icon = page.locator("nav.bottom a[href='/'] svg path").get_attribute("d")
                assert notice_icon != page.locator("label[for=notice-audio] svg path").get_attribute("d")
        finally:
            browser.close()


def test_welcome_cards_go_to_their_sections_and_the_welcome_can_be_heard(
        live, playwright_instance, tmp_path, artifacts):  # noqa: F811
    browser = phone(playwright_instance, tmp_path, js=False)
    try:
        page = browser.new_page()
        page.goto(live.url + "/welcome")
        main = page.inner_text("main")
        assert live.url.replace("http://", "") in main.replace("http://", "")
        src = page.locator(".say audio").first.get_attribute("src")
        assert page.request.get(live.url + src).status == 200
        shot(page, artifacts, "welcome")
        page.locator("button.card", has_text="ថតសំឡេង").click()
        page.wait_for_url(re.compile(r"/feedback#voice$"))
        # The phone is let in: its connectivity check now gets what the OS expects.
        assert page.request.get(live.url + "/generate_204", max_redirects=0).status == 204
    finally:
        browser.close()
    browser = phone(playwright_instance, tmp_path, js=True)
    try:
        page = browser.new_page()
        page.goto(live.url + "/welcome")
        heard = []
        page.on("requestfinished", lambda r: heard.append(r.url) if "/voice/" in r.url else None)
        page.locator(".say button").first.click()
        wait_js(page, "document.querySelector('.say').dataset.done === '1'", 30)
        assert [u.split(live.url)[-1] for u in heard] == ["/voice/portal_welcome.mp3"]
    finally:
        browser.close()


def test_error_pages_are_khmer_and_phone_sized(live, playwright_instance, tmp_path, artifacts):  # noqa: F811
    browser = phone(playwright_instance, tmp_path, js=False)
    try:
        page = browser.new_page()
        r = page.goto(live.url + "/notice/nothing-here")
        assert r.status == 404 and "មិនមានទំព័រនេះទេ" in page.inner_text("h1")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"]
        shot(page, artifacts, "error-404")
        page.goto((live.data_dir / "errors" / "502.html").as_uri())
        assert "ហាប់កំពុងចាប់ផ្តើម" in page.inner_text("main") and "The hub is starting" in page.inner_text("main")
    finally:
        browser.close()
