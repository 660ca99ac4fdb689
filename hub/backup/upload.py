"""The scheduled backup to the central server, sent during sync in resumable chunks.

Every ``backup_interval_hours`` the sync cycle writes a backup into
``DATA/backups/`` and sends it like a media file: ``HEAD /api/v1/backups/ID``
says how much the central server holds, each ``PUT`` carries one chunk of
``sync_chunk_kb`` at its ``Upload-Offset``, and the SHA-256 is checked when the
file is whole. The central server keeps the newest whole backup of each hub.

It goes after the records, media and publications of the cycle, through the
same client, so the same speed cap paces it and every byte counts against
``sync_daily_budget_mb``. It never spends the last of the budget: when the next
chunk would not fit, it stops for today and goes on tomorrow from the same offset.
A cut chunk costs at most one chunk again.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from hub.backup import archive
from hub.core.db import new_id
from hub.core.files import make_dir
from hub.sync import state as sync_state
from hub.sync.client import BudgetExhausted, NotOnline, Rejected, SyncError

log = logging.getLogger(__name__)

FOLDER = "backups"
#: Room left in the day's budget for the records of the next cycles, beside the backup's chunk.
BUDGET_RESERVE = 256 * 1024


class NoBackups(SyncError):
    """The central server has no backup API; the hub's other sync goes on."""


def _due(db, hours: int) -> bool:
    last = sync_state.get_state(db, "backup_sent_at")
    if not last:
        return True
    return time.time() - float(last) >= hours * 3600


def _begin(ctx) -> dict:
    folder = make_dir(Path(ctx.settings.data_dir) / FOLDER)
    for old in folder.glob("*.tar"):  # a backup given up on, or one from before a crash
        old.unlink(missing_ok=True)
    backup_id = new_id()
    made = archive.write(ctx, folder / f"{backup_id}.tar")
    job = {"id": backup_id, "file": str(made.path), "bytes": made.bytes, "sha256": made.sha256,
           "made_at": made.manifest["made_at"]}
    sync_state.set_state(ctx.db, backup_upload=json.dumps(job))
    return job


def _chunk(client, job: dict, offset: int, chunk: bytes) -> dict:
    try:
        return client.upload_chunk(f"/backups/{job['id']}", offset, job["bytes"], job["sha256"], chunk,
                                   {"Backup-Made-At": job["made_at"]}, ok=(200, 409, 422))
    except Rejected as e:
        if e.status == 404:  # only a central server from before backups answers a PUT with 404
            raise NoBackups("the central server takes no backups (it is an older version)") from e
        raise


def send(ctx, client, out, beat=lambda: None, stopping=lambda: False) -> None:
    """Make a backup when one is due and send what the central server does not hold yet.

    A stop (the daemon shutting down) in the middle is no failure of the cycle:
    the upload goes on from the central server's offset next time.
    """
    try:
        _send(ctx, client, out, beat, stopping)
    except NoBackups as e:
        out.extra["backup"] = str(e)
    except SyncError:
        if not stopping():
            raise
        out.extra["backup"] = "stopped; it goes on at the next sync"


def _send(ctx, client, out, beat, stopping) -> None:
    s = ctx.settings
    db = ctx.db
    raw = sync_state.get_state(db, "backup_upload")
    job = json.loads(raw) if raw else None
    if job and not Path(job["file"]).exists():
        job = None
    if job is None:
        if s.backup_interval_hours <= 0 or not _due(db, s.backup_interval_hours):
            return
        need = archive.estimated_bytes(s) + s.min_free_mb * 1024 * 1024
        if shutil.disk_usage(s.data_dir).free < need:
            # The copy waits on the card until it is sent; it must never take the room recordings need.
            out.extra["backup"] = "not enough free disk for the backup's copy; not made"
            return
        job = _begin(ctx)
    chunk_size = s.sync_chunk_kb * 1024
    sent = 0
    cuts = 0
    offset, complete = client.upload_offset(f"/backups/{job['id']}")
    with open(job["file"], "rb") as f:
        while not complete:
            if stopping():
                break
            beat()
            f.seek(offset)
            chunk = f.read(chunk_size)
            try:
                client.check_budget(len(chunk) + BUDGET_RESERVE)
            except BudgetExhausted:
                out.extra["backup"] = f"waiting for tomorrow's data budget at {offset} of {job['bytes']} bytes"
                break
            try:
                answer = _chunk(client, job, offset, chunk)
            except NotOnline:
                cuts += 1
                if cuts > client.attempts * 2:
                    raise
                time.sleep(min(client.first_retry_wait * 2 ** (cuts - 1), 8))
                offset, complete = client.upload_offset(f"/backups/{job['id']}")
                continue
            sent += len(chunk)
            if answer["status"] == 422:  # the central server's copy did not match: start again next time
                sync_state.set_state(db, backup_upload=None)
                Path(job["file"]).unlink(missing_ok=True)
                raise SyncError("the central server's copy of the backup did not match its SHA-256")
            offset = int(answer.get("offset", offset))
            complete = bool(answer.get("complete"))
    out.extra["backup_bytes"] = sent
    if complete:
        sync_state.set_state(db, backup_upload=None, backup_sent_at=time.time())
        archive.record_made(db, "central", job["made_at"], f"backup {job['id']}, {job['bytes']} bytes")
        Path(job["file"]).unlink(missing_ok=True)
        out.extra["backup_done"] = job["id"]
        log.info("backup %s (%s bytes) is on the central server", job["id"], job["bytes"])


def last_backup_at(db) -> str:
    made = archive.last_made(db)
    return max((m["at"] for m in made.values()), default="")


def age_seconds(at: str) -> int:
    when = datetime.fromisoformat(at)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0, int((datetime.now(UTC) - when).total_seconds()))
