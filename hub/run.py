"""`hub run`: every daemon in one process, for development and demos."""

from __future__ import annotations

import importlib
import secrets
import threading

from werkzeug.serving import make_server

from hub import accounts, feedback, notices
from hub.core.assets import audio_dir
from hub.web import create_app

#: name -> "module:Class" of each daemon `hub run` starts beside the web app.
DAEMONS: dict[str, str] = {
    "sync": "hub.sync.daemon:Sync",
    "recorder": "hub.voice.recorder_daemon:Recorder",
    "transcriber": "hub.voice.transcriber_daemon:Transcriber",
    "announcer": "hub.announce.daemon:Announcer",
}


def build_daemons(settings, only: set[str] | None = None) -> list:
    out = []
    for name, target in DAEMONS.items():
        if only is not None and name not in only:
            continue
        module, _, cls = target.partition(":")
        out.append(getattr(importlib.import_module(module), cls)(settings))
    return out


def start_web(settings):
    """Serve the web app on werkzeug's threaded server in a background thread."""
    app = create_app(settings)
    server = make_server(settings.host, settings.port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="web", daemon=True).start()
    return server


def seed_demo(ctx, out) -> None:
    """Demo notices (one with audio), some feedback, and a clerk with a random password."""
    db = ctx.db
    if not db.conn.execute("select 1 from notices limit 1").fetchone():
        audio = audio_dir() / "demo" / "meeting-notice.ogg"
        media_rows = [ctx.media.prepare_audio(audio)] if audio.exists() else []
        notices.create(ctx, {
            "title_km": "ប្រជុំឃុំ ថ្ងៃច័ន្ទ ម៉ោង ៨ ព្រឹក",
            "title_en": "Commune meeting, Monday 8 am",
            "body_km": "សូមអញ្ជើញប្រជាពលរដ្ឋទាំងអស់ចូលរួមប្រជុំឃុំ នៅសាលាឃុំ"
                       " ដើម្បីពិភាក្សាអំពីផែនការអភិវឌ្ឍឃុំ។",
            "body_en": "Everyone is invited to the commune meeting at the commune hall"
                       " to discuss the development plan.",
            "pinned": True,
            "audio_id": media_rows[0]["id"] if media_rows else None,
        }, media_rows=media_rows)
        notices.create(ctx, {
            "title_km": "ការចាក់វ៉ាក់សាំងកុមារ",
            "title_en": "Vaccination for children",
            "body_km": "មណ្ឌលសុខភាពនឹងចាក់វ៉ាក់សាំងជូនកុមារអាយុក្រោម ៥ ឆ្នាំ នៅថ្ងៃពុធ។",
            "body_en": "The health centre vaccinates children under 5 on Wednesday.",
            "urgent": True,
        })
        notices.create(ctx, {
            "title_km": "ការចុះឈ្មោះអ្នកបោះឆ្នោត",
            "title_en": "Voter registration",
            "body_km": "ការចុះឈ្មោះបោះឆ្នោតបើកនៅសាលាឃុំរៀងរាល់ថ្ងៃធ្វើការ។",
            "body_en": "Voter registration is open at the commune hall on working days.",
        })
        for category, body in (
            ("water", "អណ្តូងនៅភូមិខាងជើងខូច។"),
            ("roads", "The road to the school floods when it rains."),
            ("health", "សូមបន្ថែមថ្ងៃពិនិត្យសុខភាព។"),
        ):
            feedback.submit(ctx, {"category": category, "body": body, "village": "ភូមិ ១"})
    username = "demo-clerk"
    password = secrets.token_urlsafe(9)
    if any(u["username"] == username for u in accounts.list_users(db)):
        accounts.set_password(db, username, password)
    else:
        accounts.add_user(db, username, password, "clerk")
    print(f"hub: demo clerk login: {username} / {password}  (console: /clerk/)", file=out, flush=True)
