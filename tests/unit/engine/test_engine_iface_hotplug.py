"""NIC hot-plug on a real store with a fake QEMU monitor and fake taps: the QMP commands and
their ids, which XML changes under which flags, what is refused and that a refusal (or a QEMU
that says no half way) leaves the store, QEMU and the host as they were."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from engine_fakes import UUIDS, domain_xml, patch_open_monitor, running_runtime

from vmkit.engine import hotplug, iface_hotplug, nics
from vmkit.engine.context import Context
from vmkit.engine.hotplug import Flags
from vmkit.engine.iface_hotplug import IfaceArgs, by_type_and_mac
from vmkit.errors import Conflict, InvalidConfig, NotFound, QemuError, QmpError, WrongState
from vmkit.model.devices import Interface, InterfaceType
from vmkit.state.records import DOMAIN
from vmkit.xml.domain import parse_domain

DOM_ID = 7
MAC0, MAC1, MAC2 = "52:54:00:00:00:10", "52:54:00:00:00:11", "52:54:00:00:00:12"


def bridge_nic(mac: str, bridge: str = "br0") -> str:
    return (
        f"<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/>"
        "<model type='virtio'/></interface>"
    )


PERIPHERALS = [
    {"name": "type", "type": "string"},
    {"name": "pci.1", "type": "child<pcie-root-port>"},
    {"name": "pci.2", "type": "child<pcie-root-port>"},
    {"name": "pci.3", "type": "child<pcie-root-port>"},
]


def _port(n: int, *children: str) -> dict[str, Any]:
    devices = [{"qdev_id": c} for c in children]
    return {"qdev_id": f"pci.{n}", "pci_bridge": {"devices": devices}}


class FakeMonitor:
    """Records commands; answers qom-list / query-pci; raises what `fail` maps a command to;
    `device_del` queues the DEVICE_DELETED events a real QEMU sends (child first)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, QmpError] = {}
        self.events: list[dict[str, Any]] = []
        self.releases = True  # the guest lets go of unplugged devices
        self.peripherals = list(PERIPHERALS)
        self.pci = [{"bus": 0, "devices": [_port(1, "net0"), _port(2), _port(3)]}]

    def execute(self, command: str, args: Any = None, *, timeout: float = 30.0) -> Any:
        self.calls.append((command, dict(args or {})))
        if command in self.fail:
            raise self.fail[command]
        if command == "device_del" and self.releases:
            dev = args["id"]
            self.events += [
                {"event": "DEVICE_DELETED", "data": {"path": f"/machine/peripheral/{dev}/x"}},
                {"event": "DEVICE_DELETED", "data": {"device": dev}},
            ]
        return {"qom-list": self.peripherals, "query-pci": self.pci}.get(command, {})

    def wait_event(
        self, name: str, timeout: float, match: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any] | None:
        for i, event in enumerate(self.events):
            if event["event"] == name and (match is None or match(event)):
                return self.events.pop(i)
        return None

    def plan(self) -> list[tuple[str, dict[str, Any]]]:
        return [(c, a) for c, a in self.calls if c not in ("qom-list", "query-pci")]


class FakeTaps:
    """Stands in for nics.plan_taps / create_taps / delete_taps: a set of host links."""

    def __init__(self) -> None:
        self.host: set[str] = {"br0"}
        self.log: list[str] = []
        self.fail_create = False

    def plan(self, ctx: Context, dom: Any, names: dict[int, str]) -> list[nics.TapPlan]:
        plans = []
        for i, name in names.items():
            nic = dom.devices.interfaces[i]
            if nic.type is InterfaceType.BRIDGE and nic.source_bridge not in self.host:
                raise NotFound("bridge", str(nic.source_bridge), "bridge does not exist")
            if name in self.host:
                raise Conflict("interface", name, f"tap '{name}' already exists")
            plans.append(nics.TapPlan(i, name, nic.source_bridge, None, nic.mac_address, None))
        return plans

    def create(self, plans: Any) -> list[str]:
        if self.fail_create:
            raise QemuError("ifup script failed")
        made = [p.name for p in plans]
        self.host |= set(made)
        self.log += [f"+{n}" for n in made]
        return made

    def delete(self, names: Any) -> None:
        for n in names:
            self.host.discard(n)
            self.log.append(f"-{n}")


@pytest.fixture
def mon(monkeypatch: pytest.MonkeyPatch) -> FakeMonitor:
    return patch_open_monitor(monkeypatch, iface_hotplug, FakeMonitor())


@pytest.fixture
def taps(monkeypatch: pytest.MonkeyPatch) -> FakeTaps:
    fake = FakeTaps()
    monkeypatch.setattr(nics, "plan_taps", fake.plan)
    monkeypatch.setattr(nics, "create_taps", fake.create)
    monkeypatch.setattr(nics, "delete_taps", fake.delete)
    return fake


def define(ctx: Context, name: str, devices: str = "", *, running: bool = False, **kw: Any) -> None:
    xml = domain_xml(name, devices, **kw)
    ctx.store.define(DOMAIN, UUIDS[name], name, xml)
    if running:
        dom = parse_domain(xml)
        domain_id = DOM_ID if name == "vm" else DOM_ID + 1
        extras = {"taps": sorted(nics.tap_names(dom, DOM_ID).values())}
        ctx.store.put_runtime(running_runtime(name, xml, domain_id, extras))


def state(ctx: Context, name: str = "vm") -> tuple[str, str, dict[str, Any]]:
    """(persistent XML, live XML or '', runtime extras)."""
    entry = ctx.store.lookup_domain(name)
    rt = entry.runtime
    return entry.definition.xml, rt.live_xml if rt else "", dict(rt.extras) if rt else {}


def macs(xml: str) -> list[str | None]:
    return [n.mac_address for n in parse_domain(xml).devices.interfaces] if xml else []


def nic(**kw: Any) -> Interface:
    return iface_hotplug.iface_from_args(IfaceArgs(**kw))


# --print-xml and options ---------------------------------------------------------------------


def test_iface_xml_is_what_virsh_prints() -> None:
    args = IfaceArgs("bridge", "br0", target="tap5", mac="52:54:00:AA:00:01", model="virtio",
                     script="/etc/qemu-ifup")  # fmt: skip
    assert iface_hotplug.iface_xml(args) == (
        "<interface type='bridge'>\n"
        "  <source bridge='br0'/>\n"
        "  <target dev='tap5'/>\n"
        "  <mac address='52:54:00:aa:00:01'/>\n"
        "  <script path='/etc/qemu-ifup'/>\n"
        "  <model type='virtio'/>\n"
        "</interface>\n"
    )
    assert iface_hotplug.iface_xml(IfaceArgs("user", "ignored")) == "<interface type='user'/>\n"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (IfaceArgs("direct", "eth0"), "interface type 'direct' is not supported"),
        (IfaceArgs("bridge"), "type 'bridge' needs a source"),
        (IfaceArgs("network", ""), "type 'network' needs a source"),
        (IfaceArgs("user", model="tulip"), "tulip"),
        (IfaceArgs("ethernet", target="much-too-long-name0"), "much-too-long-name0"),
        (IfaceArgs("user", mac="52:54:00:zz:00:01"), "52:54:00:zz:00:01"),
    ],
)
def test_bad_options(args: IfaceArgs, match: str) -> None:
    with pytest.raises(InvalidConfig, match=match):
        iface_hotplug.iface_from_args(args)


# config only -----------------------------------------------------------------------------------


def test_config_attach_gets_a_mac_no_other_domain_uses(ctx: Context) -> None:
    define(ctx, "other", bridge_nic(MAC0))
    define(ctx, "vm")
    got = iface_hotplug.attach_interface(ctx, "vm", nic(type="bridge", source="br0"), Flags())
    config, live, _ = state(ctx)
    assert live == "" and macs(config) == [got.mac_address]
    assert got.mac_address and got.mac_address.startswith("52:54:00:") and got.mac_address != MAC0
    assert "<source bridge='br0'/>" in config  # a bridge that does not exist yet is fine here


def test_duplicate_mac_is_refused(ctx: Context) -> None:
    define(ctx, "other", bridge_nic(MAC0))
    define(ctx, "vm", bridge_nic(MAC1))
    before = state(ctx)
    with pytest.raises(Conflict, match=f"MAC address {MAC0} is already used by domain 'other'"):
        iface_hotplug.attach_interface(ctx, "vm", nic(type="user", mac=MAC0), Flags())
    with pytest.raises(Conflict, match=f"{MAC1} is already used by an interface in the persistent"):
        iface_hotplug.attach_interface(ctx, "vm", nic(type="user", mac=MAC1.upper()), Flags())
    assert state(ctx) == before


def test_config_attach_names_a_missing_network(ctx: Context) -> None:
    define(ctx, "vm")
    with pytest.raises(NotFound, match="network 'nope' not found"):
        iface_hotplug.attach_interface(ctx, "vm", nic(type="network", source="nope"), Flags())


# live attach -----------------------------------------------------------------------------------


def test_live_attach_of_a_bridge_nic(ctx: Context, mon: FakeMonitor, taps: FakeTaps) -> None:
    define(ctx, "vm", bridge_nic(MAC0), running=True)
    new = nic(type="bridge", source="br0", mac=MAC1, model="virtio")
    iface_hotplug.attach_interface(ctx, "vm", new, Flags())
    tap = f"vk{DOM_ID}n1"
    assert mon.plan() == [
        ("netdev_add", {"type": "tap", "id": "hostnet1", "ifname": tap, "script": "no",
                        "downscript": "no"}),
        ("device_add", {"driver": "virtio-net-pci", "netdev": "hostnet1", "id": "net1",
                        "mac": MAC1, "bus": "pci.2", "addr": "0x0"}),
    ]  # fmt: skip
    config, live, extras = state(ctx)
    assert (macs(config), macs(live)) == ([MAC0], [MAC0, MAC1])
    assert extras == {"taps": sorted([f"vk{DOM_ID}n0", tap])}
    assert f"+{tap}" in taps.log and "target" not in live  # the default tap name: nothing pinned


def test_live_attach_of_a_user_nic_on_pc(ctx: Context, mon: FakeMonitor, taps: FakeTaps) -> None:
    define(ctx, "vm", running=True, machine="pc")
    iface_hotplug.attach_interface(ctx, "vm", nic(type="user", model="e1000"), Flags(live=True))
    (_, netdev), (_, device) = mon.plan()
    assert netdev == {"type": "user", "id": "hostnet0"}
    assert device["driver"] == "e1000" and device["bus"] == "pci.0" and device["id"] == "net0"
    assert taps.log == [] and state(ctx)[2] == {"taps": []}


def test_persistent_attach_changes_both(ctx: Context, mon: FakeMonitor, taps: FakeTaps) -> None:
    define(ctx, "vm", running=True)
    got = iface_hotplug.attach_interface(ctx, "vm", nic(type="user"), Flags(persistent=True))
    config, live, _ = state(ctx)
    assert macs(config) == macs(live) == [got.mac_address]


def test_refused_device_add_undoes_everything(
    ctx: Context, mon: FakeMonitor, taps: FakeTaps
) -> None:
    define(ctx, "vm", running=True)
    before = state(ctx)
    mon.fail["device_add"] = QmpError("device_add", "GenericError", "no slot")
    new = nic(type="bridge", source="br0", model="virtio")
    with pytest.raises(QemuError, match=r"cannot attach interface .* of domain 'vm': no slot"):
        iface_hotplug.attach_interface(ctx, "vm", new, Flags(persistent=True))
    assert [c for c, _ in mon.plan()] == ["netdev_add", "device_add", "netdev_del"]
    assert mon.plan()[-1][1] == {"id": "hostnet0"}
    assert taps.log == [f"+vk{DOM_ID}n0", f"-vk{DOM_ID}n0"] and taps.host == {"br0"}
    assert state(ctx) == before


def test_failing_tap_leaves_nothing(ctx: Context, mon: FakeMonitor, taps: FakeTaps) -> None:
    define(ctx, "vm", running=True)
    before = state(ctx)
    taps.fail_create = True
    with pytest.raises(QemuError, match="ifup script failed"):
        iface_hotplug.attach_interface(ctx, "vm", nic(type="ethernet"), Flags())
    assert mon.plan() == [] and state(ctx) == before


def test_bad_live_input_is_refused_before_anything(
    ctx: Context, mon: FakeMonitor, taps: FakeTaps
) -> None:
    define(ctx, "vm", running=True)
    before = state(ctx)
    with pytest.raises(NotFound, match="bridge does not exist"):
        iface_hotplug.attach_interface(ctx, "vm", nic(type="bridge", source="nobr"), Flags())
    taps.host.add(f"vk{DOM_ID}n0")
    with pytest.raises(Conflict, match="already exists"):
        iface_hotplug.attach_interface(ctx, "vm", nic(type="ethernet"), Flags())
    bad_driver = nic(type="bridge", source="br0", model="virtio")
    bad_driver.driver_name = "vhost"
    with pytest.raises(InvalidConfig, match="vhost-net was asked for"):
        iface_hotplug.attach_interface(ctx, "vm", bad_driver, Flags())
    assert mon.plan() == [] and state(ctx) == before


def test_microvm_refuses_live_but_not_config(
    ctx: Context, mon: FakeMonitor, taps: FakeTaps
) -> None:
    define(ctx, "vm", running=True, machine="microvm")
    with pytest.raises(WrongState, match="domain 'vm' is a microvm machine"):
        iface_hotplug.attach_interface(ctx, "vm", nic(type="user"), Flags(live=True))
    iface_hotplug.attach_interface(ctx, "vm", nic(type="user", model="virtio"), Flags(config=True))
    config, live, _ = state(ctx)
    assert (len(macs(config)), len(macs(live))) == (1, 0)
    assert mon.plan() == []


# detach ----------------------------------------------------------------------------------------


def test_detach_needs_mac_when_several_match(ctx: Context, mon: FakeMonitor) -> None:
    define(ctx, "vm", bridge_nic(MAC0) + bridge_nic(MAC1), running=True)
    with pytest.raises(InvalidConfig, match=r"Domain has 2 interfaces\. Please specify which one"):
        iface_hotplug.detach_interface(ctx, "vm", by_type_and_mac(InterfaceType.BRIDGE, None),
                                       Flags())  # fmt: skip
    with pytest.raises(NotFound, match="No interface found whose type is user"):
        iface_hotplug.detach_interface(ctx, "vm", by_type_and_mac(InterfaceType.USER, None),
                                       Flags())  # fmt: skip
    with pytest.raises(NotFound, match=f"No interface with MAC address {MAC2} was found"):
        iface_hotplug.detach_interface(ctx, "vm", by_type_and_mac(InterfaceType.BRIDGE, MAC2),
                                       Flags())  # fmt: skip
    assert mon.plan() == []


def test_detach_of_the_first_nic_keeps_the_ids_of_the_next(
    ctx: Context, mon: FakeMonitor, taps: FakeTaps
) -> None:
    define(ctx, "vm", bridge_nic(MAC0) + bridge_nic(MAC1), running=True)
    taps.host |= {f"vk{DOM_ID}n0", f"vk{DOM_ID}n1"}
    bridge = InterfaceType.BRIDGE
    iface_hotplug.detach_interface(ctx, "vm", by_type_and_mac(bridge, MAC0), Flags())
    assert mon.plan() == [("device_del", {"id": "net0"}), ("netdev_del", {"id": "hostnet0"})]
    assert taps.log == [f"-vk{DOM_ID}n0"]
    config, live, extras = state(ctx)
    assert (macs(config), macs(live)) == ([MAC0, MAC1], [MAC1])
    assert f"<target dev='vk{DOM_ID}n1'/>" in live  # the tap it has, not the one of position 0
    assert extras == {"taps": [f"vk{DOM_ID}n1"], "nic_numbers": {MAC1: 1}}

    # a new NIC takes position 1 but not the ids QEMU still gives the moved one
    mon.calls.clear()
    iface_hotplug.attach_interface(ctx, "vm", nic(type="bridge", source="br0", mac=MAC2), Flags())
    netdev, device = (a for _, a in mon.plan())
    assert (netdev["id"], netdev["ifname"], device["id"]) == ("hostnet2", f"vk{DOM_ID}n2", "net2")
    live, extras = state(ctx)[1:]
    assert extras["nic_numbers"] == {MAC1: 1, MAC2: 2}
    assert f"<target dev='vk{DOM_ID}n2'/>" in live
    entry = ctx.store.lookup_domain("vm")
    assert entry.runtime is not None
    ids = iface_hotplug.qemu_ids(parse_domain(live), entry.runtime)
    assert [(i.device, i.tap) for i in ids] == [
        ("net1", f"vk{DOM_ID}n1"),
        ("net2", f"vk{DOM_ID}n2"),
    ]

    mon.calls.clear()
    iface_hotplug.detach_interface(ctx, "vm", by_type_and_mac(bridge, MAC1), Flags())
    iface_hotplug.detach_interface(ctx, "vm", by_type_and_mac(bridge, MAC2), Flags())
    assert [a["id"] for c, a in mon.plan() if c == "netdev_del"] == ["hostnet1", "hostnet2"]
    live, extras = state(ctx)[1:]
    assert macs(live) == [] and extras == {"taps": []}
    assert taps.host == {"br0"}


def test_detach_that_the_guest_ignores_changes_nothing(
    ctx: Context, mon: FakeMonitor, taps: FakeTaps
) -> None:
    define(ctx, "vm", bridge_nic(MAC0), running=True)
    before = state(ctx)
    mon.releases = False
    with pytest.raises(QemuError, match="was not released by the guest"):
        iface_hotplug.detach_interface(
            ctx, "vm", by_type_and_mac(InterfaceType.BRIDGE, None), Flags(), timeout=0.1
        )
    assert state(ctx) == before and taps.log == []


def test_detach_config_only(ctx: Context, mon: FakeMonitor) -> None:
    define(ctx, "vm", bridge_nic(MAC0), running=True)
    select = by_type_and_mac(InterfaceType.BRIDGE, MAC0)
    iface_hotplug.detach_interface(ctx, "vm", select, Flags(config=True))
    config, live, _ = state(ctx)
    assert (macs(config), macs(live)) == ([], [MAC0]) and mon.plan() == []


# attach-device / detach-device ---------------------------------------------------------------


def test_attach_and_detach_device_with_interface_xml(
    ctx: Context, mon: FakeMonitor, taps: FakeTaps
) -> None:
    define(ctx, "vm", running=True)
    xml = f"<interface type='user'><mac address='{MAC2}'/><model type='virtio'/></interface>"
    hotplug.attach_device(ctx, "vm", xml, "n.xml", Flags(persistent=True))
    assert macs(state(ctx)[0]) == macs(state(ctx)[1]) == [MAC2]
    hotplug.detach_device(ctx, "vm", "<interface type='user'/>", "n.xml", Flags(persistent=True))
    assert macs(state(ctx)[0]) == macs(state(ctx)[1]) == []
    assert [c for c, _ in mon.plan()] == ["netdev_add", "device_add", "device_del", "netdev_del"]
