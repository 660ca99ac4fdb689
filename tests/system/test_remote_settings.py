"""Remote care on the booted appliance: settings changed and diagnostics asked for on the central server.

One boot. The officer's requests go into the central server's store (the console that
writes them is tested against PostgreSQL in tests/sync/test_remote.py); the hub carries them
out on its next sync as deployed: hub-sync as user hub writes remote-settings.toml in
/var/lib/hub (/etc/hub is root's), hub-settings.path starts hub-settings.service as root,
which renders the Wi-Fi files again and restarts hub.target; the portal then shows the
new name. The diagnostics bundle carries hub doctor and the units' journal, read by hub
through the systemd-journal group, with the secrets redacted.
"""

from __future__ import annotations

import json
import re

from hub.central.store import CentralStore
from tests.system.conftest import session, wait_for
from tests.system.test_journeys import CENTRAL_PORT, Central

FIRST_PASS = "first-pass-phrase"
NEW_PASS = "a-new-staff-pass-42"


def change_state(store, change_id: str) -> dict | None:
    rows = list(store.db.query("select * from hub_settings_changes where id = ?", [change_id]))
    return rows[0] if rows and rows[0]["state"] != "waiting" else None


def test_a_settings_change_and_a_diagnostics_bundle_on_the_next_sync(make_appliance, tmp_path):
    central = Central(tmp_path / "central")
    token = central.cli("add-hub", "commune-remote").strip().splitlines()[-1]
    app = make_appliance("hubr", settings={
        "central_url": f"http://127.0.0.1:{CENTRAL_PORT}", "central_token": token, "sync_interval_seconds": 5,
        "staff_ssid": "Office", "staff_passphrase": FIRST_PASS})
    store = None
    try:
        central.start(app.ns)
        app.boot()
        store = CentralStore.open(central.dir)
        hub = wait_for(lambda: next((h for h in store.hubs() if h["last_contact"]), None), 120, interval=2,
                       message="the hub never reached the central server")
        assert app.sh("stat -c '%U:%G %a' /etc/hub /etc/hub/hub.toml").stdout.split("\n")[:2] == \
            ["root:hub 750", "root:hub 640"], "the hub user cannot write /etc/hub: the change goes elsewhere"
        web_started = app.unit("hub-web", "ExecMainStartTimestampMonotonic")

        change = store.ask_settings(hub["id"], {"hub_name": "ឃុំថ្មី", "quiet_hours_start": "22:15",
                                                "ssid": "Village-New", "staff_passphrase": NEW_PASS}, "officer")
        done = wait_for(lambda: change_state(store, change), 120, interval=2,
                        message="the hub did not answer the settings change")
        assert done["state"] == "applied", done
        reported = store.reported_settings(hub["id"])["settings"]
        assert reported["hub_name"] == "ឃុំថ្មី" and reported["staff_passphrase"] == "***"
        owners = app.sh("stat -c '%U:%G %a' /var/lib/hub/remote-settings.toml").stdout.strip()
        assert owners == "hub:hub 640", owners
        # hub-settings.service (root) took the change: network files rendered, daemons restarted.
        wait_for(lambda: app.sh("test -e /var/lib/hub/remote-settings.apply", check=False).returncode != 0
                 and app.unit("hub-settings.service", "ActiveState") != "activating"
                 and app.unit("hub-web", "ExecMainStartTimestampMonotonic") != web_started
                 and app.unit("hub-web", "ActiveState") == "active", 180, interval=2,
                 message=lambda: "hub-settings.service did not restart the hub: path unit "
                 + app.unit("hub-settings.path", "ActiveState") + "\n" + app.journal("hub-settings"))
        hostapd = app.sh("cat /etc/hostapd/hostapd.conf").stdout
        assert "ssid=Village-New" in hostapd and f"wpa_passphrase={NEW_PASS}" in hostapd
        print(app.journal("hub-settings"))
        page = wait_for(lambda: (r := session().get(f"{app.portal}/", timeout=30)).ok and r.text, 60,
                        message="the portal did not come back")
        assert "ឃុំថ្មី" in page.replace("\u200b", ""), "hub-web reads the new name after its restart"
        # A technician's `hub settings` shows the same settings the daemons run with.
        shown = app.hub("settings").stdout
        assert "remote-settings.toml" in shown and "quiet_hours_start = '22:15'" in shown, shown

        # A second change keeps the file it replaces; one the hub cannot use is refused.
        first = app.sh("cat /var/lib/hub/remote-settings.toml").stdout
        change = store.ask_settings(hub["id"], {"quiet_hours_end": "05:45"}, "officer")
        assert wait_for(lambda: change_state(store, change), 120, interval=2)["state"] == "applied"
        assert app.sh("cat /var/lib/hub/remote-settings.toml.previous").stdout == first
        change = store.ask_settings(hub["id"], {"staff_ssid": "Village-New"}, "officer")
        refused = wait_for(lambda: change_state(store, change), 120, interval=2)
        assert refused["state"] == "refused" and "must differ from ssid" in refused["message"], refused

        # A line in hub-sync's journal that carries a secret, as a careless library could log it
        # (root may attach a message to a unit with OBJECT_SYSTEMD_UNIT); then the bundle.
        app.sh(f"printf 'MESSAGE=retrying with passphrase {NEW_PASS}\\nOBJECT_SYSTEMD_UNIT=hub-sync.service\\n"
               "SYSLOG_IDENTIFIER=hub-sync\\n' | logger --journald")
        leaked = wait_for(lambda: NEW_PASS in app.journal("hub-sync"), 20, message="the planted line is not there")
        request = store.ask_diagnostics(hub["id"], "officer")
        row = wait_for(lambda: store.diagnostics_bundle(request), 180, interval=2,
                       message="the diagnostics bundle did not arrive")
        text = row["bundle"]
        bundle = json.loads(text)
        assert bundle["versions"]["hub"] and "Debian" in bundle["versions"]["os"]
        assert {c["id"] for c in bundle["doctor"]["checks"]} >= {"config", "database", "services"}
        journal = "\n".join(bundle["journal"])
        assert "hub-sync" in journal and not journal.startswith("journalctl:"), journal[:500]
        secret_key = re.search(r'secret_key = "([^"]+)"', app.sh("cat /etc/hub/hub.toml").stdout).group(1)
        for secret in (token, NEW_PASS, FIRST_PASS, secret_key):
            assert secret not in text, secret
        assert leaked and "retrying with passphrase [redacted]" in journal, journal[-2000:]
        print(f"bundle {len(text)} bytes, {len(bundle['journal'])} journal lines")
    finally:
        if store is not None:
            store.close()
        central.stop()
