"""The doctor's checks of the link to the central server: can it be reached, and does sync keep up."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from hub.core.checks import FAIL, OK, SKIP, WARN, Checkup, Finding
from hub.core.words import N_
from hub.sync import outbox
from hub.sync import state as sync_state


def check_uplink(checkup: Checkup) -> Finding:
    s = checkup.settings
    if not s.central_url:
        return Finding("uplink", SKIP, N_("No central server is set (central_url)"))

    u = urlsplit(s.central_url)
    port = u.port or (443 if u.scheme == "https" else 80)
    values = {"host": u.hostname or "", "port": port, "interface": s.uplink_interface}
    try:
        with socket.create_connection((u.hostname, port), timeout=checkup.timeout):
            pass
    except OSError as e:
        values["error"] = e.strerror or str(e)
        return Finding("uplink", WARN, N_("Cannot reach %(host)s:%(port)s (%(error)s)"), values,
                       N_("Check the uplink on %(interface)s: the dongle, its credit, the"
                          " office line. The hub keeps working and syncs later."),
                       {"interface": s.uplink_interface})
    return Finding("uplink", OK, N_("%(host)s:%(port)s can be reached"), values)


def check_sync(checkup: Checkup) -> Finding:
    s = checkup.settings
    if not s.central_url:
        return Finding("sync", SKIP, N_("No central server is set (central_url)"))
    if checkup.db is None:
        return Finding("sync", SKIP, N_("Needs a working database"))

    try:
        state = sync_state.all_state(checkup.db)
        counts = outbox.counts(checkup.db)
    except Exception as e:
        return Finding("sync", FAIL, N_("The sync state cannot be read: %(error)s"),
                       {"error": str(e)}, N_("Run `hub migrate`."))
    pending = counts.get("pending", 0)
    flagged = counts.get("conflict", 0) + counts.get("refused", 0)
    values = {"last": state.get("last_success", "-"), "pending": pending, "flagged": flagged,
              "error": state.get("last_error", "")}
    if not s.central_token:
        return Finding("sync", FAIL, N_("central_url is set but central_token is empty"), values,
                       N_("Ask the central server's administrator for this hub's token"
                          " (`hub central add-hub`) and set central_token."))
    if flagged:
        return Finding("sync", WARN,
                       N_("%(flagged)s records were refused by the central server"), values,
                       N_("Look at them in the console's sync page."))
    if values["error"]:
        return Finding("sync", WARN, N_("Last error: %(error)s (last success: %(last)s,"
                                        " %(pending)s records waiting)"), values,
                       N_("Read `journalctl -u hub-sync`; a wrong token gives 401."))
    return Finding("sync", OK, N_("Last success %(last)s; %(pending)s records waiting"), values)
