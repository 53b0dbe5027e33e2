"""net-update (which definitions a change goes to, the <host> XML it takes, live application)
and port forwards (to a network or a domain, conflicts, pinning a leased address), on a real
store and a recording fake host."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from vmkit.engine import net_records, networks, portfwd
from vmkit.engine.context import Context
from vmkit.engine.net_update import update
from vmkit.errors import Conflict, InvalidConfig, NotFound, WrongState
from vmkit.model.network import Proto
from vmkit.net.fake import RecordingHost
from vmkit.state.paths import Paths
from vmkit.state.records import DOMAIN

HOST5 = "<host mac='52:54:00:00:00:05' ip='10.231.1.5' name='vm5'/>"


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> RecordingHost:
    fake = RecordingHost()
    monkeypatch.setattr(net_records, "host_factory", lambda run_dir: fake)
    return fake


@pytest.fixture
def ctx(tmp_path: Path, host: RecordingHost) -> Iterator[Context]:
    c = Context.open(Paths(tmp_path / "lib", tmp_path / "run", tmp_path / "cache"))
    yield c
    c.close()


def nat(ctx: Context, name: str = "nat1", third: int = 1, mode: str = "nat") -> None:
    fwd = f"<forward mode='{mode}'/>" if mode else ""
    xml = (
        f"<network><name>{name}</name>{fwd}<ip address='10.231.{third}.1' prefix='24'>"
        f"<dhcp><range start='10.231.{third}.100' end='10.231.{third}.199'/></dhcp></ip>"
        "</network>"
    )
    networks.define_network(ctx, networks.parse_network_xml(xml, "x"))


def hosts(net: object) -> list[str]:
    return [str(h.ip) for ip in net.ips for h in (ip.dhcp.hosts if ip.dhcp else ())]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# net-update


def test_current_means_live_when_active_and_config_when_inactive(
    ctx: Context, host: RecordingHost
) -> None:
    nat(ctx)
    entry, scope = update(ctx, "nat1", "add", "ip-dhcp-host", HOST5)
    assert (scope.live, scope.config) == (False, True) and hosts(entry.net) == ["10.231.1.5"]
    networks.start(ctx, "nat1")
    host.calls.clear()
    six = HOST5.replace(":05", ":06").replace(".5'", ".6'").replace("vm5", "vm6")
    entry, scope = update(ctx, "nat1", "add", "ip-dhcp-host", six)
    assert (scope.live, scope.config) == (True, False)
    assert hosts(entry.live) == ["10.231.1.5", "10.231.1.6"] and hosts(entry.net) == ["10.231.1.5"]
    assert [c for c, _ in host.calls if "dnsmasq" in c] == ["stop_dnsmasq", "start_dnsmasq"]
    seven = six.replace(":06", ":07").replace(".6'", ".7'").replace("vm6", "vm7")
    entry, scope = update(ctx, "nat1", "add", "ip-dhcp-host", seven, live=True, config=True)
    assert scope.describe() == "persistent config and live state"
    assert hosts(entry.net) == ["10.231.1.5", "10.231.1.7"] and len(hosts(entry.live)) == 3


def test_delete_and_modify_a_dhcp_host(ctx: Context) -> None:
    nat(ctx)
    update(ctx, "nat1", "add", "ip-dhcp-host", HOST5)
    entry, _ = update(
        ctx, "nat1", "modify", "ip-dhcp-host", HOST5.replace("10.231.1.5", "10.231.1.9")
    )
    assert hosts(entry.net) == ["10.231.1.9"]
    entry, _ = update(ctx, "nat1", "delete", "ip-dhcp-host", "<host mac='52:54:00:00:00:05'/>")
    assert hosts(entry.net) == []
    with pytest.raises(NotFound, match="couldn't locate a matching dhcp host"):
        update(ctx, "nat1", "delete", "ip-dhcp-host", "<host mac='52:54:00:00:00:05'/>")


def test_dns_hosts(ctx: Context, tmp_path: Path) -> None:
    nat(ctx)
    frag = tmp_path / "dns.xml"
    frag.write_text("<host ip='10.231.1.50'><hostname>db</hostname></host>")
    entry, _ = update(ctx, "nat1", "add", "dns-host", str(frag))
    assert entry.net.dns is not None and entry.net.dns.hosts[0].hostnames == ("db",)
    entry, _ = update(ctx, "nat1", "delete", "dns-host", "<host ip='10.231.1.50'/>")
    assert entry.net.dns is None


@pytest.mark.parametrize(
    ("section", "xml", "message"),
    [
        ("ip-dhcp-host", "<host mac='52:54:00:00:00:05' ip='10.9.9.9'/>", "outside subnet"),
        ("ip-dhcp-host", "<host mac='nope' ip='10.231.1.9'/>", "unicast MAC"),
        ("ip-dhcp-host", "<host mac='52:54:00:00:00:05' ip='10.231.1.9' color='red'/>",
         "attribute 'color' on element <host> is unknown"),
        ("ip-dhcp-host", "<range start='10.231.1.2' end='10.231.1.3'/>", "takes a <host>"),
        ("ip-dhcp-host", "<host", "malformed XML"),
        ("ip-dhcp-range", HOST5, "not supported by vmkit"),
        ("dns-host", "<host ip='10.231.1.50'/>", "needs a <hostname>"),
        ("ip-dhcp-host", "no-such-file.xml", "neither XML nor a readable file"),
    ],
)  # fmt: skip
def test_bad_update_input(ctx: Context, section: str, xml: str, message: str) -> None:
    nat(ctx)
    with pytest.raises(InvalidConfig, match=message):
        update(ctx, "nat1", "add", section, xml)


def test_duplicates_and_flags_are_refused(ctx: Context) -> None:
    nat(ctx)
    update(ctx, "nat1", "add", "ip-dhcp-host", HOST5)
    with pytest.raises(Conflict, match="existing dhcp host entry"):
        update(ctx, "nat1", "add", "ip-dhcp-host", HOST5.replace("10.231.1.5", "10.231.1.8"))
    with pytest.raises(WrongState, match="is not running"):
        update(ctx, "nat1", "add", "ip-dhcp-host", HOST5.replace(":05", ":02"), live=True)
    networks.create_network(
        ctx,
        networks.parse_network_xml(
            "<network><name>tr</name><ip address='10.231.9.1' prefix='24'><dhcp>"
            "<range start='10.231.9.10' end='10.231.9.20'/></dhcp></ip></network>",
            "x",
        ),
    )
    with pytest.raises(WrongState, match="transient"):
        update(ctx, "tr", "add", "ip-dhcp-host", HOST5.replace("1.5", "9.5"), config=True)
    entry, _ = update(ctx, "tr", "add", "ip-dhcp-host", HOST5.replace("1.5", "9.5"))
    assert hosts(entry.live) == ["10.231.9.5"] and hosts(entry.net) == ["10.231.9.5"]


def test_a_failed_live_update_puts_the_previous_state_back(
    ctx: Context, host: RecordingHost
) -> None:
    nat(ctx)
    networks.start(ctx, "nat1")
    host.fail_on = "start_dnsmasq"
    with pytest.raises(OSError):
        update(ctx, "nat1", "add", "ip-dhcp-host", HOST5)
    entry = networks.lookup(ctx, "nat1")
    assert entry.live is not None and hosts(entry.live) == []


# ---------------------------------------------------------------------------------------------
# port forwards


def test_forward_to_a_network_is_kept_in_both_definitions(
    ctx: Context, host: RecordingHost
) -> None:
    nat(ctx)
    networks.start(ctx, "nat1")
    host.calls.clear()
    t, pf = portfwd.add(
        ctx, "nat1", host_port=8080, guest_port=80, guest_ip=IPv4Address("10.231.1.5")
    )
    assert (t.network, pf.describe()) == ("nat1", "tcp/8080")
    assert ("apply_firewall", "vmkit_nat1") in host.calls
    entry = networks.lookup(ctx, "nat1")
    assert entry.net.port_forwards == entry.live.port_forwards == (pf,)  # type: ignore[union-attr]
    rows = portfwd.list_forwards(ctx)
    assert [(r.network, r.host_port, r.guest_ip, r.guest_port) for r in rows] == [
        ("nat1", 8080, "10.231.1.5", 80)
    ]
    with pytest.raises(Conflict, match="already forwarded"):
        portfwd.add(ctx, "nat1", host_port=8080, guest_ip=IPv4Address("10.231.1.6"))
    portfwd.add(ctx, "nat1", host_port=8080, proto=Proto.UDP, guest_ip=IPv4Address("10.231.1.6"))
    portfwd.remove(ctx, "nat1", host_port=8080)
    assert [r.proto for r in portfwd.list_forwards(ctx, "nat1")] == ["udp"]
    with pytest.raises(NotFound, match="no port forward tcp/8080"):
        portfwd.remove(ctx, "nat1", host_port=8080)


def test_forward_refusals(ctx: Context) -> None:
    nat(ctx)
    nat(ctx, "nat2", third=2)
    nat(ctx, "iso", third=3, mode="")
    with pytest.raises(InvalidConfig, match="give --guest-ip"):
        portfwd.add(ctx, "nat1", host_port=22)
    portfwd.add(ctx, "nat1", host_port=2222, guest_port=22, guest_ip=IPv4Address("10.231.1.5"))
    with pytest.raises(Conflict, match="already forwarded by network 'nat1'"):
        portfwd.add(ctx, "nat2", host_port=2222, guest_ip=IPv4Address("10.231.2.5"))
    with pytest.raises(InvalidConfig, match="in no subnet"):
        portfwd.add(ctx, "nat2", host_port=2223, guest_ip=IPv4Address("10.231.1.5"))
    with pytest.raises(InvalidConfig, match="need forward mode 'nat'"):
        portfwd.add(ctx, "iso", host_port=2224, guest_ip=IPv4Address("10.231.3.5"))
    with pytest.raises(NotFound, match="no network or domain named 'ghost'"):
        portfwd.add(ctx, "ghost", host_port=1)


def _domain(ctx: Context, name: str, mac: str, network: str = "nat1") -> None:
    xml = (
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>128</memory>"
        "<os><type>hvm</type></os><devices><interface type='network'>"
        f"<mac address='{mac}'/><source network='{network}'/></interface></devices></domain>"
    )
    ctx.store.define(DOMAIN, str(uuid.uuid4()), name, xml)


def test_forward_to_a_domain_uses_its_static_host_or_pins_its_lease(ctx: Context) -> None:
    nat(ctx)
    _domain(ctx, "web", "52:54:00:00:00:05")
    _domain(ctx, "db", "52:54:00:00:00:07")
    with pytest.raises(NotFound, match="cannot tell the address of domain 'web'"):
        portfwd.add(ctx, "web", host_port=8080, guest_port=80)
    update(ctx, "nat1", "add", "ip-dhcp-host", HOST5)
    t, pf = portfwd.add(ctx, "web", host_port=8080, guest_port=80)
    assert (t.domain, str(pf.guest_ip), t.leased) == ("web", "10.231.1.5", False)
    entry, _ = networks.start(ctx, "nat1")
    assert entry.runtime is not None
    entry.runtime.directory.mkdir(parents=True)  # the fake host makes no directory
    entry.runtime.dnsmasq_files.leases.write_text(
        "4102444800 52:54:00:00:00:07 10.231.1.150 db *\n"
    )
    t, pf = portfwd.add(ctx, "db", host_port=5432)
    assert (str(pf.guest_ip), t.leased) == ("10.231.1.150", True)
    entry = networks.lookup(ctx, "nat1")
    assert hosts(entry.net) == hosts(entry.live) == ["10.231.1.5", "10.231.1.150"]
    assert [r.host_port for r in portfwd.list_forwards(ctx, "db")] == [5432]
    with pytest.raises(Conflict, match="not to domain 'db'"):
        portfwd.remove(ctx, "db", host_port=8080)
    portfwd.remove(ctx, "web", host_port=8080)
