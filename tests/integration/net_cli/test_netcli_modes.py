"""The network commands for real, each model in a throwaway namespace: define, start, list, info,
dumpxml, dhcp-leases, destroy, undefine; a guest gets its lease; after destroy the namespace
holds exactly what it held before (links, addresses, routes, nft ruleset, ip_forward, processes,
run-dir files). Also the `default` network made by `net-start default`, and a port forward that
carries a TCP connection from upstream into a guest."""

from __future__ import annotations

import difflib
import json

import pytest
from netcli_lab import UP_HOST, UP_PEER, NetCli, sh

pytestmark = pytest.mark.integration


def _same(before: dict[str, object], after: dict[str, object]) -> None:
    for key in before:
        if before[key] != after[key]:
            diff = difflib.unified_diff(
                str(before[key]).splitlines(), str(after[key]).splitlines(), lineterm=""
            )
            raise AssertionError(f"{key} differs after destroy:\n" + "\n".join(diff))


def _row(table: str, first: str) -> list[str]:
    """The cells of the table line that starts with `first`."""
    return next(line.split() for line in table.splitlines() if line.split()[:1] == [first])


DHCP = (
    "<ip address='10.232.{n}.1' prefix='24'><dhcp>"
    "<range start='10.232.{n}.100' end='10.232.{n}.199'/></dhcp></ip>"
)
MODES = {
    "nat": ("<forward mode='nat'/>", DHCP, "nat"),
    "route": ("<forward mode='route' dev='up0'/>", DHCP, "route"),
    "open": ("<forward mode='open'/>", DHCP, "open"),
    "isolated": ("", "", "isolated"),
    "hostonly": ("", DHCP, "host-only"),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_lifecycle_of_each_model_leaves_nothing(cli: NetCli, mode: str) -> None:
    forward, ip, shown = MODES[mode]
    n = list(MODES).index(mode) + 1
    xml = cli.xml(mode, f"<network><name>{mode}</name>{forward}{ip.format(n=n)}</network>")
    before = cli.snapshot()
    assert cli.ok("net-define", xml) == f"Network {mode} defined from {xml}\n\n"
    assert cli.ok("net-list") == (" Name   State   Autostart   Persistent\n" + "-" * 40 + "\n\n")
    assert _row(cli.ok("net-list", "--all"), mode) == [mode, "inactive", "no", "yes"]
    assert cli.ok("net-start", mode) == f"Network {mode} started\n\n"
    info = cli.ok("net-info", mode).splitlines()
    assert info[0] == f"Name:           {mode}" and info[2] == "Active:         yes"
    assert info[5] == "Bridge:         vmkbr0"
    row = cli.ok("net-list", "--name")
    assert row == f"{mode}\n\n"
    data = json.loads(cli.ok("net-info", mode, "--json"))
    assert (data["state"], data["mode"], data["problems"]) == ("active", shown, [])
    dumped = cli.ok("net-dumpxml", mode)
    assert '<bridge name="vmkbr0" stp="on" delay="0"/>' in dumped
    assert cli.ok("net-uuid", mode).strip() == data["uuid"]
    assert cli.ok("net-name", data["uuid"]).strip() == mode
    assert "vmkbr0" in sh(cli.host, "ip", "link", "show", "vmkbr0").stdout
    if ip:
        g = cli.guest("g1", "vmkbr0", "52:54:00:00:01:10")
        got = cli.dhcp(g)
        assert got is not None and got.startswith(f"10.232.{n}.1"), got
        leases = cli.ok("net-dhcp-leases", mode)
        assert "52:54:00:00:01:10" in leases and f"{got}/24" in leases and "ipv4" in leases
        sh(cli.host, "ip", "link", "del", "g1p")
    assert cli.ok("net-destroy", mode) == f"Network {mode} destroyed\n\n"
    assert cli.ok("net-undefine", mode) == f"Network {mode} has been undefined\n\n"
    after = cli.snapshot()
    after["netns"] = before["netns"]  # the guest namespace is the lab's
    _same(before, after)


def test_bridge_mode_uses_an_existing_host_bridge_and_leaves_it(cli: NetCli) -> None:
    sh(cli.host, "ip", "link", "add", "hostbr0", "type", "bridge")
    before = cli.snapshot()
    xml = cli.xml(
        "br", "<network><name>br</name><forward mode='bridge'/><bridge name='hostbr0'/></network>"
    )
    cli.ok("net-define", xml)
    cli.ok("net-start", "br")
    assert json.loads(cli.ok("net-info", "br", "--json"))["bridge"] == "hostbr0"
    cli.ok("net-destroy", "br")
    cli.ok("net-undefine", "br")
    _same(before, cli.snapshot())
    sh(cli.host, "ip", "link", "del", "hostbr0")
    cli.ok("net-define", xml)
    cli.fails(3, "net-start", "br", match="bridge 'hostbr0' of network 'br' does not exist")


def test_net_start_default_makes_the_default_network(cli: NetCli) -> None:
    before = cli.snapshot()
    out = cli.ok("net-start", "default")
    assert out.startswith("Network default defined (NAT, 192.168.122.1/24 on bridge vmkbr0)")
    assert _row(cli.ok("net-list"), "default") == ["default", "active", "yes", "yes"]
    cli.ok("net-destroy", "default")
    cli.ok("net-undefine", "default")
    _same(before, cli.snapshot())


def test_transient_network_is_gone_after_destroy(cli: NetCli) -> None:
    before = cli.snapshot()
    xml = cli.xml("tr", f"<network><name>tr</name>{DHCP.format(n=9)}</network>")
    assert cli.ok("net-create", xml) == f"Network tr created from {xml}\n\n"
    assert _row(cli.ok("net-list"), "tr") == ["tr", "active", "no", "no"]
    cli.fails(5, "net-autostart", "tr", match="transient")
    cli.ok("net-destroy", "tr")
    assert cli.ok("net-list", "--all", "--name") == "\n"
    _same(before, cli.snapshot())


def test_port_forward_carries_tcp_from_upstream_into_a_guest(cli: NetCli) -> None:
    xml = cli.xml(
        "pf", f"<network><name>pf</name><forward mode='nat'/>{DHCP.format(n=7)}</network>"
    )
    cli.ok("net-define", xml)
    cli.ok("net-start", "pf")
    before = cli.snapshot()
    g = cli.guest("g1", "vmkbr0", "52:54:00:00:07:10")
    host_xml = "<host mac='52:54:00:00:07:10' ip='10.232.7.5'/>"
    out = cli.ok("net-update", "pf", "add", "ip-dhcp-host", host_xml, "--live", "--config")
    assert out == "Updated network pf persistent config and live state\n\n"
    assert cli.dhcp(g) == "10.232.7.5"  # the static host, given out by the restarted dnsmasq
    cli.serve(g, 80, "guest")
    out = cli.ok("port-forward", "add", "pf", "--host-port", "8080", "--guest-port", "80",
                 "--guest-ip", "10.232.7.5")  # fmt: skip
    assert out == "Port tcp/8080 forwarded to 10.232.7.5:80 on network pf\n\n"
    assert cli.connect(cli.upstream, UP_HOST, 8080) == f"guest {UP_PEER}"
    cli.fails(4, "port-forward", "add", "pf", "--host-port", "8080", "--guest-ip", "10.232.7.6",
              match="already forwarded")  # fmt: skip
    listed = cli.ok("port-forward", "list")
    assert _row(listed, "pf") == ["pf", "tcp", "*", "8080", "10.232.7.5", "80"]
    cli.ok("net-destroy", "pf")  # the forward is in the definition: it comes back with a start
    cli.ok("net-start", "pf")
    sh(cli.host, "ip", "link", "set", "g1p", "master", "vmkbr0")  # a domain start replugs its tap
    assert cli.dhcp(g) == "10.232.7.5"
    assert cli.connect(cli.upstream, UP_HOST, 8080) == f"guest {UP_PEER}"
    cli.ok("port-forward", "remove", "pf", "--host-port", "8080")
    assert cli.connect(cli.upstream, UP_HOST, 8080).startswith("failed")
    cli.ok("net-destroy", "pf")
    cli.ok("net-undefine", "pf")
    after = cli.snapshot()
    sh(cli.host, "ip", "link", "del", "g1p")
    assert after["processes"] == [] and after["files"] == []
    assert "vmkit" not in str(after["ruleset"]) and "vmkbr0" not in str(after["links"])
    assert before != after


def test_edit_autostart_and_start_autostart(cli: NetCli) -> None:
    xml = cli.xml("ed", f"<network><name>ed</name>{DHCP.format(n=8)}</network>")
    cli.ok("net-define", xml)
    editor = cli.root / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/$FROM/$TO/" "$1"\n')
    editor.chmod(0o755)
    env = {"EDITOR": str(editor), "FROM": "10.232.8.199", "TO": "10.232.8.150"}
    assert cli.ok("net-edit", "ed", env=env) == "Network ed XML configuration edited.\n\n"
    assert "10.232.8.150" in cli.ok("net-dumpxml", "ed")
    bad = env | {"FROM": "10.232.8.150", "TO": "10.232.9.150"}
    cli.fails(2, "net-edit", "ed", env=bad, match="outside subnet 10.232.8.0/24")
    assert "10.232.8.150" in cli.ok("net-dumpxml", "ed")  # nothing saved
    same = env | {"FROM": "nothing-matches", "TO": "x"}
    assert cli.ok("net-edit", "ed", env=same) == "Network ed XML configuration not changed.\n\n"
    assert cli.ok("net-autostart", "ed") == "Network ed marked as autostarted\n\n"
    assert cli.ok("net-start-autostart") == "Network ed started\n\n"
    assert cli.ok("net-start-autostart") == "\n"
    cli.ok("net-destroy", "ed")
    assert cli.ok("net-autostart", "--disable", "ed") == "Network ed unmarked as autostarted\n\n"
