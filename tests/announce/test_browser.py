"""A clerk schedules an announcement in a real headless Chromium, in Khmer, with JavaScript off."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.announce import store
from tests.announce.test_console import month_with_mondays_and_thursdays
from tests.livehub import hub_with_clerk
from tests.phone_audio import encode, tone_wav

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live(tmp_path):
    with hub_with_clerk(tmp_path / "data") as hub:
        yield hub


def test_clerk_schedules_monday_and_thursday_twice_and_sees_the_week(live, tmp_path, artifacts):
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed; `make test` installs it")
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=1.0), "3gp", tmp_path)
    today = live.ctx.clock.now().astimezone(ZoneInfo("Asia/Phnom_Penh")).date()
    start, end = month_with_mondays_and_thursdays(today)
    with sync_playwright() as p:
        profile = {k: v for k, v in p.devices["Pixel 5"].items() if k != "default_browser_type"}
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, **profile,
            java_script_enabled=False)
        try:
            page = browser.new_page()
            page.goto(live.url + "/clerk/announcements/new")
            page.fill("#username", "clerk1")
            page.fill("#password", "correct horse")
            page.get_by_role("button", name=re.compile("ចូល")).click()
            page.wait_for_url(live.url + "/clerk/announcements/new")
            page.fill("#title", "ប្រជុំឃុំ")
            page.set_input_files("#audio", str(voice))
            page.check("input[name=when][value=recurring]")
            page.check("input[name=freq][value=weekdays]")
            page.check("input[name=days][value='0']")
            page.check("input[name=days][value='3']")
            page.fill("input[name=date]", start.isoformat())
            page.fill("input[name=time]", "07:00")
            page.fill("#end_date", end.isoformat())
            page.select_option("#repeats", "2")
            page.screenshot(path=str(artifacts / "announcement-form-km.png"), full_page=True)
            page.get_by_role("button", name=re.compile("រក្សាទុក")).click()
            page.wait_for_url(re.compile(r"/clerk/announcements/week\?start="))
            page.screenshot(path=str(artifacts / "announcement-week-km.png"), full_page=True)
            rows = page.locator("table.week tr")
            assert rows.count() == 7
            shown = 0
            for i in range(7):
                text = rows.nth(i).inner_text()
                if "០៧:០០ · ប្រជុំឃុំ" in text:
                    shown += 1
                    assert re.search("ច័ន្ទ|ព្រហស្បតិ៍", text), text
            assert shown >= 1
            page.goto(live.url + "/clerk/announcements/")
            page.screenshot(path=str(artifacts / "announcements-km.png"), full_page=True)
            assert "រៀងរាល់ថ្ងៃច័ន្ទ, ព្រហស្បតិ៍ ម៉ោង ០៧:០០" in page.inner_text("main")
        finally:
            browser.close()
    (a,) = store.listing(live.ctx.db)
    assert "BYDAY=MO,TH" in a["rrule"] and a["repeats"] == 2
    first = store.parse_time(a["next_at"]).astimezone(ZoneInfo("Asia/Phnom_Penh"))
    assert first.weekday() in (0, 3) and first.hour == 7
    assert start <= first.date() <= end < first.date() + timedelta(days=40)
