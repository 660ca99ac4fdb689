"""The console is served on the staff LAN only: not on the uplink, not on the villagers' Wi-Fi.

Four namespaces, none linked to the host:

    phone ──(Wi-Fi 10.42.0.1)── hub ──(staff LAN 192.168.77.1/24)── clerk 192.168.77.50
                                 └───(uplink 198.51.100.2/24)── outside 198.51.100.1

In the hub namespace run the rendered nftables ruleset and the rendered nginx
site, exactly as `hub netconfig` installs them, in front of `hub web`.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from hub.net import render
from tests.conftest import need
from tests.net.test_captive_netns import sh
from tests.net.webstack import WebStack

pytestmark = [pytest.mark.netns, pytest.mark.slow]

AP, STAFF, CLERK, UPLINK, OUTSIDE = "10.42.0.1", "192.168.77.1", "192.168.77.50", "198.51.100.2", "198.51.100.1"


class Sides:
    def __init__(self, tmp):
        n = os.getpid()
        self.tmp = tmp
        self.hub, self.phone, self.clerk, self.outside = (f"hsh-{n}", f"hsp-{n}", f"hsc-{n}", f"hso-{n}")
        self.links = {  # hub end, far end, far namespace, hub address, far address
            "wifi": (f"sw{n}", f"spw{n}", self.phone, AP, "10.42.0.50"),
            "staff": (f"ss{n}", f"scs{n}", self.clerk, STAFF, CLERK),
            "uplink": (f"su{n}", f"sou{n}", self.outside, UPLINK, OUTSIDE),
        }
        self.namespaces: list[str] = []
        self.web = None

    def ns(self, name, *cmd, **kw):
        return sh("ip", "netns", "exec", name, *cmd, **kw)

    def start(self):
        for name in (self.hub, self.phone, self.clerk, self.outside):
            sh("ip", "netns", "add", name)
            self.namespaces.append(name)
            self.ns(name, "ip", "link", "set", "lo", "up")
        for hub_if, far_if, far_ns, hub_addr, far_addr in self.links.values():
            sh("ip", "link", "add", hub_if, "netns", self.hub, "type", "veth", "peer", "name", far_if, "netns", far_ns)
            self.ns(self.hub, "ip", "addr", "add", f"{hub_addr}/24", "dev", hub_if)
            self.ns(far_ns, "ip", "addr", "add", f"{far_addr}/24", "dev", far_if)
            self.ns(self.hub, "ip", "link", "set", hub_if, "up")
            self.ns(far_ns, "ip", "link", "set", far_if, "up")
        # Someone on the uplink who knows the hub's staff address and routes to it through the uplink.
        self.ns(self.outside, "ip", "route", "add", "192.168.77.0/24", "via", UPLINK)
        self.ns(self.phone, "ip", "route", "add", "default", "via", AP)
        self.web = WebStack(
            self.tmp / "web",
            settings={"wifi_interface": self.links["wifi"][0], "staff_interface": self.links["staff"][0],
                      "uplink_interface": self.links["uplink"][0], "ap_address": AP,
                      "staff_address": f"{STAFF}/24"},
            villager_listen=f"{AP}:80", netns=self.hub, as_installed=True)
        self.files = {p.name: p for p in render.write(self.tmp / "etc", render.render_all(self.web.settings))}
        check = subprocess.run(["nft", "-c", "-f", str(self.files["nftables.conf"])], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.ns(self.hub, "nft", "-f", str(self.files["nftables.conf"]))
        self.web.start()
        return self

    def curl(self, ns: str, url: str, max_time: int = 3) -> str:
        """'CODE' as curl prints it; '000' when no answer came."""
        r = self.ns(ns, "curl", "--noproxy", "*", "-s", "--max-time", str(max_time), "-o", "/dev/null",
                    "-w", "%{http_code}", url, check=False)
        return r.stdout

    def close(self):
        if self.web is not None:
            self.web.close()
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs the tests as root)")
    for tool in ("ip", "nft", "curl", "nginx"):
        need(tool)
    s = Sides(tmp_path_factory.mktemp("sides"))
    try:
        yield s.start()
    finally:
        s.close()


def test_the_rendered_site_binds_the_staff_block_to_the_staff_address(sides):
    site = sides.web.prefix.joinpath("site.conf").read_text()
    staff_block = site[site.index("Staff side"):]
    assert f"listen {STAFF}:80;" in staff_block and "default_server" not in staff_block
    assert "listen 80 default_server;" in site and "return 444;" in site
    ruleset = sides.files["nftables.conf"].read_text()
    assert f'iifname "{sides.links["uplink"][0]}" tcp dport {{ 80, 443 }} counter drop' in ruleset


def test_a_clerk_on_the_staff_lan_gets_the_console(sides):
    # The first answer may wait for the web server's first worker on a busy machine.
    assert sides.curl(sides.clerk, f"http://{STAFF}/clerk/login", max_time=30) == "200"
    page = sides.ns(sides.clerk, "curl", "--noproxy", "*", "-s", "--max-time", "10", f"http://{STAFF}/clerk/login")
    assert 'name="csrf_token"' in page.stdout


def test_the_uplink_gets_no_console_at_any_hub_address(sides):
    for address in (UPLINK, STAFF, AP):
        assert sides.curl(sides.outside, f"http://{address}/clerk/login") == "000", address
        assert sides.curl(sides.outside, f"http://{address}/") == "000", address


def test_the_uplinks_address_serves_nothing_even_from_the_staff_lan(sides):
    # The kernel takes a connection to any of its addresses on any interface; nginx answers
    # only on the staff and villager addresses, and closes the rest without a word.
    assert sides.curl(sides.clerk, f"http://{UPLINK}/clerk/login") == "000"


def test_a_phone_gets_no_console_at_the_staff_address(sides):
    assert sides.curl(sides.phone, f"http://{STAFF}/clerk/login") == "404"
    assert sides.curl(sides.phone, f"http://{AP}/clerk/login") == "404"
