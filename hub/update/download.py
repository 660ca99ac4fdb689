"""Fetching a new release from the central server during sync, within the data budget.

After the cycle's records, media and publications, ``GET /api/v1/release`` names the
newest release with its signed manifest. When it is newer than the running hub,
replaces it (``min_version``), did not fail here before and its signature is the
release key's, the wheel comes in ranges of ``sync_chunk_kb`` appended to
``DATA/update/download/VERSION.whl.part``: a cut download goes on from the part's
size at the next cycle. Each range is one request of the sync client, so it counts
against ``sync_daily_budget_mb`` like any other, and it is paced by
``sync_bandwidth_kbps``. It never takes the last of the day's budget: when the next
range would not fit, it goes on tomorrow.

When the wheel is whole and its SHA-256 matches, it becomes a release file,
``DATA/update/ready.release`` (renamed into place), which ``hub-update.path`` hands
to ``hub-update.service`` (root) to install: the sync daemon itself never writes
outside the data directory or restarts anything.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from hub import __version__
from hub.backup.upload import BUDGET_RESERVE
from hub.core.files import make_dir
from hub.sync.client import BudgetExhausted, Rejected
from hub.update import install
from hub.update import release as rel

log = logging.getLogger(__name__)


def fetch(ctx, client, out, beat=lambda: None, stopping=lambda: False) -> None:
    """Download the newest release when it applies to this hub; say what happened in *out.extra*."""
    s = ctx.settings
    if not s.update_download:
        return
    status, _, content = client.call("GET", "/release")
    if status == 404:
        return  # a central server from before releases
    if status != 200:
        raise Rejected(status, f"central server answered {status} for the newest release")
    try:
        offered = json.loads(content).get("release")
    except (ValueError, AttributeError):
        offered = None
    if not offered:
        return
    try:
        release = rel.verify_manifest(offered["manifest"].encode(), offered["signature"].encode(),
                                      Path(s.release_key_file))
        rel.check_applies(release, __version__, install.failed_versions(s))
    except rel.ReleaseError as e:
        out.extra["update"] = str(e)
        return
    work = install.work_dir(s)
    ready = work / "ready.release"
    taken = Path(s.update_root) / install.TAKEN
    if install.read_state(s) or taken.exists():
        out.extra["update"] = "an update is being installed"
        return
    if ready.exists():
        out.extra["update"] = f"release {release.version} is downloaded and waits to be installed"
        return
    folder = make_dir(work / "download")
    part = folder / f"{release.version}.whl.part"
    for old in folder.iterdir():  # parts of releases no longer offered
        if old != part:
            old.unlink(missing_ok=True)
    total = release.manifest["bytes"]
    chunk = s.sync_chunk_kb * 1024
    got = part.stat().st_size if part.exists() else 0
    fetched = 0
    with open(part, "ab") as f:
        while got < total:
            if stopping():
                break
            beat()
            want = min(chunk, total - got)
            try:
                client.check_budget(want + BUDGET_RESERVE)
            except BudgetExhausted:
                out.extra["update"] = (f"release {release.version}: {got} of {total} bytes; the rest waits for"
                                       " tomorrow's data budget")
                out.extra["update_bytes"] = fetched
                return
            status, _, piece = client.call("GET", f"/release/{release.version}/wheel",
                                           params={"start": got, "length": want})
            if status != 200 or not piece:
                raise Rejected(status, f"central server answered {status} for release {release.version}")
            client.throttle.take(len(piece))  # the answer's bytes are paced too
            f.write(piece[:total - got])
            f.flush()
            os.fsync(f.fileno())
            got += min(len(piece), total - got)
            fetched += len(piece)
    out.extra["update_bytes"] = fetched
    if got < total:
        return
    try:
        rel.check_wheel(release, part)
    except rel.ReleaseError as e:
        part.unlink(missing_ok=True)
        out.extra["update"] = str(e)
        return
    wheel = part.with_name(release.manifest["wheel"])
    os.replace(part, wheel)
    try:
        rel.write_release_file(ready, wheel, release.body, release.signature)
    finally:
        wheel.unlink(missing_ok=True)
    out.extra["update"] = f"release {release.version} downloaded; hub-update.service installs it"
    log.info("release %s downloaded (%s bytes); waiting for hub-update.service", release.version, total)


def health(settings) -> dict:
    """What the central server is told about updates with every hello."""
    last = install.history(settings)[-1:] or [None]
    return {"update_failed": sorted(install.failed_versions(settings)), "update_last": last[0]}
