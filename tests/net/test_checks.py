"""The doctor's network probes on a machine that is not a working hub: each fails with a fix."""

from __future__ import annotations

import os

from hub.net import checks


def test_every_probe_fails_with_a_hint_where_there_is_no_access_point(make_settings):
    # This machine has no Wi-Fi, no hostapd running and no hub on 10.42.0.1; the data
    # folder is private, so the installed-config probe looks in a folder with no files.
    settings = make_settings(
        wifi_interface="hubnone0", ap_address="192.0.2.1", dhcp_range_start="192.0.2.10", dhcp_range_end="192.0.2.20"
    )
    probes = checks.run_all(settings)
    names = [p.name for p in probes]
    assert names[:2] == ["network config", "web settings"]
    assert {"service hostapd", "service dnsmasq", "service nginx", "access point", "DNS for phones", "portal"} <= set(
        names
    )
    for p in probes:
        if p.name == "firewall":
            continue  # the test machine may have other rulesets; the table is ours only in a namespace
        assert not p.ok, p
        assert p.hint, p


def test_dns_query_parses_a_real_answer_from_dnsmasq(tmp_path):
    """The probe's own DNS client against the hub's dnsmasq config, on loopback."""
    import subprocess

    from tests.conftest import need
    from tests.net.webstack import free_port, stop, wait_for

    need("dnsmasq")
    port = free_port()
    conf = tmp_path / "dns.conf"
    conf.write_text("no-resolv\nno-hosts\nlocal=/#/\naddress=/#/10.42.0.1\nlisten-address=127.0.0.1\nbind-interfaces\n")
    cmd = [
        "dnsmasq",
        "--keep-in-foreground",
        f"--conf-file={conf}",
        f"--port={port}",
        f"--pid-file={tmp_path / 'pid'}",
        "--log-facility=-",
    ]
    if os.geteuid() == 0:
        cmd.append("--user=root")  # it would drop to user dnsmasq, who cannot read pytest's folders
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(
            lambda: checks.dns_query("127.0.0.1", "x.example", port=port, timeout=0.3)[0] == 0, 10, "dnsmasq", proc
        )
        assert checks.dns_query("127.0.0.1", "connectivitycheck.gstatic.com", port=port) == (0, ["10.42.0.1"])
        assert checks.dns_query("127.0.0.1", "connectivitycheck.gstatic.com", qtype=28, port=port) == (0, [])
    finally:
        stop(proc)
