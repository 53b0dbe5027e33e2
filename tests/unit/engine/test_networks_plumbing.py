"""Host plumbing without root: iface-bridge / iface-unbridge against a stateful fake of netlink,
including a failure injected at every single step (each must leave the links exactly as they
were), the router's checks and NAT rules, and the netns helpers' refusals."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Interface, IPv4Network, ip_address, ip_interface, ip_network

import pytest

from vmkit.engine import netns_ops
from vmkit.engine.ifbridge import iface_bridge, iface_unbridge, routes_of
from vmkit.engine.rollback import Rollback
from vmkit.engine.router import Router, _lan_address, masquerade_script
from vmkit.errors import Conflict, InvalidConfig, NetlinkFailed, NotFound
from vmkit.model.network import IPAddress, IPInterface, IPNetwork
from vmkit.net.links import HostView, Link, Route
from vmkit.xml.network import parse_network


@dataclass
class FakeLinks:
    """Links, addresses and routes of one namespace, changed like the kernel would; the
    `fail_at`-th change raises NetlinkFailed."""

    links: dict[str, Link] = field(default_factory=dict)
    addresses: list[tuple[str, IPInterface]] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    fail_at: int | None = None
    changes: int = 0

    def _change(self, op: str) -> None:
        self.changes += 1
        if self.changes == self.fail_at:
            raise NetlinkFailed(f"injected {op}", 22)

    def state(self) -> tuple[object, ...]:
        return (dict(self.links), sorted(map(str, self.addresses)), sorted(map(str, self.routes)))

    def view(self) -> HostView:
        return HostView(dict(self.links), tuple(self.routes), tuple(self.addresses))

    def add_bridge(
        self, name: str, *, stp: bool = False, delay: int = 0, mac: str | None = None,
        mtu: int | None = None,
    ) -> None:  # fmt: skip
        self._change("add bridge")
        self.links[name] = Link(name, 100, "bridge", None, mtu or 1500, mac, False)

    def delete(self, name: str) -> None:
        self._change("delete")
        del self.links[name]
        self.addresses = [(d, a) for d, a in self.addresses if d != name]
        self.routes = [r for r in self.routes if r.dev != name]
        self.links = {
            n: (replace(lk, master=None) if lk.master == name else lk)
            for n, lk in self.links.items()
        }

    def set_up(self, name: str) -> None:
        self._change("set up")
        self.links[name] = replace(self.links[name], up=True)

    def set_master(self, name: str, master: str | None) -> None:
        self._change("set master")
        self.links[name] = replace(self.links[name], master=master)

    def add_address(self, name: str, address: IPInterface) -> None:
        self._change("add address")
        assert (name, address) not in self.addresses
        self.addresses.append((name, address))

    def delete_address(self, name: str, address: IPInterface) -> None:
        self._change("delete address")
        self.addresses.remove((name, address))

    def add_route(
        self, dst: IPNetwork, *, gateway: IPAddress | None = None, dev: str | None = None
    ) -> None:
        self._change("add route")
        self.routes.append(Route(dst, dev, gateway))

    def delete_route(
        self, dst: IPNetwork, *, gateway: IPAddress | None = None, dev: str | None = None
    ) -> None:
        self._change("delete route")
        self.routes.remove(Route(dst, dev, gateway))


def host_nic() -> FakeLinks:
    """eth0 as a host's NIC: an address, its prefix route, a default route and a static one."""
    return FakeLinks(
        links={
            "lo": Link("lo", 1, None, None, 65536, None, True),
            "eth0": Link("eth0", 2, "veth", None, 1500, "02:00:00:00:00:02", True),
        },
        addresses=[
            ("eth0", ip_interface("198.51.100.5/24")),
            ("eth0", ip_interface("fe80::1/64")),
        ],
        routes=[
            Route(ip_network("198.51.100.0/24"), "eth0"),
            Route(ip_network("0.0.0.0/0"), "eth0", ip_address("198.51.100.1")),
            Route(ip_network("10.200.0.0/16"), "eth0", ip_address("198.51.100.254")),
        ],
    )


def test_iface_bridge_moves_addresses_and_routes_and_unbridge_puts_them_back() -> None:
    fake = host_nic()
    before = fake.state()
    moved = iface_bridge(fake, "eth0", "br0", stp=False, delay=2)
    assert moved.addresses == (ip_interface("198.51.100.5/24"),)
    assert [str(r.dst) for r in moved.routes] == ["0.0.0.0/0", "10.200.0.0/16"]
    br = fake.links["br0"]
    assert (br.kind, br.mac, br.up, fake.links["eth0"].master) == (
        "bridge",
        "02:00:00:00:00:02",
        True,
        "br0",
    )
    assert ("br0", ip_interface("198.51.100.5/24")) in fake.addresses
    assert Route(ip_network("0.0.0.0/0"), "br0", ip_address("198.51.100.1")) in fake.routes
    assert ("eth0", ip_interface("fe80::1/64")) in fake.addresses  # link-local stays
    iface_unbridge(fake, "br0")
    assert fake.state() == before


def test_a_failure_at_any_step_of_iface_bridge_leaves_everything_as_it_was() -> None:
    total = host_nic()
    iface_bridge(total, "eth0", "br0")
    assert total.changes > 5
    for step in range(1, total.changes + 1):
        fake = host_nic()
        before = fake.state()
        fake.fail_at = step
        with pytest.raises(NetlinkFailed, match="injected"):
            iface_bridge(fake, "eth0", "br0")
        assert fake.state() == before, f"failure at step {step} was not rolled back"


def test_a_failure_at_any_step_of_iface_unbridge_leaves_the_bridge() -> None:
    total = host_nic()
    iface_bridge(total, "eth0", "br0")
    start = total.changes
    iface_unbridge(total, "br0")
    for step in range(1, total.changes - start + 1):
        fake = host_nic()
        iface_bridge(fake, "eth0", "br0")
        bridged = fake.state()
        fake.fail_at = fake.changes + step
        with pytest.raises(NetlinkFailed):
            iface_unbridge(fake, "br0")
        assert fake.state() == bridged, f"failure at step {step} was not rolled back"


@pytest.mark.parametrize(
    ("iface", "bridge", "error", "message"),
    [
        ("eth9", "br0", NotFound, "no interface named 'eth9'"),
        ("eth0", "lo", Conflict, "'lo' already exists"),
        ("eth0", "b" * 16, InvalidConfig, "longer than 15"),
        ("eth0", "br 0", InvalidConfig, "may only contain"),
    ],
)
def test_iface_bridge_refusals(
    iface: str, bridge: str, error: type[Exception], message: str
) -> None:
    fake = host_nic()
    with pytest.raises(error, match=message):
        iface_bridge(fake, iface, bridge)
    assert fake.changes == 0


def test_unbridge_needs_exactly_one_port() -> None:
    fake = host_nic()
    fake.links["br0"] = Link("br0", 9, "bridge", None, 1500, None, True)
    with pytest.raises(Conflict, match=r"exactly one interface .* \(it has: none\)"):
        iface_unbridge(fake, "br0")
    with pytest.raises(InvalidConfig, match="not a bridge"):
        iface_unbridge(fake, "eth0")


def test_prefix_routes_are_the_kernels() -> None:
    view = host_nic().view()
    assert [str(r.dst) for r in routes_of(view, "eth0")] == ["0.0.0.0/0", "10.200.0.0/16"]


def test_rollback_undoes_in_reverse_and_keeps_the_first_error() -> None:
    done: list[str] = []

    def broken() -> None:
        raise OSError("undo broke")

    with pytest.raises(ValueError, match="step 3") as err, Rollback() as rb:
        rb.push("one", lambda: done.append("undo 1"))
        rb.push("two", broken)
        rb.push("three", lambda: done.append("undo 3"))
        raise ValueError("step 3")
    assert done == ["undo 3", "undo 1"]
    assert "rollback step 'two' failed too: undo broke" in (err.value.__notes__ or [])


# ---------------------------------------------------------------------------------------------
# router, netns


ISO = parse_network(
    "<network><name>iso</name><bridge name='vkiso'/><ip address='10.50.0.1' prefix='24'><dhcp>"
    "<range start='10.50.0.100' end='10.50.0.199'/></dhcp></ip></network>"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.51.0.9/24", "not in subnet 10.50.0.0/24"),
        ("10.50.0.1", "network's own"),
        ("10.50.0.255", "broadcast"),
        ("10.50.0.150", "inside the network's DHCP range"),
        ("ten", "invalid router address"),
    ],
)
def test_router_address_must_be_a_free_address_of_the_subnet(text: str, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        _lan_address(ISO, text)


def test_router_address_takes_the_subnets_prefix_and_nat_rules() -> None:
    addr = _lan_address(ISO, "10.50.0.254")
    assert addr == IPv4Interface("10.50.0.254/24")
    r = Router("rt1", "iso", "vkiso", IPv4Network("10.50.0.0/24"), addr, "up1", "vr-rt1")
    script = masquerade_script(r)
    assert 'ip saddr 10.50.0.0/24 oifname "up1" masquerade' in script
    assert script.startswith("table ip vmkit_router\ndelete table ip vmkit_router\n")
    assert Router.from_json(r.to_json()) == r


def test_netns_exec_needs_a_command_and_a_namespace() -> None:
    with pytest.raises(InvalidConfig, match="needs a command"):
        netns_ops.exec_argv("vkt-none", [])
    with pytest.raises(NotFound, match="no namespace named 'vkt-none-here'"):
        netns_ops.exec_argv("vkt-none-here", ["true"])
    with pytest.raises(InvalidConfig, match="invalid namespace name"):
        netns_ops.exec_argv("../etc", ["true"])


def test_namespaces_are_refused_in_a_private_mount_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(netns_ops, "in_private_mount_namespace", lambda: True)
    with pytest.raises(Exception, match="nsenter --net=/run/netns/NAME"):
        netns_ops.add_netns("vkt-never-made")
