"""The urgent poll: between full sync cycles, a small conditional request for urgent broadcasts.

Every ``sync_urgent_interval_seconds`` the sync daemon asks the central
server ``GET /urgent`` with the ETag of the last answer in ``If-None-Match``.
While nothing changed the answer is ``304 Not Modified`` with no body, so a
poll costs a few hundred bytes, counted against the data budget like every
other request (:meth:`hub.sync.client.CentralClient.call`). When the list
changed, each urgent announcement new to the hub is applied at once
(:func:`hub.sync.engine.apply_publication`: the announcer plays it now), a
withdrawn one is stopped, and then the ETag is kept.

The same poll sends acknowledgements: once the announcer has played (or
missed, or failed) an urgent broadcast, its proof of play goes back to the
central server, once (``ack_of:<publication>`` in the sync state holds the
play-log row it sent).
"""

from __future__ import annotations

import logging

from hub.announce import store as announcements
from hub.sync import inbox, wire
from hub.sync import state as sync_state
from hub.sync.client import BudgetExhausted, CentralClient, NotOnline, Rejected, SyncError
from hub.sync.engine import apply_publication

log = logging.getLogger(__name__)

ETAG_KEY = "urgent_etag"


def poll(ctx, client: CentralClient) -> dict:
    """One urgent poll and the acknowledgements due; never raises for network trouble.

    Returns what happened: ``{"status": 304 | 200 | None, "applied": n, "acked": n, "error": ...}``.
    """
    out = {"status": None, "applied": 0, "acked": 0, "error": None}
    try:
        _fetch(ctx, client, out)
        _acknowledge(ctx, client, out)
    except (NotOnline, BudgetExhausted, Rejected) as e:
        out["error"] = client.redact(str(e))
        log.info("urgent poll: %s", out["error"])
    except (SyncError, OSError) as e:
        out["error"] = client.redact(str(e))
        log.warning("urgent poll: %s", out["error"])
    return out


def _fetch(ctx, client: CentralClient, out: dict) -> None:
    db = ctx.db
    etag = sync_state.get_state(db, ETAG_KEY)
    status, headers, content = client.call("GET", "/urgent", headers={"If-None-Match": etag} if etag else None)
    out["status"] = status
    if status == 304:
        return
    if status != 200:
        raise Rejected(status, f"central server answered {status} to the urgent poll")
    try:
        pubs = wire.read_json_body(content, None).get("publications", [])
    except (ValueError, AttributeError):
        raise SyncError("the urgent poll's answer is not JSON") from None
    for pub in pubs:
        inbox.store_publication(db, pub)
    wanted = {p["id"] for p in pubs}
    for pub in inbox.unapplied_publications(db):
        if pub["id"] in wanted:
            apply_publication(ctx, client, pub)
            out["applied"] += 1
    if headers.get("ETag"):
        sync_state.set_state(db, **{ETAG_KEY: headers["ETag"]})


def pending_acks(db) -> list[dict]:
    """Proof of play of urgent broadcasts not yet acknowledged to the central server."""
    latest = {}
    for r in announcements.urgent_outcomes(db):
        latest[r["publication_id"]] = r  # the newest outcome of each
    return [r for pub_id, r in latest.items() if sync_state.get_state(db, f"ack_of:{pub_id}") != r["play_id"]]


def _acknowledge(ctx, client: CentralClient, out: dict) -> None:
    due = pending_acks(ctx.db)
    if not due:
        return
    acks = [{"publication_id": r["publication_id"], "outcome": r["outcome"], "started_at": r["started_at"],
             "ended_at": r["ended_at"], "detail": r["detail"]} for r in due]
    client.call_json("POST", "/acks", {"acks": acks})
    # Sent and answered: an ack the server did not keep (no longer addressed here) is not sent again.
    sync_state.set_state(ctx.db, **{f"ack_of:{r['publication_id']}": r["play_id"] for r in due})
    out["acked"] = len(due)
