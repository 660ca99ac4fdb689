"""A recording over the limit, sent from Chromium with JavaScript off through nginx (workers as
www-data): what the villager typed survives both refusals.

* Over the app's limit, under nginx's (twice the app's, and a megabyte): the app gives the form
  back with the text in it.
* Over nginx's limit: nginx's Khmer 413 page says to press Back, and Back shows the form with
  the text still in it.
Either way, sending again without the recording stores the typed message.
"""

from __future__ import annotations

import re
import shutil
import sqlite3

import pytest

from tests.conftest import need
from tests.net.test_pagecache_nginx import ARGS, CHROMIUM
from tests.net.webstack import WebStack

pytestmark = pytest.mark.slow

TYPED = "ផ្លូវទៅសាលារៀនខូចខ្លាំង សូមជួសជុល"


def fill(page, body: str) -> None:
    page.click("label[for='cat-roads']")
    page.fill("#body", body)


def stored(stack, body: str) -> int:
    conn = sqlite3.connect(f"file:{stack.settings.db_path}?mode=ro", uri=True)
    try:
        return conn.execute("select count(*) from feedback where replace(body, char(8203), '') = ?",
                            (body,)).fetchone()[0]
    finally:
        conn.close()


def test_without_javascript_an_oversize_recording_does_not_lose_the_typed_text(tmp_path):
    need("nginx")
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed; `make test` installs it")
    from playwright.sync_api import sync_playwright

    app_refuses = tmp_path / "long.m4a"
    app_refuses.write_bytes(b"\0" * (2 * 1024 * 1024))  # over the app's 1 MB, under nginx's 3 MB
    nginx_refuses = tmp_path / "longer.m4a"
    nginx_refuses.write_bytes(b"\0" * (5 * 1024 * 1024))
    with WebStack(tmp_path / "stack", settings={"max_upload_mb": 1, "max_audio_seconds": 120}) as stack, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(java_script_enabled=False, viewport={"width": 360, "height": 740},
                                       locale="km-KH").new_page()
            # 1. The app's refusal: the form comes back, filled in.
            page.goto(f"{stack.villager_url}/feedback")
            fill(page, TYPED + " ១")
            page.set_input_files("#voice", str(app_refuses))
            with page.expect_response(re.compile(r"/feedback$")) as answer:
                page.click("button[type=submit]")
            assert answer.value.status == 413
            page.wait_for_load_state()
            assert "រហូតដល់ ២ នាទី" in page.inner_text("p.error")
            assert page.input_value("#body") == TYPED + " ១"
            assert page.is_checked("#cat-roads")
            page.click("button[type=submit]")  # the file field is empty now: the text alone is sent
            page.wait_for_url(re.compile(r"/receipt/\d+"))
            assert stored(stack, TYPED + " ១") == 1

            # 2. nginx's refusal: its page says to press Back, and Back has the text.
            page.goto(f"{stack.villager_url}/feedback")
            fill(page, TYPED + " ២")
            page.set_input_files("#voice", str(nginx_refuses))
            with page.expect_response(re.compile(r"/feedback$")) as answer:
                page.click("button[type=submit]")
            assert answer.value.status == 413
            page.wait_for_load_state()
            text = page.inner_text("main")
            assert "ប៊ូតុងថយក្រោយ" in text and "Back button" in text and "nginx" not in page.content()
            page.go_back()
            page.wait_for_url(re.compile(r"/feedback$"))
            assert page.input_value("#body") == TYPED + " ២"
            assert page.is_checked("#cat-roads")
            page.set_input_files("#voice", [])
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r"/receipt/\d+"))
            assert stored(stack, TYPED + " ២") == 1
        finally:
            browser.close()
