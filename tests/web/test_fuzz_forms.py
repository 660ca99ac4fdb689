"""Every form and query parameter of the portal and the console, with arbitrary text, bytes and sizes (Hypothesis).

The forms are found on the pages themselves (each <form>, with its fields and
their offered values), so a form added later is fuzzed too. Each example sends
one request through Flask's test client to an app on a real SQLite data
directory, a clerk logged in for the console, and then checks the whole store:

- no answer is a 5xx;
- no stored text holds a NUL or another control character, or is longer than its field allows;
- nothing is half-stored: every media file has its row, every row its files, every
  reference its row.

Bounded for `make test` (a fixed number of examples, derandomized, no deadline);
HUB_FUZZ_EXAMPLES=N and HUB_FUZZ_RANDOM=1 explore further.
"""

from __future__ import annotations

import io
import os
import re
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import accounts, feedback, notices
from hub.announce import store as announcements
from hub.core.context import open_context
from hub.core.khmer import strip_break_points
from hub.core.text import bad_character
from hub.migrations import MIGRATIONS
from hub.voice import transcripts
from tests.phone_audio import encode, tone_wav

#: Examples for each form, and for each page's query parameters.
PER_FORM = int(os.environ.get("HUB_FUZZ_EXAMPLES", "8"))
PER_PAGE = max(1, PER_FORM // 3)
FUZZ = settings(max_examples=PER_FORM, deadline=None, database=None,
                derandomize=os.environ.get("HUB_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Query parameters the pages read, sent to every page.
QUERY_PARAMS = ("page", "status", "category", "state", "start", "code", "new", "next", "lang", "saved",
                "queued", "error", "v")
#: Forms not fuzzed: logging out would end the clerk's session for the examples after it.
SKIP_ACTIONS = ("/clerk/logout",)

# (table, column, limit on what was typed, multi-line)
LIMITS = [
    ("feedback", "body", feedback.MAX_TEXT, True),
    ("feedback", "reply", feedback.MAX_TEXT, True),
    ("feedback", "name", feedback.MAX_FIELD, False),
    ("feedback", "village", feedback.MAX_FIELD, False),
    ("feedback", "phone", feedback.MAX_PHONE, False),
    ("notices", "title_km", notices.MAX_TITLE, False),
    ("notices", "title_en", notices.MAX_TITLE, False),
    ("notices", "body_km", notices.MAX_BODY, True),
    ("notices", "body_en", notices.MAX_BODY, True),
    ("notices", "expires_at", notices.MAX_REF, False),
    ("announcements", "title", announcements.MAX_TITLE, False),
    ("transcripts", "corrected_text", transcripts.MAX_TEXT, True),
    ("transcripts", "verified_by", transcripts.MAX_CLERK, False),
]
#: Where media rows are referred to from.
MEDIA_REFS = [("feedback", "audio_id"), ("feedback", "reply_audio_id"),
              ("notices", "audio_id"), ("notices", "image_id"),
              ("announcements", "audio_id"), ("transcripts", "media_id"), ("voice_prompts", "media_id")]


class Forms(HTMLParser):
    """The forms of a page: action, method and fields with the values the page offers."""

    def __init__(self, page: str):
        super().__init__()
        self.page = page
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action") or self.page, "method": (a.get("method") or "get").lower(),
                          "fields": {}, "files": set()}
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "textarea", "select", "button") and a.get("name"):
            name = a["name"]
            offered = self._form["fields"].setdefault(name, set())
            if a.get("type") == "file":
                self._form["files"].add(name)
            elif a.get("value") is not None:
                offered.add(a["value"])
            if tag == "select":
                self._select = name
        elif tag == "option" and self._form is not None and self._select:
            self._form["fields"][self._select].add(a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def forms_on(client, path: str) -> list[dict]:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    parser = Forms(path.split("?")[0])
    parser.feed(r.get_data(as_text=True))
    return parser.forms


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """An app with some of everything in it, a clerk's client, a villager's client, and every form found."""
    from hub.core import settings as settings_mod
    from hub.web import create_app

    tmp = tmp_path_factory.mktemp("fuzz")
    s = settings_mod.load(config=None, env={}, overrides={
        "data_dir": tmp / "data", "feedback_per_hour": 0, "receipt_misses_per_hour": 0,
        "login_attempts": 1000, "max_audio_seconds": 30})
    ctx = open_context(s, MIGRATIONS)
    app = create_app(s, context=ctx)
    voice = encode(tone_wav(tmp / "v.wav", seconds=1.0), "ogg", tmp)
    audio = ctx.media.prepare_audio(voice)
    nid = notices.create(ctx, {"title_km": "ប្រជុំ", "title_en": "Meeting", "audio_id": audio["id"]}, [audio])
    item = feedback.store(ctx, feedback.validate({"category": "water", "body": "dry", "phone": "012345678"}),
                          ctx.media.prepare_audio(voice))
    transcripts.enqueue_new(ctx)
    tid = ctx.db.execute("select id from transcripts").fetchone()[0]
    announcements.create(ctx, {"notice_id": nid, "title": "", "rrule": None, "repeats": 1})
    accounts.add_user(ctx.db, "clerk1", "correct horse", "clerk")
    clerk = app.test_client()
    token = CSRF_RE.search(clerk.get("/clerk/login").get_data(as_text=True)).group(1)
    r = clerk.post("/clerk/login", data={"username": "clerk1", "password": "correct horse", "csrf_token": token})
    assert r.status_code == 303
    villager = app.test_client()
    # As a phone's browser says of a form posted from the hub's own (cached) page.
    villager.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
    stranger = app.test_client()  # tries the login form, so the clerk's session is never touched
    portal_pages = ["/", "/feedback", "/receipt", f"/receipt/{item['receipt']}", f"/notice/{nid}", "/welcome",
                    "/mine"]
    console_pages = ["/clerk/", "/clerk/notices/", "/clerk/notices/new", f"/clerk/notices/{nid}/edit",
                     "/clerk/feedback/", f"/clerk/feedback/{item['id']}", "/clerk/feedback/templates",
                     "/clerk/announcements/",
                     "/clerk/announcements/new", "/clerk/announcements/week", "/clerk/announcements/log",
                     "/clerk/voice/", f"/clerk/voice/{tid}", "/clerk/voice/prompts", "/clerk/sync/"]
    targets = []
    for who, pages in ((villager, portal_pages), (clerk, console_pages), (stranger, ["/clerk/login"])):
        for page in pages:
            targets.append({"client": who, "page": page, "action": page, "method": "get", "fields": {},
                            "files": set(), "query": True})
            for form in forms_on(who, page):
                if form["action"] not in SKIP_ACTIONS:
                    targets.append({"client": who, "page": page, **form, "query": form["method"] == "get"})
    unique = {}
    for t in targets:
        unique.setdefault((id(t["client"]), t["action"], t["method"], tuple(sorted(t["fields"]))), t)
    yield {"ctx": ctx, "targets": list(unique.values()), "voice": voice.read_bytes()}
    ctx.close()


def test_the_crawl_found_every_form(hub):
    posts = {t["action"].split("?")[0] for t in hub["targets"] if t["method"] == "post"}
    for expected in ("/feedback", "/welcome", "/clerk/login", "/clerk/clock", "/clerk/notices/new",
                     "/clerk/announcements/new"):
        assert expected in posts, sorted(posts)
    assert any(a.startswith("/receipt/") for a in posts)  # the phone number that proves a receipt
    assert any(a.startswith("/clerk/feedback/") for a in posts)  # the reply
    assert any(a.startswith("/clerk/voice/") for a in posts)  # corrections, retries, prompts
    assert len(hub["targets"]) >= 40, len(hub["targets"])


# --- what the examples are made of ---------------------------------------------------------------

#: Text of every kind: any code point a request can carry (no lone surrogates), controls and NUL included.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
control_heavy = st.text(st.sampled_from("\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\r\n\t\u2028 aក០9-:+T"),
                        max_size=60)
huge = st.builds(lambda n, c: c * n, st.sampled_from([101, 201, 4001, 8001, 30_000, 600_000]),
                 st.sampled_from(["x", "ក", "\x00", "9", "\n"]))
numbers = st.one_of(st.integers(-10**30, 10**30).map(str), st.floats(allow_nan=True).map(repr),
                    st.sampled_from(["1e20", "٣", "１２", "០៥", "-0", "", " ", "0x10", "9" * 5000]))
dates = st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30", "2026-12-02", "10000-01-01",
                         "2026-12-02T25:00", "0001-01-01T00:00", "9999-12-31T23:59", "24:00", "23:59",
                         "០៧:០០", "2026-13-01"])


def value_for(offered: set[str]):
    """Half the time a value the page offers (so the form gets past its first check), else anything."""
    anything = st.one_of(any_text, control_heavy, huge, numbers, dates)
    if not offered:
        return anything
    return st.one_of(st.sampled_from(sorted(offered)), anything)


file_bytes = st.one_of(st.binary(max_size=4096), st.builds(lambda n: b"\x00" * n, st.integers(0, 300_000)),
                       st.just(b"RIFF\x24\x00\x00\x00WAVEfmt "), st.just(b"\x1aE\xdf\xa3" + b"\x00" * 64),
                       st.just(b"voice"))


@st.composite
def request_for(draw, target, voice: bytes):
    values = {name: draw(value_for(offered)) for name, offered in target["fields"].items()
              if name != "csrf_token" and draw(st.sampled_from((True, True, True, False)))}
    query = {}
    if target["query"] or draw(st.booleans()):
        for name in draw(st.lists(st.sampled_from(QUERY_PARAMS), max_size=4, unique=True)):
            query[name] = draw(value_for(set()))
    files = {}
    for name in target["files"]:
        if draw(st.booleans()):
            files[name] = draw(st.one_of(file_bytes, st.just(voice)))
    return values, query, files


# --- what must hold after every request -------------------------------------------------------------

def check_store(ctx) -> None:
    db = ctx.db
    for table, column, limit, multiline in LIMITS:
        for (value,) in db.execute(f"select {column} from {table} where {column} is not null"):
            typed = strip_break_points(value)
            assert len(typed) <= limit, (table, column, len(typed))
            assert bad_character(value, multiline) is None, (table, column, value[:80])
    media = {r[0]: r[1:] for r in db.execute("select id, master_name, web_name, loud_name from media")}
    files = {p.name for p in ctx.settings.media_dir.iterdir()}
    for names in media.values():
        for name in names:
            assert name is None or name in files, ("a media row without its file", name)
    named = {n for names in media.values() for n in names if n}
    orphans = {f for f in files if f not in named}
    assert not orphans, ("media files without a row", orphans)
    for table, column in MEDIA_REFS:
        for (ref,) in db.execute(f"select {column} from {table} where {column} is not null"):
            assert ref in media, ("a record without its media", table, column, ref)


def send(hub, target, values, query, files):
    client = target["client"]
    path = target["action"].split("?")[0]
    if target["method"] == "get":
        return client.get(path + "?" + urlencode({**query, **values}))
    m = CSRF_RE.search(client.get(target["page"]).get_data(as_text=True))
    body = {**values, "csrf_token": m.group(1) if m else ""}
    for name, content in files.items():
        body[name] = (io.BytesIO(content), "upload.bin")
    return client.post(path + ("?" + urlencode(query) if query else ""), data=body)


def fuzz_one(hub, target) -> None:
    """Run the examples of one form (or one page's query parameters)."""
    examples = PER_FORM if target["method"] == "post" else PER_PAGE

    @settings(FUZZ, max_examples=examples)
    @given(data=st.data())
    def one_form(data):
        values, query, files = data.draw(request_for(target, hub["voice"]))
        r = send(hub, target, values, query, files)
        assert r.status_code < 500, (target["method"], target["action"], query,
                                     {k: v[:100] for k, v in values.items()}, r.status_code)
        check_store(hub["ctx"])

    one_form()


def test_no_input_gives_a_5xx_or_stores_anything_bad_or_half(hub):
    """Each form (and each page's query parameters) gets its own examples, so none is left out."""
    for target in hub["targets"]:
        fuzz_one(hub, target)


@settings(FUZZ, max_examples=PER_FORM * 4)
@given(raw=st.binary(max_size=2000), where=st.sampled_from(["/feedback", "/clerk/notices/new",
                                                            "/clerk/announcements/new", "/receipt/10000009"]))
def test_bytes_that_are_no_text_give_no_5xx(hub, raw, where):
    """A form body of raw bytes (not UTF-8, not form-encoded) is read as text, never crashes."""
    clerk = next(t["client"] for t in hub["targets"] if t["action"].startswith("/clerk/"))
    r = clerk.post(where, data=raw, content_type="application/x-www-form-urlencoded")
    assert r.status_code < 500
    r = clerk.get(where.rsplit("/", 1)[0] + "/?" + raw.decode("latin-1").replace("#", "%23"))
    assert r.status_code < 500
    check_store(hub["ctx"])
