"""PCI layout: the buses a domain declares, the address of every PCI device, spare root ports.

Addresses from the XML (`<address type='pci' bus= slot= function=>`) are honoured; bus N is
the `<controller type='pci' index='N'>` (QEMU id `pci.N`), bus 0 is `pci.0` (pc) or `pcie.0`
(q35). Every other PCI device gets an address here, never from QEMU, so explicit and chosen
addresses cannot collide and the same domain always gives the same layout:

- pc: bus 0, slot 2 upward (the primary video first, as libvirt does).
- q35: video on pcie.0 (slot 1 upward); every other device on a pcie-root-port of its own, so
  it can be unplugged; declared ports that nothing uses are taken first, then new ones are
  made. Afterwards at least `ArgvOptions.hotplug_ports` ports stay free for hot-plug, and
  there are at least `ArgvOptions.root_ports` ports (a restore asks for exactly as many as the
  saved QEMU had, with hotplug_ports 0: the guest must find the same PCI topology). Ports
  without an address are packed eight to a slot (multifunction) from slot 2 on, port number
  slot*8+function and chassis = index, like libvirt.
- microvm: no PCI at all; a PCI address or controller there is an error.

Pure: no I/O. The devices themselves are built elsewhere; this module only places them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmkit.errors import InvalidConfig
from vmkit.model.devices import Address, Controller, ControllerType
from vmkit.qemu.argv_context import Ctx, DeviceArg, Family, OptValue, Slot, int_attr

_MODEL_NAMES = {"pcie-root-port": ("pcie-root-port", "ioh3420")}  # <model name> may pick
_BRIDGE_DRIVERS = {
    "pcie-root-port": "pcie-root-port",
    "pci-bridge": "pci-bridge",
    "dmi-to-pci-bridge": "i82801b11-bridge",
    "pcie-to-pci-bridge": "pcie-pci-bridge",
}
_ROOTS = {Family.PC: "pci-root", Family.Q35: "pcie-root"}
# (slot, function) taken by the machine itself on bus 0.
_FIXED = {
    Family.PC: {(1, 0), (1, 1), (1, 3)},  # PIIX3 ISA bridge, IDE, ACPI PM
    Family.Q35: {(0x1F, 0), (0x1F, 2), (0x1F, 3)},  # ICH9 LPC, AHCI, SMBus
}
_FIXED_SLOTS = {Family.PC: {0, 1}, Family.Q35: {0, 0x1F}}


@dataclass
class _Bus:
    """A PCI controller the XML declares (or the planner adds), index = bus number."""

    index: int
    model: str
    xpath: str
    ctrl: Controller | None = None
    arg: DeviceArg | None = None  # None for the root bus

    @property
    def name(self) -> str:
        return f"pci.{self.index}"


@dataclass
class _Layout:
    family: Family
    buses: dict[int, _Bus] = field(default_factory=dict)
    used: dict[tuple[int, int, int], str] = field(default_factory=dict)  # (bus, slot, fn) -> by

    def bus_name(self, index: int) -> str:
        if index == 0:
            return "pcie.0" if self.family is Family.Q35 else "pci.0"
        return self.buses[index].name

    def take(self, key: tuple[int, int, int], who: str, xpath: str) -> None:
        bus, slot, fn = key
        if bus == 0 and (slot == 0 or (slot, fn) in _FIXED[self.family]):
            raise InvalidConfig(
                f"PCI address 00:{slot:02x}.{fn} of {who} is taken by the {self.family} "
                "machine itself",
                xpath=xpath + "/address",
            )
        if key in self.used:
            raise InvalidConfig(
                f"PCI address {bus:02x}:{slot:02x}.{fn} is used by both {self.used[key]} and {who}",
                xpath=xpath + "/address",
            )
        self.used[key] = who

    def slot_free(self, bus: int, slot: int) -> bool:
        return not any((bus, slot, fn) in self.used for fn in range(8))

    def free_slot(self, start: int) -> int:
        for slot in range(start, 32):
            if slot not in _FIXED_SLOTS[self.family] and self.slot_free(0, slot):
                return slot
        raise InvalidConfig(f"no free PCI slot left on {self.bus_name(0)} (32 slots)")

    def port_free(self, index: int) -> bool:
        return self.buses[index].model == "pcie-root-port" and self.slot_free(index, 0)


def plan_pci(ctx: Ctx, devices: list[DeviceArg]) -> list[DeviceArg]:
    """Set bus/addr of every PCI device in `devices`; return the bus devices to emit first."""
    declared = _declared_buses(ctx)
    if ctx.microvm:
        _refuse_pci_on_microvm(devices)
        return []
    lay = _Layout(ctx.family, {b.index: b for b in declared if b.index != 0})
    bridges = [b.arg for b in declared if b.arg is not None]
    _take_explicit(lay, [*bridges, *devices])
    loose = [
        d
        for d in [*bridges, *devices]
        if d.slot is not Slot.NONE and not d.bus_props and not _is_port(d)
    ]
    loose.sort(key=lambda d: d.slot is not Slot.ROOT)  # stable: video first, as libvirt
    for dev in loose:
        if dev.slot is Slot.ROOT or ctx.family is Family.PC:
            slot = lay.free_slot(1 if ctx.family is Family.Q35 else 2)
            _place(lay, dev, 0, slot, 0)
    for dev in loose:
        if not dev.bus_props:
            _place(lay, dev, _port_for(lay), 0, 0)
    while ctx.family is Family.Q35 and _free_ports(lay) < ctx.opts.hotplug_ports:
        _new_port(lay)
    while ctx.family is Family.Q35 and _ports(lay) < ctx.opts.root_ports:
        _new_port(lay)
    _pack_ports(lay)
    ports = [b.arg for b in sorted(lay.buses.values(), key=lambda b: b.index)]
    roots = [a for a in ports if a is not None and _is_port(a)]
    return roots + [a for a in ports if a is not None and not _is_port(a)]


def _declared_buses(ctx: Ctx) -> list[_Bus]:
    """PCI controllers in index order; a missing index (parsed as 0) gets the next free one."""
    found: list[_Bus] = []
    ctrls = ctx.dom.devices.controllers
    taken = {c.index for c in ctrls if c.type is ControllerType.PCI}
    for i, ctrl in enumerate(ctrls, start=1):
        if ctrl.type is not ControllerType.PCI:
            continue
        xpath = f"/domain/devices/controller[{i}]"
        model = ctrl.model or ""
        index = ctrl.index
        if model in _BRIDGE_DRIVERS and index == 0:
            index = max(taken | {0}) + 1
            taken.add(index)
        found.append(_make_bus(ctx, index, model, xpath, ctrl))
    indexes = [b.index for b in found]
    dup = next((n for n in indexes if indexes.count(n) > 1), None)
    if dup is not None:
        raise InvalidConfig(
            f"more than one PCI controller has index {dup}",
            xpath="/domain/devices/controller/@index",
            value=dup,
        )
    return sorted(found, key=lambda b: b.index)


def _make_bus(ctx: Ctx, index: int, model: str, xpath: str, ctrl: Controller) -> _Bus:
    if ctx.microvm:
        raise InvalidConfig(
            "the microvm machine type has no PCI bus", xpath=xpath + "/@model", value=model
        )
    root = _ROOTS[ctx.family]
    if index == 0:
        if model != root or ctrl.model_name not in (None, root):
            raise InvalidConfig(
                f"PCI controller 0 of a {ctx.family} machine must be model '{root}'",
                xpath=xpath + "/@model",
                value=model,
            )
        return _Bus(0, model, xpath, ctrl)
    ok = {"pci-bridge"} if ctx.family is Family.PC else set(_BRIDGE_DRIVERS)
    if model not in ok:
        raise InvalidConfig(
            f"PCI controller model '{model}' is not supported on a {ctx.family} machine "
            f"(supported: {', '.join(sorted(ok | {root}))})",
            xpath=xpath + "/@model",
            value=model,
        )
    bus = _Bus(index, model, xpath, ctrl)
    bus.arg = _bus_arg(bus, ctrl.address)
    return bus


def _bus_arg(bus: _Bus, address: Address | None) -> DeviceArg:
    props: dict[str, OptValue] = {}
    if bus.model == "pci-bridge":
        props["chassis_nr"] = bus.index
    if bus.model == "pcie-root-port":  # also ioh3420: same properties
        ctrl = bus.ctrl
        chassis = ctrl.target_chassis if ctrl and ctrl.target_chassis is not None else bus.index
        props["chassis"] = chassis
        if ctrl and ctrl.target_port is not None:
            props["port"] = ctrl.target_port
    props["id"] = bus.name
    slot = Slot.ROOT if bus.model in ("pci-bridge", "dmi-to-pci-bridge") else Slot.PORT
    if address is not None and address.type != "pci":
        raise InvalidConfig(
            f"a PCI controller needs a 'pci' address, not '{address.type}'",
            xpath=bus.xpath + "/address/@type",
            value=address.type,
        )
    return DeviceArg(_bridge_driver(bus), props, bus.xpath, slot, address)


def _bridge_driver(bus: _Bus) -> str:
    """The QEMU device of a bridge: libvirt's for the model, or an equivalent <model name>."""
    driver = _BRIDGE_DRIVERS[bus.model]
    name = bus.ctrl.model_name if bus.ctrl else None
    if name is None or name == driver:
        return driver
    if name in _MODEL_NAMES.get(bus.model, ()):
        return name
    raise InvalidConfig(
        f"<model name='{name}'> does not fit a '{bus.model}' controller (use '{driver}')",
        xpath=bus.xpath + "/model/@name",
        value=name,
    )


def _refuse_pci_on_microvm(devices: list[DeviceArg]) -> None:
    for dev in devices:
        if dev.address is not None and dev.address.type == "pci":
            raise InvalidConfig(
                "the microvm machine type has no PCI bus; remove the PCI address",
                xpath=dev.xpath + "/address",
            )


def _take_explicit(lay: _Layout, devices: list[DeviceArg]) -> None:
    for dev in devices:
        addr = dev.address
        if addr is None or addr.type != "pci":
            continue
        domain = int_attr(addr, "domain", dev.xpath)
        bus = int_attr(addr, "bus", dev.xpath)
        slot = int_attr(addr, "slot", dev.xpath)
        fn = int_attr(addr, "function", dev.xpath)
        _check_address(lay, dev.xpath, domain, bus, slot, fn)
        lay.take((bus, slot, fn), dev.driver, dev.xpath)
        dev.bus_props = {"bus": lay.bus_name(bus), "addr": _addr(slot, fn)}
        if addr.attrs.get("multifunction") == "on":
            dev.bus_props["multifunction"] = True
        if _is_port(dev) and "port" not in dev.props:
            dev.props = {"port": slot * 8 + fn, **dev.props}


def _check_address(lay: _Layout, xpath: str, domain: int, bus: int, slot: int, fn: int) -> None:
    where = xpath + "/address"
    if domain != 0:
        raise InvalidConfig(f"PCI domain {domain} does not exist (only 0)", xpath=where)
    if bus != 0 and bus not in lay.buses:
        raise InvalidConfig(
            f"PCI bus {bus} does not exist: no <controller type='pci' index='{bus}'>",
            xpath=where + "/@bus",
            value=bus,
        )
    if not (0 <= slot < 32 and 0 <= fn < 8):
        raise InvalidConfig(
            f"PCI slot {slot} function {fn} out of range (slot 0-31, function 0-7)", xpath=where
        )
    if bus != 0 and lay.buses[bus].model == "pcie-root-port" and slot != 0:
        raise InvalidConfig(
            f"a pcie-root-port has one slot (0); slot {slot} on bus {bus} does not exist",
            xpath=where + "/@slot",
            value=slot,
        )


def _place(lay: _Layout, dev: DeviceArg, bus: int, slot: int, fn: int) -> None:
    lay.take((bus, slot, fn), dev.driver, dev.xpath)
    dev.bus_props = {"bus": lay.bus_name(bus), "addr": _addr(slot, fn)}


def _port_for(lay: _Layout) -> int:
    """The lowest-numbered free pcie-root-port: a declared one nobody uses, or a new one at
    the lowest free index (a port that hot-plug declared in the live XML keeps its number,
    and the ports made around it get the numbers they had at the first start)."""
    index = 1
    while True:
        if index not in lay.buses:
            return _new_port(lay, index)
        if lay.port_free(index):
            return index
        index += 1


def _ports(lay: _Layout) -> int:
    return sum(b.model == "pcie-root-port" for b in lay.buses.values())


def _free_ports(lay: _Layout) -> int:
    return sum(lay.port_free(index) for index in lay.buses)


def _new_port(lay: _Layout, index: int | None = None) -> int:
    if index is None:
        index = next(i for i in range(1, len(lay.buses) + 2) if i not in lay.buses)
    bus = _Bus(index, "pcie-root-port", "/domain/devices")
    bus.arg = _bus_arg(bus, None)
    lay.buses[index] = bus
    return index


def _pack_ports(lay: _Layout) -> None:
    """Give every root port without an address one, eight functions to a free slot."""
    loose = [
        b.arg
        for b in sorted(lay.buses.values(), key=lambda b: b.index)
        if b.arg is not None and b.model == "pcie-root-port" and not b.arg.bus_props
    ]
    for start in range(0, len(loose), 8):
        group = loose[start : start + 8]
        slot = lay.free_slot(2)
        for fn, arg in enumerate(group):
            _place(lay, arg, 0, slot, fn)
            if fn == 0 and len(group) > 1:
                arg.bus_props["multifunction"] = True
            if "port" not in arg.props:
                arg.props = {"port": slot * 8 + fn, **arg.props}


def _is_port(dev: DeviceArg) -> bool:
    return dev.driver in _MODEL_NAMES["pcie-root-port"]


def _addr(slot: int, fn: int) -> str:
    return f"{slot:#x}" if fn == 0 else f"{slot:#x}.{fn:#x}"
