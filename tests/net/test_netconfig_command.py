"""`hub netconfig render` and `hub netconfig apply`, run as the technician runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hub.core import settings as settings_mod
from hub.net import checks, render
from tests.conftest import as_user, need, run, unprivileged_python, user_ids
from tests.net.webstack import clean_env, hub_cmd, write_toml


@pytest.fixture
def config(tmp_path):
    return write_toml(tmp_path / "hub.toml", {"data_dir": tmp_path / "data", "ssid": "Kampong-Hub"})


def hub(config, *args):
    return subprocess.run(hub_cmd(config, *args), capture_output=True, text=True, env=clean_env())


def test_render_writes_the_files_from_hub_toml(config, tmp_path):
    out = tmp_path / "out"
    r = hub(config, "netconfig", "render", "--out", str(out))
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    assert {"hostapd.conf", "dnsmasq.conf", "nftables.conf", "nginx.conf"} <= set(names)
    assert "ssid=Kampong-Hub" in (out / "hostapd.conf").read_text()
    assert "country_code=KH" in (out / "hostapd.conf").read_text()


def test_default_files_pass_every_tool(tmp_path):
    """The issue's first "done when": the three files from a default hub.toml pass their checks."""
    for tool in ("hostapd", "dnsmasq", "nft"):
        need(tool)
    config = write_toml(tmp_path / "hub.toml", {})
    out = tmp_path / "out"
    assert hub(config, "netconfig", "render", "--out", str(out)).returncode == 0
    h = run(["hostapd", str(out / "hostapd.conf")])
    assert "Failed to initialize driver 'nl80211'" in h.stdout + h.stderr
    assert "errors found in configuration file" not in h.stdout + h.stderr
    d = run(["dnsmasq", "--test", f"--conf-file={out / 'dnsmasq.conf'}"])
    assert d.returncode == 0 and "syntax check OK" in d.stderr
    if os.geteuid() == 0:
        n = run(["nft", "-c", "-f", str(out / "nftables.conf")])
        assert n.returncode == 0, n.stderr


def test_a_bad_setting_is_one_line(tmp_path):
    config = write_toml(tmp_path / "hub.toml", {"wifi_channel": 165})
    r = hub(config, "netconfig", "render", "--out", str(tmp_path / "out"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.startswith(
        "hub: error: setting wifi_channel: 165"
    )
    assert not (tmp_path / "out").exists()


def test_apply_into_a_root_folder(config, tmp_path):
    root = tmp_path / "image"
    (root / "etc/nginx/sites-enabled").mkdir(parents=True)
    (root / "etc/nginx/sites-enabled/default").symlink_to("/etc/nginx/sites-available/default")
    (root / "etc/nftables.conf").write_text("#!/usr/sbin/nft -f\nflush ruleset\n")
    r = hub(config, "netconfig", "apply", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert "ssid=Kampong-Hub" in (root / "etc/hostapd/hostapd.conf").read_text()
    assert (root / "etc/hostapd/hostapd.conf").stat().st_mode & 0o777 == 0o600
    assert "address=/#/10.42.0.1" in (root / "etc/dnsmasq.d/hub.conf").read_text()
    assert (root / "etc/hub/nftables.conf").exists()
    assert (root / "etc/systemd/network/20-hub-ap.network").exists()
    link = root / "etc/nginx/sites-enabled/hub"
    assert os.readlink(link) == "/etc/nginx/sites-available/hub"
    assert not (root / "etc/nginx/sites-enabled/default").is_symlink()
    assert 'DNSMASQ_EXCEPT="lo"' in (root / "etc/default/dnsmasq").read_text().splitlines()
    main = (root / "etc/nftables.conf").read_text()
    assert main.count('include "/etc/hub/nftables.conf"') == 1
    # Applying twice changes nothing more.
    assert hub(config, "netconfig", "apply", "--root", str(root)).returncode == 0
    assert (root / "etc/nftables.conf").read_text() == main
    assert (root / "etc/default/dnsmasq").read_text().count("DNSMASQ_EXCEPT") == 1
    # The doctor's probe agrees the files are current, and notices when one is not.
    s = settings_mod.load(config, env={})
    assert checks.config_current(s, root).ok
    (root / "etc/dnsmasq.d/hub.conf").write_text("# edited by hand\n")
    stale = checks.config_current(s, root)
    assert not stale.ok and "hub.conf" in stale.detail and "netconfig apply" in stale.hint


def test_the_daily_check_as_the_hub_user_does_not_call_root_only_files_out_of_date():
    """hub-doctor.service runs as the hub user: hostapd.conf (0600 root, it holds the Wi-Fi
    password) and NetworkManager's conf.d (0750 root) are out of its reach, not out of date."""
    if os.geteuid() != 0:
        pytest.skip("needs root to apply into a folder and drop to an unprivileged user")
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="hub-netcheck-", dir="/tmp"))
    try:
        top.chmod(0o755)
        root = top / "image"
        (root / "etc/nginx/sites-enabled").mkdir(parents=True)
        (root / "etc/nftables.conf").write_text("#!/usr/sbin/nft -f\nflush ruleset\n")
        (top / "data").mkdir(mode=0o755)
        shared = write_toml(top / "hub.toml", {"data_dir": top / "data", "ssid": "Kampong-Hub"})
        shared.chmod(0o644)
        uid, gid = user_ids("nobody")
        python = unprivileged_python(uid, gid)
        # Applied by root from the same install the check runs from (the site names its files).
        r = subprocess.run(python.hub("--config", str(shared), "netconfig", "apply", "--root", str(root)),
                           capture_output=True, text=True, env=clean_env(), cwd="/")
        assert r.returncode == 0, r.stderr
        (root / "etc/NetworkManager/conf.d").chmod(0o750)  # as on the Debian image's card
        code = ("import sys; from pathlib import Path; from hub.core import settings; from hub.net import checks;"
                " f = checks.config_current(settings.load(Path(sys.argv[1]), env={}), Path(sys.argv[2]));"
                " print(f.ok); print(f.detail)")
        env = {**clean_env(), "HOME": "/nonexistent"}
        r = subprocess.run([*as_user(uid, gid), python.python, "-c", code, str(shared), str(root)],
                           capture_output=True, text=True, env=env, cwd="/")
        assert r.returncode == 0, r.stderr
        ok, detail = r.stdout.splitlines()[:2]
        assert ok == "True", detail
        assert "hostapd.conf" in detail and "not compared" in detail, detail
        # An edit the hub user can see is still out of date.
        (root / "etc/dnsmasq.d/hub.conf").write_text("# edited by hand\n")
        r = subprocess.run([*as_user(uid, gid), python.python, "-c", code, str(shared), str(root)],
                           capture_output=True, text=True, env=env, cwd="/")
        assert r.stdout.splitlines()[0] == "False" and "hub.conf" in r.stdout, r.stdout + r.stderr
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_apply_refuses_without_root(config, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user (CI runs as root)")
    uid, gid = user_ids("nobody")
    python = unprivileged_python(uid, gid)  # the checkout itself may be out of nobody's reach
    os.chmod(config, 0o644)
    cmd = [*as_user(uid, gid), *python.hub("--config", str(config), "netconfig", "apply")]
    env = {**clean_env(), "HOME": "/nonexistent"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/")
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("hub: error: netconfig apply changes /etc"), r.stderr
    assert "run it as root" in r.stderr


def test_render_is_the_same_as_the_files_apply_writes(config, tmp_path):
    s = settings_mod.load(config, env={})
    root = tmp_path / "root"
    assert hub(config, "netconfig", "apply", "--root", str(root)).returncode == 0
    for name, text in render.render_all(s).items():
        assert (root / render.install_path(name).lstrip("/")).read_text() == text


def test_apply_removes_the_staff_network_file_when_staff_wifi_is_switched_off(tmp_path):
    root = tmp_path / "root"
    on = write_toml(tmp_path / "on.toml", {"staff_ssid": "Staff", "staff_passphrase": "long enough pass"})
    assert hub(on, "netconfig", "apply", "--root", str(root)).returncode == 0
    staff = root / "etc/systemd/network/21-hub-staff.network"
    assert staff.exists()
    off = write_toml(tmp_path / "off.toml", {})
    assert hub(off, "netconfig", "apply", "--root", str(root)).returncode == 0
    assert not staff.exists()
    assert "bss=" not in (root / "etc/hostapd/hostapd.conf").read_text()


def test_live_apply_checks_files_with_the_real_tools_first(make_settings):
    from hub.core.errors import HubError
    from hub.net.commands import check_files

    need("dnsmasq")
    files = render.render_all(make_settings())
    check_files(files)  # the rendered files pass
    broken = {**files, "dnsmasq.conf": files["dnsmasq.conf"] + "dhcp-rnage=1\n"}
    with pytest.raises(HubError, match="^dnsmasq.conf was refused by dnsmasq"):
        check_files(broken)


def test_render_warns_when_the_app_is_not_set_up_for_nginx(tmp_path):
    plain = write_toml(tmp_path / "plain.toml", {})
    r = hub(plain, "netconfig", "render", "--out", str(tmp_path / "a"))
    assert r.returncode == 0
    assert "hub: warning: behind_proxy is false" in r.stderr
    assert 'portal_url = "http://10.42.0.1/"' in r.stderr
    assert "hub: warning: staff_address is empty" in r.stderr
    ready = write_toml(tmp_path / "ready.toml", {"behind_proxy": True, "portal_url": "http://10.42.0.1/",
                                                 "staff_address": "192.168.1.250/24"})
    r = hub(ready, "netconfig", "render", "--out", str(tmp_path / "b"))
    assert r.returncode == 0 and r.stderr == ""
    assert checks.web_settings(settings_mod.load(ready, env={})).ok
