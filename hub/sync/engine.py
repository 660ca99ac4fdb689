"""One sync cycle: prove the uplink, push the outbox and media, pull publications, mirror.

Nothing is read from or written to the outbox until the central server
has given a signed answer: a captive network leaves the hub untouched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hub import __version__, notices
from hub.announce import schedule
from hub.announce import store as announcements
from hub.backup import upload as backup_upload
from hub.core.clock import ClockRefused
from hub.core.db import utcnow
from hub.sync import inbox, outbox, remote
from hub.sync import state as sync_state
from hub.sync.client import BudgetExhausted, CentralClient, NotOnline, Rejected, SyncError
from hub.sync.health import fleet_health
from hub.sync.telegram import Mirror
from hub.update import download as update_download

log = logging.getLogger(__name__)

#: Health is reported at most this often.
HEALTH_EVERY_SECONDS = 3600


@dataclass
class Outcome:
    online: bool = False
    message: str = ""
    pushed: int = 0
    conflicts: int = 0
    refused: int = 0
    media_done: int = 0
    media_bytes: int = 0
    pulled: int = 0
    telegram: int = 0
    wire_bytes: int = 0
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.online and self.error is None

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if not self.online:
            return self.message
        text = (f"online: pushed {self.pushed} records ({self.conflicts} conflicts, {self.refused} refused),"
                f" uploaded {self.media_done} media files ({self.media_bytes} bytes),"
                f" pulled {self.pulled} publications, posted {self.telegram} to Telegram,"
                f" {self.wire_bytes} bytes on the wire")
        if self.error:
            text += f"; stopped: {self.error}"
        return text


def health(ctx) -> dict:
    s = ctx.settings
    try:
        free = shutil.disk_usage(s.data_dir).free // (1024 * 1024)
    except OSError:
        free = -1
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        uptime = -1.0
    c = outbox.counts(ctx.db)
    return {"version": __version__, "disk_free_mb": free, "uptime_seconds": int(uptime),
            "outbox_pending": c["pending"], "outbox_flagged": c["conflict"] + c["refused"],
            "media_pending": outbox.media_counts(ctx.db)["pending"], "clock_trust": ctx.clock.trust(),
            "hub_name": s.hub_name, **fleet_health(ctx), **update_download.health(s)}


def run_cycle(ctx, beat=lambda: None, stopping=lambda: False) -> Outcome:
    """Run one whole cycle; record its result in sync_state; never raise for network trouble."""
    s = ctx.settings
    out = Outcome()
    if not s.central_url:
        out.message = "sync is off: central_url is empty"
        return out
    db = ctx.db
    sync_state.set_state(db, last_attempt=utcnow())
    try:
        client = CentralClient(s, ctx, beat, stopping)
    except SyncError as e:
        out.message = out.error = str(e)
        sync_state.set_state(db, last_error=out.error, last_error_at=utcnow())
        return out
    try:
        try:
            hello = client.hello(health(ctx))
        except (NotOnline, Rejected, BudgetExhausted) as e:
            # Rejected: signed, but refused (a revoked token): still no uplink for this hub.
            out.message = str(e) if isinstance(e, BudgetExhausted) else f"not online: {e}"
            out.error = str(e)
            if not sync_state.get_state(db, "offline_since"):
                sync_state.set_state(db, offline_since=utcnow())  # the console says "offline since ..."
            return out
        out.online = True
        sync_state.set_state(db, offline_since=None)
        try:
            ctx.clock.set_trusted_time("central", hello["time_estimate"])
        except ClockRefused as e:
            log.warning("the central server's time was refused: %s", e)
        sync_state.set_state(db, last_online=utcnow(), central_hub_name=hello.get("hub_name", ""))
        try:
            _push(ctx, client, out)
            _upload_media(ctx, client, out, beat, stopping)
            _pull(ctx, client, out)
            remote.run(ctx, client, hello, out, beat)
            update_download.fetch(ctx, client, out, beat, stopping)
            backup_upload.send(ctx, client, out, beat, stopping)
            _mirror(ctx, out, stopping)
        except (SyncError, OSError) as e:
            out.error = client.redact(str(e))
        except Exception as e:  # a bug or bad data must not stop the daemon; say what it was
            log.exception("sync cycle failed")
            out.error = client.redact(f"{type(e).__name__}: {e}")
    finally:
        out.wire_bytes = client.wire_bytes
        client.close()
        if out.error:
            sync_state.set_state(db, last_error=out.error, last_error_at=utcnow())
        else:
            sync_state.set_state(db, last_error=None, last_success=utcnow())
        sync_state.set_state(db, last_outcome=out.summary())
    return out


def _push(ctx, client: CentralClient, out: Outcome) -> None:
    db = ctx.db
    outbox.scan(ctx)
    last = sync_state.get_state(db, "last_health_at")
    if not last or time.time() - float(last) >= HEALTH_EVERY_SECONDS:
        outbox.add_health(ctx, health(ctx))
        sync_state.set_state(db, last_health_at=time.time())
    while True:
        batch = outbox.pending(db, ctx.settings.sync_batch_size)
        if not batch:
            return
        answer = client.push(batch)
        asked = {r["id"] for r in batch}
        refused = [i for i in answer.get("refused", []) if i in asked]
        if refused:
            outbox.mark(db, refused, "refused", "the central server refused a record in another hub's name")
            out.refused += len(refused)
            continue  # the rest of the batch was not stored; send it again without these
        confirmed = [i for i in answer.get("stored", []) + answer.get("duplicate", []) if i in asked]
        conflicts = [i for i in answer.get("conflict", []) if i in asked]
        outbox.mark(db, confirmed, "sent")
        outbox.mark(db, conflicts, "conflict",
                    "the central server already holds a different record with this id (409)")
        out.pushed += len(confirmed)
        out.conflicts += len(conflicts)
        if not confirmed and not conflicts:
            raise SyncError("the central server confirmed none of the records sent")


def _upload_media(ctx, client: CentralClient, out: Outcome, beat, stopping) -> None:
    db = ctx.db
    chunk_size = ctx.settings.sync_chunk_kb * 1024
    for m in outbox.media_pending(db):
        if stopping():
            return
        path = ctx.media.path(m["name"])
        if not path.exists():
            outbox.media_progress(db, m["media_id"], 0, "missing", "the file is gone from the hub")
            continue
        offset, complete = client.media_offset(m["media_id"])
        sent = 0
        cuts = 0
        try:
            with open(path, "rb") as f:
                while not complete:
                    beat()
                    f.seek(offset)
                    chunk = f.read(chunk_size)
                    sent += len(chunk)
                    try:
                        answer = client.media_chunk(m["media_id"], offset, m["bytes"], m["sha256"], chunk)
                    except NotOnline:
                        # Cut mid-chunk: ask where the central server's copy ends, go on from there.
                        cuts += 1
                        if cuts > client.attempts * 2:
                            raise
                        time.sleep(min(client.first_retry_wait * 2 ** (cuts - 1), 8))
                        offset, complete = client.media_offset(m["media_id"])
                        continue
                    if answer.get("error") == "checksum":
                        outbox.media_progress(db, m["media_id"], sent, "failed",
                                              "the central server's copy did not match its SHA-256")
                        sent = 0
                        break
                    offset = int(answer.get("offset", offset))
                    complete = bool(answer.get("complete"))
        except SyncError as e:
            outbox.media_progress(db, m["media_id"], sent, None, client.redact(str(e)))
            out.media_bytes += sent
            raise
        if complete:
            outbox.media_progress(db, m["media_id"], sent, "done")
            out.media_done += 1
        out.media_bytes += sent


def _pull(ctx, client: CentralClient, out: Outcome) -> None:
    db = ctx.db
    while True:
        since = int(sync_state.get_state(db, "pull_cursor", "0"))
        answer = client.publications(since)
        pubs = answer.get("publications", [])
        for pub in pubs:
            if inbox.store_publication(db, pub):
                out.pulled += 1
        for pub in inbox.unapplied_publications(db):
            try:
                apply_publication(ctx, client, pub)
            except SyncError:
                raise
            except Exception as e:  # e.g. audio ffmpeg refuses: the others still apply
                log.warning("publication %s not applied: %s", pub["id"], e)
                out.extra.setdefault("not_applied", []).append(pub["id"])
        cursor = int(answer.get("cursor", since))
        if cursor > since:
            sync_state.set_state(db, pull_cursor=cursor)
        if not answer.get("more"):
            return


def apply_publication(ctx, client: CentralClient, pub: dict) -> None:
    """Make a pulled notice visible on the portal; keep announcements for the announcer."""
    if pub["kind"] == "notice":
        data = pub.get("data", {})
        fields = {k: data.get(k) for k in notices.FIELDS if k in data and k not in ("audio_id", "image_id")}
        if pub.get("withdrawn"):
            fields["expires_at"] = fields.get("expires_at") or utcnow()
        rows = []
        audio = data.get("audio")
        key = f"audio_of:{pub['id']}"
        if audio and sync_state.get_state(ctx.db, key) != audio["id"]:
            rows.append(_fetch_audio(ctx, client, audio))
            fields["audio_id"] = rows[0]["id"]
        existing = notices.get(ctx.db, pub["id"])
        if existing is None:
            notices.create(ctx, fields, media_rows=rows, origin="central", notice_id=pub["id"])
        else:
            notices.update(ctx, pub["id"], fields, media_rows=rows)
        if audio:
            sync_state.set_state(ctx.db, **{key: audio["id"]})
    elif pub["kind"] == "announcement":
        _apply_announcement(ctx, client, pub)
    inbox.mark_applied(ctx.db, pub["id"])


#: A centrally published announcement without a time plays this long after it arrives.
ANNOUNCEMENT_LEAD = timedelta(minutes=2)


def _apply_announcement(ctx, client: CentralClient, pub: dict) -> None:
    """Put a centrally published announcement on the loudspeaker schedule, once.

    A routine one plays once at its ``play_at`` (or shortly after it arrives),
    through the announcer like any scheduled item: quiet hours hold it until
    morning, and an untrusted clock holds it until the time is known. An
    urgent one plays at once, ahead of everything, through quiet hours, and
    cuts short a routine one that is playing; after its ``expires_at`` it
    never plays. Withdrawing it on the central server stops it here.
    """
    key = f"announcement_of:{pub['id']}"
    existing = sync_state.get_state(ctx.db, key)
    if pub.get("withdrawn"):
        if existing and existing != "expired":
            announcements.stop(ctx, existing)
        return
    if existing:
        return
    data = pub.get("data", {})
    audio = data.get("audio")
    if not audio:
        log.warning("announcement %s has no audio to play; kept as published only", pub["id"])
        return
    tz = ZoneInfo(ctx.settings.timezone)
    now = ctx.clock.now()
    urgent = bool(data.get("urgent"))
    expires = _expiry(data.get("expires_at"))
    if expires is not None and expires <= now:
        log.warning("announcement %s expired at %s before it arrived; not played", pub["id"], expires)
        sync_state.set_state(ctx.db, **{key: "expired"})
        return
    rrule = None  # urgent: play now
    if not urgent:
        at = now + ANNOUNCEMENT_LEAD
        if data.get("play_at"):
            wanted = datetime.fromisoformat(data["play_at"])
            wanted = wanted if wanted.tzinfo else wanted.replace(tzinfo=tz)
            at = max(wanted, at)
        local = at.astimezone(tz)
        if local.second or local.microsecond:  # schedules are by the minute: round up, never early
            local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        rrule = schedule.Recurrence("once", local.date(), local.time()).to_rrule(ctx.settings.timezone)
    row = _fetch_audio(ctx, client, audio)
    announcement_id = announcements.create(ctx, {
        "audio_id": row["id"], "title": data.get("title_km") or data.get("title_en") or "",
        "rrule": rrule, "repeats": int(data.get("repeats") or 1), "urgent": urgent,
        "publication_id": pub["id"], "expires_at": expires,
    }, media_rows=[row], now=now)
    sync_state.set_state(ctx.db, **{key: announcement_id})


def _expiry(text) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fetch_audio(ctx, client: CentralClient, audio: dict) -> dict:
    content = client.file(audio["id"])
    if hashlib.sha256(content).hexdigest() != audio.get("sha256"):
        raise SyncError(f"audio {audio['id']} from the central server does not match its SHA-256")
    fd, tmp = tempfile.mkstemp(prefix="hub-central-audio-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        return ctx.media.prepare_audio(Path(tmp))
    finally:
        os.unlink(tmp)


def _mirror(ctx, out: Outcome, stopping) -> None:
    s = ctx.settings
    if not (s.telegram_bot_token and s.telegram_chat_id):
        return

    out.telegram = Mirror(ctx).run(stopping)
