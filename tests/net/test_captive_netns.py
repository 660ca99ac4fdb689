"""End to end: a phone joins the hub's network in network namespaces and lands on the portal.

Three namespaces joined by veth pairs, none of them linked to the host:

    phone ──(villagers' "Wi-Fi")── hub 10.42.0.1 ──(uplink / office LAN)── outside 198.51.100.1

In the hub namespace run the generated dnsmasq config, the generated nftables
ruleset, and nginx (generated site) in front of `hub web` on a unix socket.
The phone gets its lease with udhcpc, resolves names through the hub, and
makes its requests with curl and dig. Nothing can leave the namespaces.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.net import render
from tests.conftest import need
from tests.net.webstack import WebStack, stop, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.slow]

UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc calls this with deconfig, bound, renew, leasefail or nak. It only
# touches the phone namespace's interface, never a resolv.conf.
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
    env | sort > "@OUT@/lease.env"
    ;;
esac
exit 0
"""


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class CaptiveNet:
    """The namespaces, links and daemons of one test run, all named after this process."""

    def __init__(self, tmp: Path):
        n = os.getpid()
        self.tmp = tmp
        self.hub, self.phone, self.outside = f"hubh-{n}", f"hubp-{n}", f"hubo-{n}"
        self.wifi, self.phone_if = f"hw{n}", f"pw{n}"  # veth names: at most 15 characters
        self.uplink, self.outside_if = f"hu{n}", f"ou{n}"
        self.ap, self.hub_uplink, self.outside_ip = "10.42.0.1", "198.51.100.2", "198.51.100.1"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.web: WebStack | None = None

    def ns(self, name: str, *cmd: str, **kw) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", name, *cmd, **kw)

    def start(self) -> CaptiveNet:
        for name in (self.hub, self.phone, self.outside):
            sh("ip", "netns", "add", name)
            self.namespaces.append(name)
            self.ns(name, "ip", "link", "set", "lo", "up")
        sh(
            "ip",
            "link",
            "add",
            self.wifi,
            "netns",
            self.hub,
            "type",
            "veth",
            "peer",
            "name",
            self.phone_if,
            "netns",
            self.phone,
        )
        sh(
            "ip",
            "link",
            "add",
            self.uplink,
            "netns",
            self.hub,
            "type",
            "veth",
            "peer",
            "name",
            self.outside_if,
            "netns",
            self.outside,
        )
        self.ns(self.hub, "ip", "addr", "add", f"{self.ap}/24", "dev", self.wifi)
        self.ns(self.hub, "ip", "addr", "add", f"{self.hub_uplink}/24", "dev", self.uplink)
        self.ns(self.outside, "ip", "addr", "add", f"{self.outside_ip}/24", "dev", self.outside_if)
        for ns, ifname in (
            (self.hub, self.wifi),
            (self.hub, self.uplink),
            (self.outside, self.outside_if),
            (self.phone, self.phone_if),
        ):
            self.ns(ns, "ip", "link", "set", ifname, "up")
        # The outside world routes back to the villagers' network, and the hub forwards:
        # only the hub's firewall stands between a phone and the uplink.
        self.ns(self.outside, "ip", "route", "add", "10.42.0.0/24", "via", self.hub_uplink)
        self.ns(self.hub, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

        self.web = WebStack(
            self.tmp / "web",
            settings={
                "wifi_interface": self.wifi,
                "uplink_interface": self.uplink,
                "staff_interface": self.uplink,
                "ap_address": self.ap,
                "staff_address": f"{self.hub_uplink}/24",
            },
            villager_listen=f"{self.ap}:80",
            netns=self.hub,
            as_installed=True,
        )
        settings = self.web.settings
        self.files = {p.name: p for p in render.write(self.tmp / "etc", render.render_all(settings))}
        self.ns(self.hub, "nft", "-f", str(self.files["nftables.conf"]))
        self.web.start()
        self.dnsmasq = self.daemon(
            self.hub,
            "dnsmasq",
            "--keep-in-foreground",
            f"--conf-file={self.files['dnsmasq.conf']}",
            f"--pid-file={self.tmp / 'dnsmasq.pid'}",
            f"--dhcp-leasefile={self.tmp / 'dnsmasq.leases'}",
            "--user=root",
            "--log-facility=-",
            "--log-dhcp",
            log=self.tmp / "dnsmasq.log",
        )
        wait_for(
            lambda: (
                self.ns(
                    self.hub, "dig", "+short", "+time=1", "+tries=1", f"@{self.ap}", "hub.local", check=False
                ).stdout.split()
                == [self.ap]
            ),
            15,
            "dnsmasq",
            self.dnsmasq,
        )
        # Something on the far side of the uplink that a phone must never reach.
        self.outside_server = self.daemon(
            self.outside,
            "python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            self.outside_ip,
            "--directory",
            str(self.tmp),
            log=self.tmp / "outside.log",
        )
        # A service on the hub listening on every address (as SSH would).
        self.hub_service = self.daemon(
            self.hub, "python3", "-m", "http.server", "8022", "--directory", str(self.tmp), log=self.tmp / "hub8022.log"
        )
        wait_for(
            lambda: (
                self.ns(
                    self.outside,
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "1",
                    f"http://{self.hub_uplink}:8022/",
                    check=False,
                ).returncode
                == 0
            ),
            10,
            "test service",
            self.hub_service,
        )
        return self

    def daemon(self, ns: str, *cmd: str, log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def phone_lease(self) -> dict[str, str]:
        script = self.tmp / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT.replace("@OUT@", str(self.tmp)))
        script.chmod(0o755)
        self.ns(
            self.phone,
            "udhcpc",
            "-i",
            self.phone_if,
            "-s",
            str(script),
            "-n",
            "-q",
            "-t",
            "5",
            "-T",
            "1",
            "-O",
            "114",
            timeout=60,
        )
        env = {}
        for line in (self.tmp / "lease.env").read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        resolv = Path("/etc/netns") / self.phone / "resolv.conf"
        resolv.parent.mkdir(parents=True, exist_ok=True)
        resolv.write_text("".join(f"nameserver {d}\n" for d in env["dns"].split()))
        return env

    def curl(self, url: str, *args: str) -> subprocess.CompletedProcess:
        return self.ns(
            self.phone,
            "curl",
            "--noproxy",
            "*",
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            *args,
            url,
            check=False,
        )

    def close(self) -> None:
        for p in reversed(self.procs):
            stop(p)
        if self.web is not None:
            self.web.close()
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs the tests as root)")
    for tool in ("ip", "nft", "dnsmasq", "udhcpc", "dig", "curl", "nginx"):
        need(tool)
    tmp = tmp_path_factory.mktemp("captive")
    n = CaptiveNet(tmp)
    try:
        n.start()
        n.lease = n.phone_lease()
        yield n
    finally:
        n.close()


def decode_option_114(value: str) -> str:
    """udhcpc passes an option it has no name for as hex; newer ones may decode it."""
    value = value.strip().strip("'\"")
    if re.fullmatch(r"[0-9a-fA-F]+", value) and len(value) % 2 == 0:
        return bytes.fromhex(value).decode("ascii")
    return value


def test_phone_gets_a_lease_with_option_114(net):
    lease = net.lease
    ip = lease["ip"]
    assert ip.startswith("10.42.0.")
    assert 10 <= int(ip.rsplit(".", 1)[1]) <= 250
    assert lease["router"] == net.ap
    assert lease["dns"].split() == [net.ap]
    assert lease.get("serverid") == net.ap
    assert decode_option_114(lease["opt114"]) == "http://10.42.0.1/api/captive"
    shown = net.ns(net.phone, "ip", "-4", "addr", "show", "dev", net.phone_if).stdout
    assert f"{ip}/24" in shown
    # dnsmasq recorded the lease in the test's own lease file.
    assert ip in (net.tmp / "dnsmasq.leases").read_text()


def test_phone_resolves_every_name_to_the_hub(net):
    a = net.ns(net.phone, "dig", "+time=2", "+tries=1", "@10.42.0.1", "connectivitycheck.gstatic.com", "A").stdout
    assert "status: NOERROR" in a
    assert re.search(r"connectivitycheck\.gstatic\.com\.\s+\d+\s+IN\s+A\s+10\.42\.0\.1", a), a
    aaaa = net.ns(net.phone, "dig", "+time=2", "+tries=1", "@10.42.0.1", "connectivitycheck.gstatic.com", "AAAA").stdout
    # Answered by the hub, not REFUSED: the phone falls back to IPv4 at once.
    assert "status: NOERROR" in aaaa, aaaa
    assert "SERVER: 10.42.0.1#53" in aaaa
    # The phone's resolver (from its lease) is the hub, as /etc/netns gives it.
    short = net.ns(net.phone, "dig", "+short", "+time=2", "+tries=1", "captive.apple.com").stdout
    assert short.split() == ["10.42.0.1"]
    # A resolver built into the phone is answered by the hub too (DNAT), never reached.
    built_in = net.ns(net.phone, "dig", "+short", "+time=2", "+tries=1", "@8.8.8.8", "example.org").stdout
    assert built_in.split() == ["10.42.0.1"]


def test_doctor_dns_probe_from_the_phone_side(net):
    # The probe itself, run where a phone sits.
    r = net.ns(
        net.phone,
        sys.executable,
        "-c",
        "from hub.net.checks import dns_query;print(dns_query('10.42.0.1', 'connectivitycheck.gstatic.com'))",
    )
    assert r.stdout.strip() == "(0, ['10.42.0.1'])"
    s = net.web.settings
    r = net.ns(
        net.phone,
        sys.executable,
        "-c",
        "from hub.net.checks import dns_answers; from hub.core import settings;"
        f"p = dns_answers(settings.load({str(net.web.config)!r}, env={{}}));"
        "print(p.ok, p.detail)",
    )
    assert r.stdout.startswith("True A 10.42.0.1"), r.stdout + r.stderr
    assert s.ap_address == net.ap


def test_connectivity_check_lands_on_the_portal(net):
    r = net.curl("http://connectivitycheck.gstatic.com/generate_204")
    assert r.stdout == "302 http://10.42.0.1/welcome", r.stderr
    # An outside address that DNS never gave out: nftables sends port 80 to the portal.
    r = net.curl("http://203.0.113.7/generate_204")
    assert r.stdout == "302 http://10.42.0.1/welcome", r.stderr
    welcome = net.ns(
        net.phone, "curl", "--noproxy", "*", "-sS", "--max-time", "5", "-L", "http://203.0.113.7/hotspot-detect.html"
    ).stdout
    assert 'action="/welcome"' in welcome


def test_after_the_welcome_page_the_check_passes(net):
    jar = net.tmp / "cookies.txt"
    page = net.ns(
        net.phone, "curl", "--noproxy", "*", "-sS", "--max-time", "5", "-c", str(jar), "http://10.42.0.1/welcome"
    ).stdout
    token = re.search(r'name="csrf_token" value="([^"]*)"', page).group(1)
    # A browser names the page a form came from; the cached welcome page carries no token.
    r = net.curl("http://10.42.0.1/welcome", "-b", str(jar), "-c", str(jar), "-H", "Origin: http://10.42.0.1",
                 "--data-urlencode", f"csrf_token={token}")
    assert r.stdout.startswith("303"), r.stdout
    assert net.curl("http://connectivitycheck.gstatic.com/generate_204").stdout == "204 "
    # The hub knew the phone by its MAC from its neighbour table, seen through nginx.
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS

    ctx = open_context(net.web.settings, MIGRATIONS, migrate=False)
    try:
        clients = [r[0] for r in ctx.db.conn.execute("select client from portal_clients")]
    finally:
        ctx.close()
    mac = net.ns(net.phone, "cat", f"/sys/class/net/{net.phone_if}/address").stdout.strip()
    assert f"mac:{mac}" in clients, clients


def test_phone_cannot_reach_the_clerk_console(net):
    # Through the villagers' address: nginx refuses it.
    assert net.curl("http://10.42.0.1/clerk/login").stdout.startswith("404")
    # Through the hub's staff-side address: port 80 is turned to the villagers' side ...
    assert net.curl(f"http://{net.hub_uplink}/clerk/login").stdout.startswith("404")
    assert net.curl(f"http://{net.hub_uplink}/").stdout == "302 http://10.42.0.1/welcome"
    # ... and any other port (here a service listening on every address) is refused.
    r = net.curl(f"http://{net.hub_uplink}:8022/")
    assert r.stdout.startswith("000"), r.stdout
    assert net.curl("http://10.42.0.1:8022/").stdout.startswith("000")
    # From the staff side both are there.
    for url in (f"http://{net.hub_uplink}/clerk/login", f"http://{net.hub_uplink}:8022/"):
        staff = net.ns(net.outside, "curl", "--noproxy", "*", "-sS", "--max-time", "5", url)
        assert staff.returncode == 0, url
    staff = net.ns(
        net.outside, "curl", "--noproxy", "*", "-sS", "--max-time", "5", f"http://{net.hub_uplink}/clerk/login"
    ).stdout
    assert 'name="csrf_token"' in staff


def test_phone_cannot_reach_the_uplink(net):
    # The far side is up, and the hub itself reaches it ...
    ok = net.ns(
        net.hub,
        "curl",
        "--noproxy",
        "*",
        "-sS",
        "--max-time",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        f"http://{net.outside_ip}:8000/",
    )
    assert ok.stdout == "200"
    # ... but a phone does not, though the hub forwards packets and the far side routes back.
    started = time.monotonic()
    r = net.curl(f"http://{net.outside_ip}:8000/")
    assert r.stdout.startswith("000"), r.stdout
    assert time.monotonic() - started < 5  # refused at once, not left to time out
    # HTTPS to the internet (which the portal cannot answer) fails at once too, so the
    # phone's own checks give up quickly and fall back to the HTTP ones.
    started = time.monotonic()
    r = net.curl("https://203.0.113.7/")
    assert r.stdout.startswith("000") and time.monotonic() - started < 3, r.stdout
    ping = net.ns(net.phone, "ping", "-c", "1", "-W", "1", net.outside_ip, check=False)
    assert ping.returncode != 0
