"""Bad input and faults through the real CLI, in a throwaway namespace: each is refused with a
clear message and a non-zero exit, and leaves nothing behind; a killed dnsmasq is reported and
restored; a failure half way through net-start is rolled back; a net-start killed half way is
taken back by the next command."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from netcli_lab import NetCli, sh

pytestmark = pytest.mark.integration


def _nat(name: str, third: int, body: str = "", forward: str = "<forward mode='nat'/>") -> str:
    return (
        f"<network><name>{name}</name>{forward}<ip address='10.233.{third}.1' prefix='24'>"
        f"<dhcp><range start='10.233.{third}.100' end='10.233.{third}.199'/>{body}</dhcp></ip>"
        "</network>"
    )


BAD_DEFINITIONS = {
    "long bridge name": (
        "<network><name>b</name><bridge name='abcdefghijklmnop'/></network>",
        2,
        r"bridge name 'abcdefghijklmnop' is longer than 15 characters \(line 1, /network/bridge",
    ),
    "range outside subnet": (
        "<network><name>b</name><ip address='10.233.1.1' prefix='24'><dhcp>"
        "<range start='10.233.2.2' end='10.233.2.9'/></dhcp></ip></network>",
        2,
        r"dhcp range start 10\.233\.2\.2 is outside subnet 10\.233\.1\.0/24",
    ),
    "reversed range": (
        "<network><name>b</name><ip address='10.233.1.1' prefix='24'><dhcp>"
        "<range start='10.233.1.9' end='10.233.1.2'/></dhcp></ip></network>",
        2,
        r"dhcp range 10\.233\.1\.9-10\.233\.1\.2 is reversed",
    ),
    "static host outside subnet": (
        _nat("b", 1, "<host mac='52:54:00:00:00:01' ip='10.9.9.9'/>"),
        2,
        r"dhcp host address 10\.9\.9\.9 is outside subnet",
    ),
    "duplicate MAC": (
        _nat("b", 1, "<host mac='52:54:00:00:00:01' ip='10.233.1.5'/>"
                     "<host mac='52:54:00:00:00:01' ip='10.233.1.6'/>"),
        2,
        "duplicate dhcp host MAC 52:54:00:00:00:01",
    ),
    "duplicate IP": (
        _nat("b", 1, "<host mac='52:54:00:00:00:01' ip='10.233.1.5'/>"
                     "<host mac='52:54:00:00:00:02' ip='10.233.1.5'/>"),
        2,
        r"duplicate dhcp host IP 10\.233\.1\.5",
    ),
    "unknown element": (
        "<network><name>b</name><frobnicate/></network>",
        2,
        r"element <frobnicate> in <network> is unknown \(line 1",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_DEFINITIONS))
def test_bad_definitions_are_refused(cli: NetCli, case: str) -> None:
    xml, code, message = BAD_DEFINITIONS[case]
    before = cli.snapshot()
    cli.fails(code, "net-define", cli.xml("bad", xml), match=message)
    assert cli.ok("net-list", "--all", "--name") == "\n"
    assert cli.snapshot() == before


def test_conflicts_between_networks_and_with_the_host(cli: NetCli) -> None:
    before = cli.snapshot()
    cli.ok("net-define", cli.xml("a", _nat("a", 1)))
    cli.fails(4, "net-define", cli.xml("b", _nat("b", 1).replace("prefix='24'", "prefix='16'")),
              match=r"subnet 10\.233\.0\.0/16 of network 'b' overlaps subnet 10\.233\.1\.0/24 "
                    "of network 'a'")  # fmt: skip
    cli.fails(4, "net-define", cli.xml("c", _nat("c", 2).replace(
        "<forward mode='nat'/>", "<forward mode='nat'/><bridge name='vmkbr0'/>")),
        match="bridge name 'vmkbr0' is already used by network 'a'")  # fmt: skip
    # the host's own routes and links are checked when the network starts
    up = "<network><name>up</name><ip address='198.51.100.77' prefix='24'/></network>"
    cli.ok("net-define", cli.xml("up", up))
    cli.fails(4, "net-start", "up", match=r"overlaps route 198\.51\.100\.0/24 dev up0")
    taken = "<network><name>tk</name><bridge name='up0'/></network>"
    cli.ok("net-define", cli.xml("tk", taken))
    cli.fails(4, "net-start", "tk", match="bridge name 'up0' is already in use")
    nodev = _nat("nd", 3, forward="<forward mode='nat' dev='eth7'/>")
    cli.ok("net-define", cli.xml("nd", nodev))
    cli.fails(3, "net-start", "nd", match="forward dev 'eth7' of network 'nd' does not exist")
    cli.fails(3, "net-start", "nosuch", match="failed to get network 'nosuch'")
    cli.fails(5, "net-destroy", "a", match="network is not active")
    for name in ("a", "up", "tk", "nd"):
        cli.ok("net-undefine", name)
    assert cli.snapshot() == before


def test_killed_dnsmasq_is_reported_and_restored(cli: NetCli) -> None:
    before = cli.snapshot()
    cli.ok("net-define", cli.xml("k", _nat("k", 4)))
    cli.ok("net-start", "k")
    pid_file = cli.root / "run" / "net" / "k" / "dnsmasq.pid"
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)
    cli.wait_for("dnsmasq to die", lambda: pid not in cli.pids())
    info = cli.ok("net-info", "k")
    assert (
        f"Active:         yes (degraded: dnsmasq (pid {pid}) is not running; run 'vmkit "
        "net-start --force k')"
    ) in info
    listed = cli.ok("net-list")
    assert " k      degraded" in listed and "run 'vmkit net-start --force k'" in listed
    cli.fails(5, "net-start", "k", match="network is already active but dnsmasq")
    out = cli.ok("net-start", "--force", "k")
    assert out == f"Network k started (repaired: dnsmasq (pid {pid}) is not running)\n\n"
    new = int(pid_file.read_text())
    assert new != pid and new in cli.pids()
    assert "degraded" not in cli.ok("net-info", "k")
    cli.ok("net-destroy", "k")
    cli.ok("net-undefine", "k")
    assert cli.snapshot() == before


def test_live_update_adds_a_dhcp_host_to_the_running_dnsmasq(cli: NetCli) -> None:
    cli.ok("net-define", cli.xml("u", _nat("u", 5)))
    cli.ok("net-start", "u")
    g = cli.guest("g1", "vmkbr0", "52:54:00:00:05:10")
    assert (cli.dhcp(g) or "").startswith("10.233.5.1")  # from the range
    host = "<host mac='52:54:00:00:05:10' ip='10.233.5.55' name='g1'/>"
    assert cli.ok("net-update", "u", "add", "ip-dhcp-host", host) == (
        "Updated network u live state\n\n"
    )
    conf = (cli.root / "run" / "net" / "u" / "dnsmasq.conf").read_text()
    assert "dhcp-host=52:54:00:00:05:10,10.233.5.55,g1" in conf
    sh(g, "ip", "addr", "flush", "dev", "eth0")
    assert cli.dhcp(g) == "10.233.5.55"
    assert "10.233.5.55" not in cli.ok("net-dumpxml", "--inactive", "u")  # --current: live only
    cli.fails(4, "net-update", "u", "add", "ip-dhcp-host", host, match="existing dhcp host")
    cli.fails(2, "net-update", "u", "add", "ip-dhcp-host",
              "<host mac='52:54:00:00:05:11' ip='10.9.5.5'/>", match="outside subnet")  # fmt: skip
    cli.ok("net-destroy", "u")


def _fake_dnsmasq(cli: NetCli, body: str) -> dict[str, str]:
    """A PATH whose `dnsmasq` runs `body` (a real failure at the last step of a start)."""
    fake = cli.root / "fakebin"
    fake.mkdir()
    script = fake / "dnsmasq"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return {"PATH": f"{fake}:{os.environ['PATH']}"}


def test_a_failure_half_way_through_start_is_rolled_back(cli: NetCli) -> None:
    cli.ok("net-define", cli.xml("f", _nat("f", 6)))
    before = cli.snapshot()
    env = _fake_dnsmasq(cli, "echo 'dnsmasq: failed to bind DHCP server socket' >&2; exit 2")
    cli.fails(1, "net-start", "f", env=env, match="dnsmasq failed to start .*failed to bind")
    assert cli.ok("net-list", "--all").count("inactive") == 1
    assert cli.snapshot() == before  # no bridge, no table, ip_forward back, no file


def test_a_start_killed_half_way_is_taken_back(cli: NetCli) -> None:
    cli.ok("net-define", cli.xml("s", _nat("s", 7)))
    before = cli.snapshot()
    env = _fake_dnsmasq(cli, "while :; do sleep 0.1; done")
    proc = subprocess.Popen(
        cli.argv("net-start", "s"), env=cli.env(env), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    conf = cli.root / "run" / "net" / "s" / "dnsmasq.conf"
    try:
        cli.wait_for("the start to reach dnsmasq", lambda: conf.exists(), timeout=60)
        time.sleep(0.3)
        assert "vmkbr0" in sh(cli.host, "ip", "link", "show").stdout
    finally:
        proc.kill()  # SIGKILL: nothing of vmkit runs after this
        proc.wait(timeout=10)
    for pid in cli.pids():  # the fake dnsmasq, orphaned
        os.kill(pid, signal.SIGKILL)
    cli.wait_for("the fake dnsmasq to die", lambda: not cli.pids())
    listed = cli.ok("net-list", "--all")  # reconciles: takes back what the start made
    assert " s      inactive" in listed
    after = cli.snapshot()
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    cli.ok("net-start", "s")
    cli.ok("net-destroy", "s")


def test_ip_forward_is_put_back_by_the_last_network(cli: NetCli) -> None:
    sh(cli.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    cli.ok("net-define", cli.xml("a", _nat("a", 8)))
    cli.ok("net-define", cli.xml("b", _nat("b", 9)))
    cli.ok("net-start", "a")
    cli.ok("net-start", "b")
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    read = ["cat", str(forward)]
    assert sh(cli.host, *read).stdout.strip() == "1"
    cli.ok("net-destroy", "a")
    assert sh(cli.host, *read).stdout.strip() == "1"
    cli.ok("net-destroy", "b")
    assert sh(cli.host, *read).stdout.strip() == "0"
