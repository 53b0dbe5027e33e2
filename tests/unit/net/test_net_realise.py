"""The plan of bringing a network up, refusals from what the host holds, rollback and teardown,
against a recording fake host (no root)."""

from __future__ import annotations

from ipaddress import ip_interface, ip_network
from pathlib import Path

import pytest
from netcases import load_case

from vmkit.errors import Conflict, InvalidConfig, NotFound
from vmkit.net.dnsmasq import DnsmasqFiles, DnsmasqProcess, render_dnsmasq_conf
from vmkit.net.fake import RecordingHost
from vmkit.net.links import HostView, Link, Route
from vmkit.net.nft import plan_firewall
from vmkit.net.realise import (
    AddAddress,
    AddBridge,
    ApplyFirewall,
    EnableForwarding,
    MakeDir,
    NetworkRuntime,
    SetUp,
    StartDnsmasq,
    WriteFile,
    check_network,
    forwarding_keys,
    plan_network,
    plan_teardown,
    refresh_network,
    start_network,
    stop_network,
)
from vmkit.net.sysctl import IPV4_FORWARD, IPV6_FORWARD

RUN = Path("/run/vmkit/net")


def _link(name: str, kind: str | None = None, index: int = 1) -> Link:
    return Link(name, index, kind, None, 1500, "02:00:00:00:00:01", True)


HOST = HostView(
    links={"lo": _link("lo"), "up0": _link("up0", index=2)},
    routes=(
        Route(ip_network("0.0.0.0/0"), "up0"),
        Route(ip_network("198.51.100.0/24"), "up0"),
    ),
    addresses=(("up0", ip_interface("198.51.100.1/24")), ("lo", ip_interface("127.0.0.1/8"))),
)


def test_plan_of_a_nat_network() -> None:
    net = load_case("nat")
    files = DnsmasqFiles.in_dir(RUN / "nat1")
    firewall = plan_firewall(net)
    assert firewall is not None
    assert plan_network(net, HOST, RUN) == [
        MakeDir(RUN / "nat1"),
        AddBridge("vk-nat1", stp=True, delay=0, mac="52:54:00:7e:4b:36", mtu=None),
        AddAddress("vk-nat1", ip_interface("10.231.1.1/24")),
        SetUp("vk-nat1"),
        ApplyFirewall(firewall),
        EnableForwarding("nat1", (IPV4_FORWARD,)),
        WriteFile(files.conf, render_dnsmasq_conf(net, files)),
        StartDnsmasq(files),
    ]


def test_plans_per_mode() -> None:
    kinds = {
        case: [type(s).__name__ for s in plan_network(load_case(case), HOST, RUN)]
        for case in ["route", "open", "hostonly", "isolated"]
    }
    common = ["MakeDir", "AddBridge", "AddAddress", "SetUp"]
    assert kinds["route"] == [
        *common,
        "ApplyFirewall",
        "EnableForwarding",
        "WriteFile",
        "StartDnsmasq",
    ]
    assert kinds["open"] == [*common, "EnableForwarding", "WriteFile", "StartDnsmasq"]
    assert kinds["hostonly"] == [*common, "ApplyFirewall", "WriteFile", "StartDnsmasq"]
    assert kinds["isolated"] == ["MakeDir", "AddBridge", "SetUp", "ApplyFirewall"]


def test_bridge_mode_makes_nothing_but_needs_the_bridge() -> None:
    net = load_case("bridge")
    seen = HostView(links={"br-lan": _link("br-lan", "bridge")})
    assert plan_network(net, seen, RUN) == []
    with pytest.raises(NotFound) as err:
        plan_network(net, HOST, RUN)
    assert str(err.value) == "bridge 'br-lan' of network 'lan' does not exist"
    with pytest.raises(InvalidConfig) as err2:
        plan_network(net, HostView(links={"br-lan": _link("br-lan", "veth")}), RUN)
    assert str(err2.value) == "interface 'br-lan' of network 'lan' is not a bridge"


def test_bridge_name_in_use_is_refused() -> None:
    seen = HostView(links={**HOST.links, "vk-nat1": _link("vk-nat1", "bridge", 9)})
    with pytest.raises(Conflict) as err:
        plan_network(load_case("nat"), seen, RUN)
    assert str(err.value) == "bridge name 'vk-nat1' is already in use"


def test_missing_forward_dev_is_refused() -> None:
    with pytest.raises(NotFound) as err:
        plan_network(load_case("route"), HostView(links={"lo": _link("lo")}), RUN)
    assert str(err.value) == "forward dev 'up0' of network 'route1' does not exist"


def test_subnet_overlapping_a_route_or_address_is_refused() -> None:
    seen = HostView(
        links=HOST.links,
        routes=(*HOST.routes, Route(ip_network("10.231.0.0/16"), "up0")),
        addresses=(*HOST.addresses, ("up0", ip_interface("10.231.1.77/32"))),
    )
    with pytest.raises(Conflict) as err:
        plan_network(load_case("nat"), seen, RUN)
    assert str(err.value) == (
        "network 'nat1': subnet 10.231.1.0/24 overlaps route 10.231.0.0/16 dev up0; "
        "subnet 10.231.1.0/24 overlaps address 10.231.1.77/32 of up0"
    )


def test_forwarding_keys() -> None:
    assert forwarding_keys(load_case("nat-full")) == (IPV4_FORWARD, IPV6_FORWARD)
    assert forwarding_keys(load_case("open")) == (IPV4_FORWARD,)
    assert forwarding_keys(load_case("hostonly")) == ()


def test_start_records_everything_and_stop_takes_it_back() -> None:
    host = RecordingHost(seen=HOST)
    rt = start_network(load_case("nat"), RUN, "ns1", host=host)
    files = rt.dnsmasq_files
    assert rt == NetworkRuntime(
        name="nat1",
        netns="ns1",
        run_dir=RUN,
        bridge="vk-nat1",
        bridge_created=True,
        made_dir=True,
        table="vmkit_nat1",
        forwarding=(IPV4_FORWARD,),
        files=(files.conf, files.pid, files.leases),
        dnsmasq=DnsmasqProcess(4242, 1),
    )
    assert NetworkRuntime.from_json(rt.to_json()) == rt
    host.calls.clear()
    stop_network(rt, host=host)
    assert host.calls == [
        ("stop_dnsmasq", 4242),
        ("remove_file", files.conf),
        ("remove_file", files.pid),
        ("remove_file", files.leases),
        ("remove_firewall", "vmkit_nat1"),
        ("release_forwarding", (IPV4_FORWARD,)),
        ("delete_link", "vk-nat1"),
        ("remove_dir", RUN / "nat1"),
    ]
    assert plan_teardown(rt) == []


@pytest.mark.parametrize(
    ("fail_on", "undone"),
    [
        ("add_bridge", ["delete_link", "remove_dir"]),
        ("apply_firewall", ["remove_firewall", "delete_link", "remove_dir"]),
        (
            "acquire_forwarding",
            ["release_forwarding", "remove_firewall", "delete_link", "remove_dir"],
        ),
        (
            "start_dnsmasq",
            [
                "remove_file",
                "remove_file",
                "remove_file",
                "release_forwarding",
                "remove_firewall",
                "delete_link",
                "remove_dir",
            ],
        ),
    ],
)
def test_failure_half_way_rolls_back_every_step_done(fail_on: str, undone: list[str]) -> None:
    host = RecordingHost(seen=HOST, fail_on=fail_on)
    with pytest.raises(OSError, match=f"injected failure in {fail_on}"):
        start_network(load_case("nat"), RUN, host=host)
    names = [name for name, _ in host.calls]
    assert names[names.index(fail_on) + 1 :] == undone


def test_rollback_failure_is_noted_on_the_original_error() -> None:
    host = RecordingHost(seen=HOST, fail_on="apply_firewall")
    original = host._record

    def record(name: str, arg: object = None) -> None:
        if name == "delete_link":
            raise OSError("busy")
        original(name, arg)

    host._record = record  # type: ignore[method-assign]
    with pytest.raises(OSError) as err:
        start_network(load_case("nat"), RUN, host=host)
    assert "rollback step failed too: busy" in (err.value.__notes__ or [])


def test_stop_tries_every_step_and_raises_the_first_failure() -> None:
    host = RecordingHost(seen=HOST)
    rt = start_network(load_case("nat"), RUN, host=host)
    host.calls.clear()
    host.fail_on = "remove_firewall"
    with pytest.raises(OSError, match="remove_firewall"):
        stop_network(rt, host=host)
    assert [n for n, _ in host.calls][-3:] == ["release_forwarding", "delete_link", "remove_dir"]


def test_check_and_refresh_a_running_network() -> None:
    host = RecordingHost(seen=HOST)
    net = load_case("nat")
    rt = start_network(net, RUN, host=host)
    assert check_network(rt, host=host) == []
    host.missing = {"dnsmasq", "vmkit_nat1"}
    assert check_network(rt, host=host) == [
        "nftables table inet vmkit_nat1 is missing",
        "dnsmasq (pid 4242) is not running",
    ]
    host.calls.clear()
    host.next_pid = 5000
    rt2 = refresh_network(rt, net, host=host)
    assert rt2.dnsmasq == DnsmasqProcess(5000, 1)
    assert [n for n, _ in host.calls] == [
        "apply_firewall",
        "stop_dnsmasq",
        "write_file",
        "start_dnsmasq",
    ]
