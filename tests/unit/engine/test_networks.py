"""Engine logic of virtual networks on a temporary vmkit root (real SQLite store) and a recording
fake host (no root, no kernel objects): define / create / start / destroy / undefine, refusals and
rollback, reconcile (a dead dnsmasq, a start killed half way), the default network and what a
domain NIC asks for."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_interface, ip_network
from pathlib import Path

import pytest

from vmkit.engine import net_records, networks
from vmkit.engine.context import Context
from vmkit.engine.net_records import STARTING, encode_payload, presumed_runtime
from vmkit.errors import Conflict, InvalidConfig, NotFound, WrongState
from vmkit.net.fake import RecordingHost
from vmkit.net.links import HostView, Link, Route
from vmkit.state.paths import Paths
from vmkit.state.records import NETWORK


def _link(name: str, index: int, kind: str | None = None, mac: str | None = None) -> Link:
    return Link(name, index, kind, None, 1500, mac or f"02:00:00:00:00:{index:02x}", True)


SEEN = HostView(
    links={"lo": _link("lo", 1), "up0": _link("up0", 2)},
    routes=(
        Route(ip_network("0.0.0.0/0"), "up0"),
        Route(ip_network("192.168.122.0/24"), "up0"),  # the default network must avoid it
    ),
    addresses=(("up0", ip_interface("192.168.122.7/24")),),
)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> RecordingHost:
    fake = RecordingHost(seen=SEEN)
    monkeypatch.setattr(net_records, "host_factory", lambda run_dir: fake)
    return fake


@pytest.fixture
def ctx(tmp_path: Path, host: RecordingHost) -> Iterator[Context]:
    c = Context.open(Paths(tmp_path / "lib", tmp_path / "run", tmp_path / "cache"))
    yield c
    c.close()


def nat_xml(name: str = "nat1", third: int = 1, extra: str = "", bridge: str = "") -> str:
    br = f"<bridge name='{bridge}'/>" if bridge else ""
    return (
        f"<network><name>{name}</name><forward mode='nat'/>{br}{extra}"
        f"<ip address='10.231.{third}.1' prefix='24'><dhcp>"
        f"<range start='10.231.{third}.100' end='10.231.{third}.199'/></dhcp></ip></network>"
    )


def define(ctx: Context, xml: str) -> networks.NetworkEntry:
    return networks.define_network(ctx, networks.parse_network_xml(xml, "test.xml"))


def names(host: RecordingHost) -> list[str]:
    return [call for call, _ in host.calls]


# ---------------------------------------------------------------------------------------------
# define, start, destroy, undefine


def test_define_fills_defaults_and_start_records_the_run(ctx: Context, host: RecordingHost) -> None:
    entry = define(ctx, nat_xml())
    assert entry.net.bridge_name == "vmkbr0" and entry.net.mac and entry.net.uuid
    assert not entry.active and networks.info(ctx, "nat1").state == "inactive"
    entry, done = networks.start(ctx, "nat1")
    assert done == "started" and entry.active
    assert names(host)[:4] == ["make_dir", "add_bridge", "add_address", "set_up"]
    assert "start_dnsmasq" in names(host)
    row = networks.info(ctx, entry.uuid)
    assert (row.state, row.bridge, row.mode, row.problems) == ("active", "vmkbr0", "nat", [])
    assert [r.name for r in networks.list_networks(ctx)] == ["nat1"]


def test_destroy_takes_everything_back_and_undefine_removes_it(
    ctx: Context, host: RecordingHost
) -> None:
    define(ctx, nat_xml())
    networks.start(ctx, "nat1")
    host.calls.clear()
    networks.destroy(ctx, "nat1")
    assert names(host) == [
        "stop_dnsmasq",
        "remove_file",
        "remove_file",
        "remove_file",
        "remove_firewall",
        "release_forwarding",
        "delete_link",
        "remove_dir",
    ]
    entry = networks.lookup(ctx, "nat1")
    assert not entry.active and ctx.store.get_object_runtime(NETWORK, entry.uuid) is None
    with pytest.raises(WrongState, match="not active"):
        networks.destroy(ctx, "nat1")
    _, gone = networks.undefine(ctx, "nat1")
    assert gone and networks.list_networks(ctx) == []
    with pytest.raises(NotFound, match="failed to get network 'nat1'"):
        networks.info(ctx, "nat1")


def test_undefine_of_an_active_network_makes_it_transient(ctx: Context) -> None:
    define(ctx, nat_xml())
    networks.start(ctx, "nat1")
    _, gone = networks.undefine(ctx, "nat1")
    assert not gone and not networks.info(ctx, "nat1").persistent
    networks.destroy(ctx, "nat1")
    assert networks.list_networks(ctx) == []


def test_redefine_keeps_uuid_bridge_and_mac(ctx: Context) -> None:
    first = define(ctx, nat_xml())
    again = define(ctx, nat_xml(extra="<domain name='lab.test'/>"))
    assert (again.uuid, again.net.bridge_name, again.net.mac) == (
        first.uuid,
        first.net.bridge_name,
        first.net.mac,
    )
    assert again.net.domain is not None


def test_redefine_of_an_active_network_changes_the_next_start_only(ctx: Context) -> None:
    define(ctx, nat_xml())
    networks.start(ctx, "nat1")
    define(ctx, nat_xml(extra="<domain name='lab.test'/>"))
    assert "lab.test" not in networks.dumpxml(ctx, "nat1")
    assert "lab.test" in networks.dumpxml(ctx, "nat1", inactive=True)


@pytest.mark.parametrize(
    ("xml", "error", "message"),
    [
        (
            nat_xml("nat2", extra=""),
            Conflict,
            r"subnet 10\.231\.1\.0/24 of network 'nat2' overlaps",
        ),
        (nat_xml("nat2", third=2, bridge="vmkbr0"), Conflict, "bridge name 'vmkbr0' is already"),
        (nat_xml("nat2", third=2, bridge="a" * 16), InvalidConfig, "longer than 15"),
    ],
)
def test_define_refuses_conflicts(
    ctx: Context, xml: str, error: type[Exception], message: str
) -> None:
    define(ctx, nat_xml())
    with pytest.raises(error, match=message):
        define(ctx, xml)
    assert [e.name for e in net_records.all_networks(ctx)] == ["nat1"]


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        ("<ip address='10.1.0.1' prefix='24'><dhcp><range start='10.2.0.2' end='10.2.0.9'/>"
         "</dhcp></ip>", "dhcp range start 10.2.0.2 is outside subnet"),
        ("<ip address='10.1.0.1' prefix='24'><dhcp><range start='10.1.0.9' end='10.1.0.2'/>"
         "</dhcp></ip>", "reversed"),
        ("<ip address='10.1.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01' ip='10.3.0.5'/>"
         "</dhcp></ip>", "outside subnet"),
        ("<ip address='10.1.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01' ip='10.1.0.5'/>"
         "<host mac='52:54:00:00:00:01' ip='10.1.0.6'/></dhcp></ip>", "duplicate dhcp host MAC"),
        ("<ip address='10.1.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01' ip='10.1.0.5'/>"
         "<host mac='52:54:00:00:00:02' ip='10.1.0.5'/></dhcp></ip>", "duplicate dhcp host IP"),
    ],
)  # fmt: skip
def test_bad_definitions_are_refused_with_the_place(ip: str, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as err:
        networks.parse_network_xml(f"<network><name>x</name>{ip}</network>", "x.xml")
    assert "Failed to define network from x.xml" in str(err.value)


def test_start_refuses_what_the_host_holds_and_records_nothing(
    ctx: Context, host: RecordingHost
) -> None:
    entry = define(ctx, nat_xml(third=1, extra="<forward mode='nat' dev='eth9'/>").replace(
        "<forward mode='nat'/>", ""
    ))  # fmt: skip
    with pytest.raises(NotFound, match="forward dev 'eth9' of network 'nat1' does not exist"):
        networks.start(ctx, "nat1")
    assert ctx.store.get_object_runtime(NETWORK, entry.uuid) is None
    define(ctx, nat_xml("clash").replace("10.231.1.", "192.168.122."))
    with pytest.raises(Conflict, match=r"overlaps route 192\.168\.122\.0/24 dev up0"):
        networks.start(ctx, "clash")
    assert host.calls == [] and networks.info(ctx, "clash").state == "inactive"


def test_a_failure_half_way_through_start_is_rolled_back(ctx: Context, host: RecordingHost) -> None:
    entry = define(ctx, nat_xml())
    host.fail_on = "start_dnsmasq"
    with pytest.raises(OSError, match="injected failure in start_dnsmasq"):
        networks.start(ctx, "nat1")
    done = names(host)
    assert done.index("delete_link") > done.index("remove_firewall") > done.index("start_dnsmasq")
    assert "release_forwarding" in done and done[-1] == "remove_dir"
    assert ctx.store.get_object_runtime(NETWORK, entry.uuid) is None


def test_create_is_transient_and_a_failed_create_leaves_nothing(
    ctx: Context, host: RecordingHost
) -> None:
    entry = networks.create_network(ctx, networks.parse_network_xml(nat_xml(), "x"))
    assert entry.active and not entry.definition.persistent
    with pytest.raises(Conflict, match="already exists"):
        networks.create_network(ctx, networks.parse_network_xml(nat_xml(), "x"))
    with pytest.raises(WrongState, match="transient"):
        networks.set_autostart(ctx, "nat1", True)
    networks.destroy(ctx, "nat1")
    assert networks.list_networks(ctx) == []
    host.fail_on = "apply_firewall"
    with pytest.raises(OSError):
        networks.create_network(ctx, networks.parse_network_xml(nat_xml(), "x"))
    assert net_records.all_networks(ctx) == []


# ---------------------------------------------------------------------------------------------
# reconcile


def test_a_dead_dnsmasq_is_reported_and_repaired(ctx: Context, host: RecordingHost) -> None:
    define(ctx, nat_xml())
    networks.start(ctx, "nat1")
    host.missing.add("dnsmasq")
    row = networks.info(ctx, "nat1")
    assert row.state == "active" and row.problems == ["dnsmasq (pid 4242) is not running"]
    with pytest.raises(WrongState, match=r"already active but dnsmasq .* net-start --force nat1"):
        networks.start(ctx, "nat1")
    host.calls.clear()
    host.next_pid = 4343
    networks.ensure_network_active(ctx, "nat1")  # what a domain start does
    assert "start_dnsmasq" in names(host) and "add_bridge" not in names(host)
    host.missing.clear()
    assert networks.info(ctx, "nat1").problems == []
    rt = networks.lookup(ctx, "nat1").runtime
    assert rt is not None and rt.dnsmasq is not None and rt.dnsmasq.pid == 4343


def test_force_start_restarts_a_network_whose_bridge_is_gone(
    ctx: Context, host: RecordingHost
) -> None:
    define(ctx, nat_xml())
    networks.start(ctx, "nat1")
    host.missing.add("vmkbr0")
    host.calls.clear()
    entry, done = networks.start(ctx, "nat1", force=True)
    assert done == "repaired" and entry.active
    assert "stop_dnsmasq" in names(host) and "add_bridge" in names(host)


def test_a_start_killed_half_way_is_taken_back_by_the_next_command(
    ctx: Context, host: RecordingHost
) -> None:
    entry = define(ctx, nat_xml())
    net = entry.net
    rt = presumed_runtime(net, net_records.net_run_dir(ctx))
    ctx.store.put_object_runtime(NETWORK, entry.uuid, encode_payload(rt, "", STARTING))
    assert networks.lookup(ctx, "nat1").starting
    host.seen = HostView(links={**SEEN.links, "vmkbr0": _link("vmkbr0", 9, "bridge", net.mac)})
    rows = networks.list_networks(ctx)
    assert rows[0].state == "inactive"
    assert ("delete_link", "vmkbr0") in host.calls
    assert ctx.store.get_object_runtime(NETWORK, entry.uuid) is None


def test_a_killed_start_never_deletes_a_bridge_that_is_not_ours(
    ctx: Context, host: RecordingHost
) -> None:
    entry = define(ctx, nat_xml())
    rt = presumed_runtime(entry.net, net_records.net_run_dir(ctx))
    ctx.store.put_object_runtime(NETWORK, entry.uuid, encode_payload(rt, "", STARTING))
    host.seen = HostView(links={**SEEN.links, "vmkbr0": _link("vmkbr0", 9, "bridge")})
    with pytest.raises(Conflict, match="bridge name 'vmkbr0' is already in use"):
        networks.start(ctx, "nat1")  # the interrupted start is settled first, then refused
    assert ("delete_link", "vmkbr0") not in host.calls
    assert ("remove_firewall", "vmkit_nat1") in host.calls


# ---------------------------------------------------------------------------------------------
# default network, domain side, autostart


def test_the_default_network_is_made_on_first_use_on_a_free_subnet(
    ctx: Context, host: RecordingHost
) -> None:
    point = networks.attach_point(ctx, "default")
    entry = networks.lookup(ctx, "default")
    assert point == networks.NicAttachment(entry.net.bridge_name or "", None)
    ip = entry.net.ipv4
    assert ip is not None and str(ip.subnet) == "192.168.123.0/24"
    assert entry.active and entry.definition.autostart
    assert networks.attach_point(ctx, "default") == point
    assert len([c for c in host.calls if c[0] == "add_bridge"]) == 1


def test_net_start_default_creates_it(ctx: Context) -> None:
    entry, done = networks.start(ctx, "default")
    assert done == "created" and entry.active


def test_a_failed_default_leaves_nothing(ctx: Context, host: RecordingHost) -> None:
    host.fail_on = "start_dnsmasq"
    with pytest.raises(OSError):
        networks.attach_point(ctx, "default")
    assert net_records.all_networks(ctx) == []


def test_attach_point_says_which_network_is_missing_or_inactive(ctx: Context) -> None:
    with pytest.raises(NotFound, match="network 'lab' not found"):
        networks.attach_point(ctx, "lab")
    define(ctx, nat_xml("lab", extra="<mtu size='1400'/>"))
    with pytest.raises(WrongState, match="network 'lab' is not active"):
        networks.attach_point(ctx, "lab")
    networks.start(ctx, "lab")
    assert networks.attach_point(ctx, "lab") == networks.NicAttachment("vmkbr0", 1400)
    assert networks.network_of_bridge(ctx, "vmkbr0") == "lab"
    assert networks.network_of_bridge(ctx, "up0") is None


def test_leases(ctx: Context) -> None:
    define(ctx, nat_xml())
    entry, _ = networks.start(ctx, "nat1")
    assert entry.runtime is not None
    leases = entry.runtime.dnsmasq_files.leases
    leases.parent.mkdir(parents=True, exist_ok=True)
    leases.write_text(
        "4102444800 52:54:00:aa:bb:cc 10.231.1.150 vm1 01:52:54:00:aa:bb:cc\n"
        "1000 52:54:00:aa:bb:dd 10.231.1.151 * *\n"  # expired long ago
        "0 52:54:00:aa:bb:ee 10.231.1.152 * *\n"
    )
    assert networks.lease_addresses(ctx, "nat1", "52:54:00:AA:BB:CC") == ["10.231.1.150/24"]
    assert networks.lease_addresses(ctx, "nat1", "52:54:00:aa:bb:dd") == []
    assert networks.lease_addresses(ctx, "nope", "52:54:00:aa:bb:cc") == []
    rows = networks.dhcp_leases(ctx, "nat1")
    assert [(r.address, r.hostname) for r in rows] == [
        ("10.231.1.150/24", "vm1"),
        ("10.231.1.152/24", None),
    ]
    assert [r.mac for r in networks.dhcp_leases(ctx, "nat1", "52:54:00:aa:bb:ee")] == [
        "52:54:00:aa:bb:ee"
    ]


def test_start_autostart_starts_marked_networks_and_reports_failures(
    ctx: Context, host: RecordingHost
) -> None:
    define(ctx, nat_xml("a", third=1))
    define(ctx, nat_xml("b", third=2))
    define(ctx, nat_xml("c", third=3))
    networks.set_autostart(ctx, "a", True)
    networks.set_autostart(ctx, "b", True)
    host.fail_on = None
    results = networks.start_autostart(ctx)
    assert results == [("a", None), ("b", None)]
    assert networks.start_autostart(ctx) == []
    networks.destroy(ctx, "b")
    host.fail_on = "apply_firewall"
    results = networks.start_autostart(ctx)
    assert [n for n, _ in results] == ["b"] and "injected failure" in (results[0][1] or "")


def test_edit_validates_before_saving(ctx: Context) -> None:
    entry = define(ctx, nat_xml())
    xml = entry.definition.xml
    assert networks.edit_xml(ctx, "nat1", xml) is None
    with pytest.raises(InvalidConfig, match="reversed"):
        networks.edit_xml(ctx, "nat1", xml.replace("10.231.1.100", "10.231.1.250"))
    with pytest.raises(InvalidConfig, match="cannot be changed by net-edit"):
        networks.edit_xml(ctx, "nat1", xml.replace("<name>nat1<", "<name>nat9<"))
    assert networks.lookup(ctx, "nat1").definition.xml == xml
    edited = networks.edit_xml(ctx, "nat1", xml.replace("10.231.1.199", "10.231.1.150"))
    assert edited is not None and "10.231.1.150" in edited.definition.xml
    assert edited.uuid == entry.uuid


def test_a_run_of_an_earlier_boot_is_over(ctx: Context, host: RecordingHost) -> None:
    entry = define(ctx, nat_xml())
    networks.start(ctx, "nat1")
    networks.set_autostart(ctx, "nat1", True)
    obj = ctx.store.get_object_runtime(NETWORK, entry.uuid)
    assert obj is not None and obj.payload["boot_id"]
    ctx.store.put_object_runtime(NETWORK, entry.uuid, obj.payload | {"boot_id": "earlier"})
    assert networks.info(ctx, "nat1").state == "inactive"  # settled: what was left is taken back
    assert networks.start_autostart(ctx) == [("nat1", None)]
