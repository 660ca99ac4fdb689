"""Receipt codes and what a receipt page shows, and how often one phone may try: the portal with Flask's test client."""

from __future__ import annotations

import re

from hub import feedback, limits
from hub.core.db import transaction
from tests.conftest import csrf_from
from tests.phone_audio import encode, tone_wav

KM = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")



def send(client, **fields):
    data = {"csrf_token": csrf_from(client), "category": "water", "body": "the well is dry", **fields}
    return client.post("/feedback", data=data)


def code_of(r) -> str:
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    return re.search(r"/receipt/(\d+)", r.headers["Location"]).group(1)


def test_new_receipts_are_eight_digits_with_a_check_digit():
    codes = {feedback.new_receipt() for _ in range(2000)}
    assert all(len(c) == 8 and c.isdigit() and feedback.valid_receipt(c) for c in codes)
    assert len(codes) > 1990  # random, not a counter
    code = sorted(codes)[0]
    # Every single mistyped digit and every swap of two neighbours is caught by the check digit.
    for i in range(8):
        for d in "0123456789":
            typo = code[:i] + d + code[i + 1:]
            assert feedback.valid_receipt(typo) == (typo == code), typo
    for i in range(7):
        swapped = code[:i] + code[i + 1] + code[i] + code[i + 2:]
        assert swapped == code or not feedback.valid_receipt(swapped), swapped


def test_a_receipt_is_shown_4_4_and_typed_with_or_without_space_dash_or_in_khmer(portal):
    client, ctx = portal()
    code = code_of(send(client))
    assert len(code) == 8 and feedback.valid_receipt(code)
    html = client.get(f"/receipt/{code}?new=1").get_data(as_text=True)
    assert f'<p class="code muted">{code[:4]} {code[4:]}</p>' in html
    big = re.search(r'<p class="code" lang="km">(.*?)</p>', html).group(1)
    assert re.sub(r"<[^>]+>", "", big) == f"{code[:4]} {code[4:]}".translate(KM)
    for typed in (code, f"{code[:4]} {code[4:]}", f"{code[:4]}-{code[4:]}", f" {code[:4]}  {code[4:]} ",
                  code.translate(KM), f"{code[:4]} {code[4:]}".translate(KM)):
        r = client.get("/receipt", query_string={"code": typed})
        assert r.status_code == 303 and r.headers["Location"].endswith(f"/receipt/{code}"), typed
        assert client.get(r.headers["Location"]).status_code == 200
    # A typing mistake is caught by the check digit, with a message, and is not a lookup.
    typo = code[:-1] + str((int(code[-1]) + 1) % 10)
    r = client.get("/receipt", query_string={"code": typo})
    assert r.status_code == 400 and "លេខ" in r.get_data(as_text=True)
    assert limits.count(ctx.db, limits.RECEIPT_MISS, "127.0.0.1", portal_window()) == 0


def portal_window() -> int:
    from hub.web.throttle import LIMIT_WINDOW

    return LIMIT_WINDOW


def test_six_digit_receipts_already_handed_out_keep_working(portal):
    client, ctx = portal()
    item = feedback.submit(ctx, {"category": "roads", "body": "bridge"})
    with transaction(ctx.db) as conn:  # a message from before receipts had eight digits
        conn.execute("update feedback set receipt = '042917' where id = ?", (item["id"],))
    feedback.set_status(ctx, item["id"], "answered", "fixed on Monday")
    for typed in ("042917", "042-917", "042 917", "០៤២៩១៧"):
        r = client.get("/receipt", query_string={"code": typed})
        assert r.status_code == 303 and r.headers["Location"].endswith("/receipt/042917"), typed
    page = client.get("/receipt/042917?lang=en").get_data(as_text=True)
    big = re.sub(r"<[^>]+>", "", re.search(r'<p class="code" lang="km">(.*?)</p>', page).group(1))
    assert big == "042-917" and "fixed on Monday" in page


def test_the_reply_waits_until_the_phone_number_given_is_typed(portal):
    client, ctx = portal()
    code = code_of(send(client, body="my land paper is wrong", phone="012 345 678", name="Sok"))
    item = feedback.by_receipt(ctx.db, code)
    feedback.set_status(ctx, item["id"], "answered", "Come on Tuesday with your ID card")
    other = portal()[0]  # someone else, who only has the code
    page = other.get(f"/receipt/{code}?lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Answered" in html
    assert "Tuesday" not in html and "land paper" not in html and "Sok" not in html
    assert 'name="phone"' in html
    token = csrf_from(other, f"/receipt/{code}")
    wrong = other.post(f"/receipt/{code}?lang=en", data={"csrf_token": token, "phone": "012 999 999"})
    assert wrong.status_code == 400 and "Tuesday" not in wrong.get_data(as_text=True)
    for typed in ("012345678", "+855 12 345 678", "០១២ ៣៤៥ ៦៧៨"):
        right = other.post(f"/receipt/{code}?lang=en", data={"csrf_token": token, "phone": typed})
        assert right.status_code == 200 and "Tuesday" in right.get_data(as_text=True), typed
    # Without a phone number the code is all there is, so the code shows the reply.
    plain = code_of(send(client, body="road"))
    feedback.set_status(ctx, feedback.by_receipt(ctx.db, plain)["id"], "answered", "Gravel next week")
    assert "Gravel" in other.get(f"/receipt/{plain}?lang=en").get_data(as_text=True)


def test_wrong_receipt_numbers_are_limited_per_address_across_workers(portal):
    worker_a, ctx = portal(receipt_misses_per_hour=3)
    worker_b, _ = portal(receipt_misses_per_hour=3)
    real = code_of(send(worker_a))
    guesses = [c for c in (f"{n:07d}" + feedback.check_digit(f"{n:07d}") for n in range(1000, 1010)) if c != real]
    assert worker_a.get(f"/receipt/{guesses[0]}").status_code == 404
    assert worker_b.get(f"/receipt/{guesses[1]}").status_code == 404
    assert worker_a.get(f"/receipt/{guesses[2]}").status_code == 404
    # Used up, on both workers: even the right code waits now.
    for worker in (worker_b, worker_a):
        r = worker.get(f"/receipt/{real}")
        assert r.status_code == 429 and "ម៉ោង" in r.get_data(as_text=True)
    # Another phone is not held up by this one.
    other = worker_b.get(f"/receipt/{real}", environ_base={"REMOTE_ADDR": "10.42.0.77"})
    assert other.status_code == 200


def test_messages_from_one_address_are_limited(portal, tmp_path):
    client, ctx = portal(feedback_per_hour=2)
    code_of(send(client))
    code_of(send(client))
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=1.0), "ogg", tmp_path)
    with open(voice, "rb") as f:
        r = client.post("/feedback", data={"csrf_token": csrf_from(client), "category": "water", "body": "third",
                                           "voice": (f, "v.ogg")})
    assert r.status_code == 429 and "ម៉ោង" in r.get_data(as_text=True)
    assert ctx.db.execute("select count(*) from feedback").fetchone()[0] == 2
    assert not list(ctx.settings.media_dir.iterdir())  # refused before anything was converted
    other = client.post("/feedback", data={"csrf_token": csrf_from(client), "category": "water", "body": "x"},
                        environ_base={"REMOTE_ADDR": "10.42.0.78"})
    assert other.status_code == 303


def test_no_free_receipt_code_is_a_message_not_a_500(portal, tmp_path, monkeypatch):
    client, ctx = portal()
    taken = code_of(send(client))
    # Every fresh code the hub draws is one already handed out.
    monkeypatch.setattr(feedback, "_random_digits", lambda n: taken[:n])
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=1.0), "ogg", tmp_path)
    with open(voice, "rb") as f:
        r = client.post("/feedback", data={"csrf_token": csrf_from(client), "category": "water", "body": "again",
                                           "voice": (f, "v.ogg")})
    assert r.status_code == 503, r.get_data(as_text=True)[:300]
    assert "class=\"error\"" in r.get_data(as_text=True)
    assert ctx.db.execute("select count(*) from feedback").fetchone()[0] == 1
    assert ctx.db.execute("select count(*) from media").fetchone()[0] == 0
    assert not list(ctx.settings.media_dir.iterdir())
