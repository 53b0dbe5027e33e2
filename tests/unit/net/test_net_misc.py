"""IP forwarding bookkeeping, subnet choice for the default network, tap names and MACs."""

from __future__ import annotations

import random
from ipaddress import IPv4Network, ip_interface, ip_network
from pathlib import Path

import pytest

from vmkit.errors import Conflict, InvalidConfig
from vmkit.model.network import ForwardMode, validate_network
from vmkit.net import sysctl
from vmkit.net.links import HostView, Route
from vmkit.net.netns import check_netns_name, netns_argv
from vmkit.net.subnet import choose_subnet, default_network, used_subnets
from vmkit.net.sysctl import (
    IPV4_FORWARD,
    Forwarding,
    ForwardingState,
    plan_acquire,
    plan_release,
)
from vmkit.net.taps import pick_tap_name, tap_mac


def test_first_user_records_and_turns_on_last_user_puts_back() -> None:
    s0 = ForwardingState()
    s1, w1 = plan_acquire(s0, "a", IPV4_FORWARD, "0")
    assert w1 == "1" and s1.prior == {IPV4_FORWARD: "0"}
    s2, w2 = plan_acquire(s1, "b", IPV4_FORWARD, "1")
    assert w2 is None and s2.users[IPV4_FORWARD] == ("a", "b") and s2.prior == s1.prior
    s3, w3 = plan_release(s2, "a", IPV4_FORWARD)
    assert w3 is None and s3.users[IPV4_FORWARD] == ("b",)
    s4, w4 = plan_release(s3, "b", IPV4_FORWARD)
    assert w4 == "0" and s4 == ForwardingState()


def test_forwarding_that_was_on_stays_on() -> None:
    s1, w1 = plan_acquire(ForwardingState(), "a", IPV4_FORWARD, "1")
    assert w1 is None
    s2, w2 = plan_release(s1, "a", IPV4_FORWARD)
    assert w2 is None and s2 == ForwardingState()


def test_acquire_twice_by_the_same_network_is_one_user() -> None:
    s1, _ = plan_acquire(ForwardingState(), "a", IPV4_FORWARD, "0")
    s2, _ = plan_acquire(s1, "a", IPV4_FORWARD, "1")
    assert s2.users[IPV4_FORWARD] == ("a",)


def test_forwarding_state_file_lives_only_while_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {IPV4_FORWARD: "0"}
    monkeypatch.setattr(sysctl, "read_sysctl", lambda key, netns=None: values[key])
    monkeypatch.setattr(
        sysctl, "write_sysctl", lambda key, value, netns=None: values.__setitem__(key, value)
    )
    fw = Forwarding(tmp_path, "ns1")
    fw.acquire("a", (IPV4_FORWARD,))
    fw.acquire("b", (IPV4_FORWARD,))
    assert values[IPV4_FORWARD] == "1"
    assert fw.path == tmp_path / "forwarding-ns1.json" and fw.path.exists()
    assert fw.users() == {IPV4_FORWARD: ("a", "b")}
    fw.release("a", (IPV4_FORWARD,))
    assert values[IPV4_FORWARD] == "1"
    fw.release("b", (IPV4_FORWARD,))
    assert values[IPV4_FORWARD] == "0"
    assert list(tmp_path.iterdir()) == []


def test_sysctl_keys_and_values_are_checked() -> None:
    nowhere = "vkt-never-created"  # were the checks broken: NotFound, never the root namespace
    with pytest.raises(InvalidConfig):
        sysctl.read_sysctl("kernel/panic", nowhere)
    with pytest.raises(InvalidConfig):
        sysctl.write_sysctl(IPV4_FORWARD, "1\n0", nowhere)


def test_choose_subnet_skips_used_and_forbidden() -> None:
    assert choose_subnet([]) == IPv4Network("192.168.122.0/24")
    used = [ip_network("192.168.122.0/24"), ip_network("192.168.123.0/25")]
    assert choose_subnet(used) == IPv4Network("192.168.124.0/24")
    everything192 = [ip_network("192.168.0.0/16"), ip_network("10.0.0.0/15")]
    assert choose_subnet(everything192) == IPv4Network("10.2.0.0/24")
    assert choose_subnet([ip_network("0.0.0.0/0")]) == IPv4Network("192.168.122.0/24")
    all_but_forbidden = [
        ip_network("192.168.0.0/16"),
        *ip_network("10.0.0.0/8").address_exclude(ip_network("10.255.255.0/24")),
    ]
    with pytest.raises(Conflict, match="no free /24"):
        choose_subnet(all_but_forbidden)


def test_used_subnets_ignores_default_loopback_and_link_local() -> None:
    view = HostView(
        routes=(Route(ip_network("0.0.0.0/0"), "eth0"), Route(ip_network("192.0.2.0/24"), "eth0")),
        addresses=(
            ("lo", ip_interface("127.0.0.1/8")),
            ("eth0", ip_interface("fe80::1/64")),
            ("eth0", ip_interface("192.0.2.2/24")),
        ),
    )
    assert used_subnets(view) == [ip_network("192.0.2.0/24"), ip_network("192.0.2.0/24")]


def test_default_network() -> None:
    net = default_network([ip_network("192.168.122.0/24")], {"vmkbr0"}, rng=random.Random(3))
    validate_network(net)
    assert net.name == "default" and net.mode is ForwardMode.NAT
    assert net.bridge_name == "vmkbr1"
    ip = net.ips[0]
    assert str(ip.interface) == "192.168.123.1/24"
    assert ip.dhcp and [str(r.start) for r in ip.dhcp.ranges] == ["192.168.123.2"]


def test_tap_names_and_macs() -> None:
    assert pick_tap_name({"vnet0", "vnet1"}) == "vnet2"
    assert tap_mac("52:54:00:D1:EF:74") == "fe:54:00:d1:ef:74"
    with pytest.raises(InvalidConfig):
        tap_mac("nonsense")


def test_netns_names_and_argv() -> None:
    assert netns_argv(None, ["nft", "-f", "-"]) == ["nft", "-f", "-"]
    assert netns_argv("vkt-1", ["nft"]) == ["ip", "netns", "exec", "vkt-1", "nft"]
    for bad in ["", "..", "a/b", "a b", "x" * 65]:
        with pytest.raises(InvalidConfig):
            check_netns_name(bad)
