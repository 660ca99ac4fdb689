"""The console's page for one hub's remote care: change its settings, ask for a diagnostics bundle.

Every value is checked with the hub's own settings checks before it is
accepted (:meth:`hub.central.remote.Remote.ask_settings`); a refused value is
said in the officer's language with the check's own English words beside it,
and nothing is stored.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from hub.central.api import store
from hub.central.errors import CentralError
from hub.central.store import PENDING
from hub.core.settings import REMOTE_SETTINGS, SettingsError, parse_text
from hub.web.i18n import N_, _

care = Blueprint("care", __name__)

#: The form's fields: setting → its label.
LABELS = {
    "hub_name": N_("Commune's name on the portal"),
    "quiet_hours_start": N_("Quiet hours start (like 21:00)"),
    "quiet_hours_end": N_("Quiet hours end (like 06:00)"),
    "sync_interval_seconds": N_("Time between syncs (seconds)"),
    "sync_daily_budget_mb": N_("Daily data budget (MB, 0: no limit)"),
    "sync_bandwidth_kbps": N_("Upload speed cap (kbit/s, 0: no cap)"),
    "ssid": N_("Villagers' Wi-Fi name"),
    "staff_ssid": N_("Staff Wi-Fi name"),
    "staff_passphrase": N_("Staff Wi-Fi password"),
}

def _login_required():
    if g.get("user") is None:
        return redirect(url_for("central.login", next=request.path))
    return None


care.before_request(_login_required)


def _hub(hub_id: str) -> dict:
    try:
        return store().hub_in_scope(hub_id, g.scope)
    except CentralError:
        abort(404)


def _setting_of(message: str) -> str:
    """The setting a SettingsError names ("setting NAME: ...")."""
    head = message.split(":", 1)[0]
    return head.removeprefix("setting ").strip() if head.startswith("setting ") else ""


@care.route("/hubs/<hub_id>/care", methods=["GET", "POST"])
def hub_care(hub_id: str):
    hub = _hub(hub_id)
    error = detail = None
    status = 200
    typed = {}
    if request.method == "POST":
        typed = {k: request.form.get(k, "") for k in REMOTE_SETTINGS}
        try:
            if hub["id"].startswith(PENDING):
                raise CentralError(_("This hub has not synced yet; change its settings after its first sync."))
            changes = {k: parse_text(k, v) for k, v in typed.items() if v.strip()}
            if not changes:
                raise CentralError(_("Fill in at least one setting to change."))
            store().ask_settings(hub["id"], changes, g.user["username"])
            return redirect(url_for("care.hub_care", hub_id=hub_id, asked="settings"), code=303)
        except SettingsError as e:
            name = _setting_of(str(e))
            error = _("%(setting)s: this value cannot be used. Nothing was changed.",
                      setting=_(LABELS[name]) if name in LABELS else name)
            detail, status = str(e), 400
        except CentralError as e:
            error, status = str(e), 400
        typed.pop("staff_passphrase", None)  # never sent back into a page
    return render_template("central/care.html", hub=hub, labels=LABELS, typed=typed, error=error, detail=detail,
                           reported=store().reported_settings(hub["id"]),
                           changes=store().settings_changes(hub["id"]),
                           bundles=store().diagnostics(hub["id"]), asked=request.args.get("asked")), status


@care.route("/hubs/<hub_id>/diagnostics", methods=["POST"])
def ask_diagnostics(hub_id: str):
    hub = _hub(hub_id)
    if hub["id"].startswith(PENDING):
        abort(409)
    store().ask_diagnostics(hub["id"], g.user["username"])
    return redirect(url_for("care.hub_care", hub_id=hub_id, asked="diagnostics"), code=303)


@care.route("/diagnostics/<request_id>.json")
def diagnostics_file(request_id: str):
    row = store().diagnostics_bundle(request_id)
    if row is None:
        abort(404)
    hub = _hub(row["hub_id"])
    body = json.dumps(json.loads(row["bundle"]), ensure_ascii=False, indent=2)
    resp = Response(body, mimetype="application/json")
    stamp = (row["received_at"] or "")[:19].replace(":", "").replace("-", "")
    resp.headers["Content-Disposition"] = f'attachment; filename="diagnostics-{hub["id"][:8]}-{stamp}.json"'
    return resp
