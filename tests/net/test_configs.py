"""The rendered configs, checked by the real tools: hostapd, dnsmasq --test, nft -c."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hub.core.settings import SettingsError
from hub.net import render, wifi
from tests.conftest import need, run

STAFF = {"staff_ssid": "Commune-Staff", "staff_passphrase": "correct horse battery"}


def hostapd(conf: Path) -> str:
    need("hostapd")
    r = subprocess.run([need("hostapd"), str(conf)], capture_output=True, text=True, timeout=20, check=False)
    return r.stdout + r.stderr


def rendered(settings, tmp_path: Path) -> dict[str, Path]:
    return {p.name: p for p in render.write(tmp_path, render.render_all(settings))}


@pytest.mark.parametrize("overrides", [{}, STAFF, {"wifi_hw_mode": "a", "wifi_channel": 36}])
def test_hostapd_parses_the_config_and_only_the_driver_fails(make_settings, tmp_path, overrides):
    files = rendered(make_settings(**overrides), tmp_path)
    out = hostapd(files["hostapd.conf"])
    assert "Failed to initialize driver 'nl80211'" in out, out
    assert "errors found in configuration file" not in out, out
    assert "unknown configuration item" not in out.lower(), out


def test_hostapd_config_says_what_the_issue_asks(make_settings, tmp_path):
    conf = render.hostapd_conf(make_settings(max_clients=17, **STAFF))
    lines = conf.splitlines()
    for line in (
        "country_code=KH",
        "ieee80211d=1",
        "hw_mode=g",
        "channel=6",
        "ssid=Commune-Hub",
        "ap_isolate=1",
        "max_num_sta=17",
        "wpa=0",
        "bss=wlan0staff",
        "wpa=2",
        "wpa_key_mgmt=WPA-PSK",
        "rsn_pairwise=CCMP",
        "wpa_passphrase=correct horse battery",
    ):
        assert line in lines, line
    # The villagers' network comes first and is open: no passphrase before the staff bss.
    assert lines.index("ap_isolate=1") < lines.index("bss=wlan0staff")
    assert "wpa_passphrase" not in conf.split("bss=")[0]
    assert "bss=" not in render.hostapd_conf(make_settings())


def test_a_khmer_ssid_is_written_as_hex_and_parses(make_settings, tmp_path):
    name = "ឃុំ ហាប់"
    conf = render.hostapd_conf(make_settings(ssid=name))
    assert f"ssid2={name.encode().hex()}" in conf.splitlines()
    path = tmp_path / "hostapd.conf"
    path.write_text(conf)
    out = hostapd(path)
    assert "Failed to initialize driver 'nl80211'" in out and "errors found" not in out, out


def test_a_broken_config_shows_hostapds_error_path(make_settings, tmp_path):
    conf = render.hostapd_conf(make_settings()).replace("hw_mode=g", "hw_mode=q")
    path = tmp_path / "hostapd.conf"
    path.write_text(conf)
    out = hostapd(path)
    assert "errors found in configuration file" in out, out
    assert "Failed to initialize driver" not in out


def test_hostapd_misses_band_mistakes_so_we_catch_them(make_settings, tmp_path):
    # hostapd itself accepts channel 40 in 2.4 GHz mode ...
    conf = render.hostapd_conf(make_settings()).replace("channel=6", "channel=40")
    path = tmp_path / "hostapd.conf"
    path.write_text(conf)
    assert "errors found" not in hostapd(path)
    # ... our renderer does not.
    with pytest.raises(SettingsError, match=r"^setting wifi_channel: 40 is not a 2\.4 GHz channel"):
        render.hostapd_conf(make_settings(wifi_channel=40))


@pytest.mark.parametrize(
    ("mode", "channel", "message"),
    [
        (
            "g",
            14,
            r"setting wifi_channel: 14 cannot be used in KH: channel 14 is only for 802\.11b",
        ),
        ("g", 0, r"setting wifi_channel: 0 is not a 2\.4 GHz channel"),
        ("a", 6, r"setting wifi_channel: 6 is not a 5 GHz channel"),
        ("a", 52, r"setting wifi_channel: 52 cannot be used in KH: it needs radar detection"),
        ("a", 149, r"setting wifi_channel: 149 cannot be used in KH: it is not allowed there"),
    ],
)
def test_channel_against_band_and_country(make_settings, mode, channel, message):
    with pytest.raises(SettingsError, match=message) as e:
        render.render_all(make_settings(wifi_hw_mode=mode, wifi_channel=channel))
    assert "\n" not in str(e.value)
    assert "use one of" in str(e.value)


def test_channels_allowed_in_cambodia():
    assert wifi.allowed_channels("KH", "g") == list(range(1, 14))
    assert wifi.allowed_channels("KH", "a") == [36, 40, 44, 48]
    # A country the table lacks gets the world rules: 12 and 13 are passive-only there.
    assert wifi.allowed_channels("ZZ", "g") == list(range(1, 12))
    with pytest.raises(SettingsError, match="ZZ .*world rules"):
        wifi.check_channel("ZZ", "g", 13)
    with pytest.raises(SettingsError, match="setting country_code"):
        wifi.check_channel("Cambodia", "g", 6)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"ssid": "a" * 33}, "ssid"),
        ({"ssid": "ok\nwpa=0"}, "ssid"),
        ({"staff_ssid": "Staff", "staff_passphrase": "short"}, "staff_passphrase"),
        ({"staff_ssid": "Commune-Hub", "staff_passphrase": "long enough"}, "staff_ssid"),
        ({"wifi_interface": "wlan0; rm"}, "wifi_interface"),
        ({"uplink_interface": "wlan0"}, "uplink_interface"),
        ({"ap_address": "10.42.0.300"}, "ap_address"),
        ({"dhcp_range_start": "192.168.1.10"}, "dhcp_range_start"),
        ({"dhcp_range_start": "10.42.0.200", "dhcp_range_end": "10.42.0.100"}, "dhcp_range_end"),
        ({"ap_address": "10.42.0.20"}, "ap_address"),
        ({"dhcp_lease_time": "2 hours"}, "dhcp_lease_time"),
        ({"max_clients": 5000}, "max_clients"),
        ({"web_socket": "run/web.sock"}, "web_socket"),
        ({"staff_ap_address": "10.42.0.129", **STAFF}, "staff_ap_address"),
    ],
)
def test_bad_settings_get_one_line_naming_the_setting(make_settings, overrides, setting):
    with pytest.raises(SettingsError) as e:
        render.render_all(make_settings(**overrides))
    assert str(e.value).startswith(f"setting {setting}:"), str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("overrides", [{}, STAFF])
def test_dnsmasq_test_says_ok(make_settings, tmp_path, overrides):
    need("dnsmasq")
    files = rendered(make_settings(**overrides), tmp_path)
    r = run(["dnsmasq", "--test", f"--conf-file={files['dnsmasq.conf']}"])
    assert r.returncode == 0, r.stderr
    assert "syntax check OK" in r.stderr


def test_dnsmasq_config_answers_everything_with_the_hub(make_settings):
    conf = render.dnsmasq_conf(make_settings(ap_address="10.42.0.1", dhcp_lease_time="45m"))
    lines = conf.splitlines()
    assert "local=/#/" in lines
    assert "address=/#/10.42.0.1" in lines
    assert "dhcp-range=set:villagers,10.42.0.10,10.42.0.250,255.255.255.0,45m" in lines
    assert 'dhcp-option=tag:villagers,114,"http://10.42.0.1/api/captive"' in lines
    assert "except-interface=lo" in lines


def test_dnsmasq_test_catches_a_broken_config(make_settings, tmp_path):
    need("dnsmasq")
    path = tmp_path / "dnsmasq.conf"
    path.write_text(render.dnsmasq_conf(make_settings()).replace("dhcp-range=", "dhcp-rnage="))
    r = run(["dnsmasq", "--test", f"--conf-file={path}"])
    assert r.returncode != 0


@pytest.mark.parametrize("overrides", [{}, STAFF])
def test_nft_accepts_the_ruleset(make_settings, tmp_path, overrides):
    need("nft")
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root (netlink) on this kernel; CI runs as root")
    files = rendered(make_settings(**overrides), tmp_path)
    r = run(["nft", "-c", "-f", str(files["nftables.conf"])])
    assert r.returncode == 0, r.stderr


def test_nft_refuses_a_broken_ruleset(make_settings, tmp_path):
    need("nft")
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root (netlink) on this kernel; CI runs as root")
    path = tmp_path / "nftables.conf"
    path.write_text(render.nftables_conf(make_settings()).replace("dnat ip to", "dnat ip too"))
    assert run(["nft", "-c", "-f", str(path)]).returncode != 0


def test_nftables_rules_keep_villagers_to_the_portal(make_settings):
    conf = render.nftables_conf(
        make_settings(
            wifi_interface="wlan1",
            ap_address="10.9.0.1",
            dhcp_range_start="10.9.0.10",
            dhcp_range_end="10.9.0.99",
        )
    )
    assert 'iifname "wlan1" ip daddr != 10.9.0.1 tcp dport 80 dnat ip to 10.9.0.1:80' in conf
    assert 'iifname "wlan1" counter reject' in conf  # forward: no uplink, no office LAN
    assert "masquerade" not in conf  # nothing from the villagers is ever NATed out


def test_networkd_and_networkmanager_files(make_settings):
    s = make_settings(**STAFF)
    files = render.render_all(s)
    assert "Address=10.42.0.1/24" in files["hub-ap.network"]
    assert "Name=wlan0" in files["hub-ap.network"]
    assert "Address=10.43.0.1/24" in files["hub-staff.network"]
    nm = files["hub-networkmanager.conf"]
    assert "unmanaged-devices=interface-name:wlan0;interface-name:wlan0staff" in nm
