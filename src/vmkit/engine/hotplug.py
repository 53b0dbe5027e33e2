"""What every kind of hot-pluggable device shares; attach-device / detach-device.

Owns: which configuration an operation changes (libvirt's `--live`, `--config`, `--persistent`,
`--current`), the edit of a domain's live XML (runtime record) and persistent XML under its lock
and their commit in one store transaction, the QMP steps every device kind needs (a free
hot-plug slot, `device_del` and the wait for the guest to let go), and the dispatch of an
attach-device / detach-device XML element to the handler of its kind. Also the QMP side of
block devices (`BlockParts`: a disk's nodes and devices as a start makes them; plug, unplug,
media change), which disks.py drives.

A device kind (disks.py; NICs later) implements `DeviceHandler` and is listed in `_handlers()`.
Must not: lock, read or write the store outside `commit_edit`; decide what an operation means.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vmkit.engine.context import Context
from vmkit.engine.runtime import is_active
from vmkit.errors import InvalidConfig, QemuError, QmpError, VmkitError, WrongState
from vmkit.model.defaults import DEFAULT_MACHINE
from vmkit.model.devices import Address, Controller, ControllerType, Devices, Disk
from vmkit.model.domain import Domain
from vmkit.qemu.argv_context import Family, OptValue, int_attr, machine_family
from vmkit.state.records import DOMAIN, DomainEntry

if TYPE_CHECKING:
    from vmkit.qemu.argv_context import DeviceArg
    from vmkit.xml.device import Device

NOT_RUNNING = "Requested operation is not valid: domain is not running"
DETACH_TIMEOUT = 30.0
ROOT_PORT_TYPES = ("pcie-root-port", "ioh3420")
_PORT_ID_RE = re.compile(r"^pci\.(\d+)$")
_USB_RE = re.compile(r"^usb\d*$")


@dataclass(frozen=True)
class Flags:
    """The scope flags as the user gave them (virsh's names)."""

    live: bool = False
    config: bool = False
    persistent: bool = False
    current: bool = False


@dataclass(frozen=True)
class Scope:
    """What an operation changes: the running QEMU and its live XML, the next boot's XML."""

    live: bool
    config: bool


def resolve_scope(entry: DomainEntry, flags: Flags) -> Scope:
    """libvirt's rules: --current (the default) is live if running, else config; --persistent
    is config, and live too when running; --live needs a running domain; --config a persistent
    one."""
    for name, given in (("--live", flags.live), ("--config", flags.config)):
        if flags.current and given:
            raise InvalidConfig(f"Options --current and {name} are mutually exclusive")
    active = is_active(entry)
    live, config = flags.live, flags.config
    if flags.persistent:
        live, config = live or active, True
    if not (live or config):
        live, config = active, not active
    if live and not active:
        raise WrongState(
            f"{NOT_RUNNING}: '{entry.name}' (use --config to change its next boot)",
            state="shut off",
            required="running",
        )
    if config and not entry.definition.persistent:
        raise WrongState(
            "Requested operation is not valid: cannot change persistent config of a "
            f"transient domain '{entry.name}'",
            state="transient",
            required="persistent",
        )
    return Scope(live, config)


@dataclass
class Edit:
    """One operation's view of a domain: the parsed live and/or persistent XML it changes."""

    entry: DomainEntry
    scope: Scope
    live: Domain | None = None
    config: Domain | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    def targets(self) -> list[Domain]:
        """The domains to change, live first."""
        return [d for d in (self.live, self.config) if d is not None]

    def scope_name(self, dom: Domain) -> str:
        """Which configuration `dom` (one of `targets()`) is, as messages name it."""
        return "live" if dom is self.live else "persistent"


def begin_edit(entry: DomainEntry, flags: Flags) -> Edit:
    """Resolve the scope and parse what it covers. Caller holds the domain's lock."""
    from vmkit.xml.domain import parse_domain

    scope = resolve_scope(entry, flags)
    edit = Edit(entry, scope)
    if scope.live:
        rt = entry.runtime
        assert rt is not None
        edit.live = parse_domain(rt.live_xml or entry.definition.xml)
    if scope.config:
        edit.config = parse_domain(entry.definition.xml)
    return edit


def check_config(dom: Domain) -> None:
    """The next boot must still work: validate and build the argv a start would build."""
    from vmkit.model.validate import validate_domain
    from vmkit.qemu.argv import ArgvOptions, RuntimePaths, build_argv

    validate_domain(dom)
    nowhere = Path("/nonexistent")
    taps = {i: nic.target_dev or f"vnet{i}" for i, nic in enumerate(dom.devices.interfaces)}
    build_argv(dom, ArgvOptions(accel="tcg", taps=taps), RuntimePaths(*[nowhere] * 4))


def commit_edit(ctx: Context, edit: Edit, event: str, detail: str = "") -> None:
    """Store the changed XML (live into the runtime record, config as the definition)."""
    from vmkit.xml.domain import render_domain

    store, uuid = ctx.store, edit.entry.uuid
    with store.transaction():
        if edit.config is not None:
            text = render_domain(edit.config, inactive=True)
            store.define(DOMAIN, uuid, edit.name, text, persistent=True)
        if edit.live is not None:
            rt = store.get_runtime(uuid)
            assert rt is not None
            live_xml = render_domain(edit.live, inactive=True)
            store.put_runtime(rt.replace(live_xml=live_xml))
        store.log_event(DOMAIN, uuid, edit.name, event, detail)


# QMP ----------------------------------------------------------------------------------------


class Monitor(Protocol):
    """The part of vmkit.qemu.qmp.QmpSession hot-plug uses (unit tests pass a fake)."""

    def execute(
        self, command: str, args: Mapping[str, object] | None = None, *, timeout: float = 30.0
    ) -> Any: ...

    def wait_event(
        self, name: str, timeout: float, match: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any] | None: ...


@contextlib.contextmanager
def open_monitor(entry: DomainEntry) -> Iterator[Monitor]:
    """A QMP session to the domain's QEMU."""
    from vmkit.qemu.qmp import QmpSession

    rt = entry.runtime
    assert rt is not None and rt.qmp_socket is not None
    with QmpSession.connect(rt.qmp_socket, timeout=5.0) as qmp:
        yield qmp


def family_of(dom: Domain) -> Family:
    return machine_family(dom.os.machine or DEFAULT_MACHINE)


def refuse_microvm(dom: Domain, what: str) -> None:
    if family_of(dom) is Family.MICROVM:
        raise WrongState(
            f"cannot hot-plug or hot-unplug {what}: domain '{dom.name}' is a microvm machine, "
            "whose virtio-mmio devices are fixed at start (use --config and restart it)",
            state="microvm",
            required="pc or q35",
        )


def peripherals(mon: Monitor) -> dict[str, str]:
    """Device id -> QEMU type of every device with an id (`qom-list /machine/peripheral`)."""
    found: dict[str, str] = {}
    for prop in mon.execute("qom-list", {"path": "/machine/peripheral"}):
        kind = str(prop.get("type", ""))
        if kind.startswith("child<") and kind.endswith(">"):
            found[str(prop["name"])] = kind[6:-1]
    return found


def free_root_ports(mon: Monitor) -> list[str]:
    """Ids of the pcie-root-ports with nothing behind them, in index order."""
    ports = {n for n, t in peripherals(mon).items() if t in ROOT_PORT_TYPES}
    used: set[str] = set()

    def walk(devices: list[dict[str, Any]]) -> None:
        for dev in devices:
            bridge = dev.get("pci_bridge")
            if bridge is None:
                continue
            children = bridge.get("devices") or []
            if children:
                used.add(str(dev.get("qdev_id", "")))
            walk(children)

    for bus in mon.execute("query-pci"):
        walk(bus.get("devices") or [])
    free = [p for p in ports - used if _PORT_ID_RE.match(p)]
    return sorted(free, key=lambda p: int(p.split(".")[1]))


def pci_bus_props(
    mon: Monitor, dom: Domain, address: Address | None, what: str
) -> tuple[dict[str, OptValue], Address | None]:
    """bus= and addr= for a PCI device plugged now: the XML's address, else a free place.

    Returns the properties and, when vmkit chose the place, the address to record in the live
    XML (`record_pci_place`): a QEMU started again from the live XML (restore, managed save,
    a memory snapshot's revert) then has the device where the guest saw it.
    """
    family = family_of(dom)
    if address is not None and address.type == "pci":
        bus, slot = int_attr(address, "bus", "."), int_attr(address, "slot", ".")
        if bus == 0 and family is Family.Q35:
            raise InvalidConfig(
                f"{what} cannot be hot-plugged into pcie.0 (bus 0) of a q35 machine: "
                "leave the address out or name a pcie-root-port's bus",
                value=bus,
            )
        name = "pci.0" if bus == 0 else f"pci.{bus}"
        return {"bus": name, "addr": f"{slot:#x}"}, None
    if family is Family.PC:
        slot = _free_pc_slot(mon, what)
        return {"bus": "pci.0", "addr": f"{slot:#x}"}, _pci_address(0, slot)
    free = free_root_ports(mon)
    if not free:
        raise WrongState(
            f"no free pcie-root-port left in domain '{dom.name}' for {what}: q35 hot-plugs into "
            "spare ports made at start; add <controller type='pci' model='pcie-root-port'/> "
            "elements to its config and restart it",
            state="no free port",
            required="a free pcie-root-port",
        )
    return {"bus": free[0], "addr": "0x0"}, _pci_address(int(free[0].split(".")[1]), 0)


def record_pci_place(dom: Domain, place: Address | None) -> Address | None:
    """The address to give a device plugged at `place`; on q35 its root port is declared in
    `dom` too (made at start, it was not in the XML), so the port keeps its number."""
    if place is None:
        return None
    bus = int(place.attrs["bus"], 16)
    ctrls = dom.devices.controllers
    if bus and not any(c.type is ControllerType.PCI and c.index == bus for c in ctrls):
        ctrls.append(Controller(type=ControllerType.PCI, index=bus, model="pcie-root-port"))
    return place


def _pci_address(bus: int, slot: int) -> Address:
    attrs = {"domain": "0x0000", "bus": f"{bus:#04x}", "slot": f"{slot:#04x}", "function": "0x0"}
    return Address(type="pci", attrs=attrs)


def _free_pc_slot(mon: Monitor, what: str) -> int:
    """The lowest slot of pci.0 that QEMU has nothing in (0 and 1 belong to the machine)."""
    used = {0, 1}
    for bus in mon.execute("query-pci"):
        if bus.get("bus") == 0:
            used |= {int(dev.get("slot", 0)) for dev in bus.get("devices") or []}
    for slot in range(2, 32):
        if slot not in used:
            return slot
    raise WrongState(
        f"no free PCI slot left on pci.0 for {what}",
        state="no free slot",
        required="a free slot on pci.0",
    )


def unplug(mon: Monitor, dev_id: str, *, timeout: float, what: str) -> None:
    """device_del, then wait until QEMU reports `dev_id` itself deleted (not its children)."""
    try:
        mon.execute("device_del", {"id": dev_id})
    except QmpError as exc:
        if exc.error_class == "DeviceNotFound":
            return  # gone already: an earlier unplug request finished after it timed out
        raise QemuError(f"cannot detach {what}: {exc.desc}") from exc

    def mine(event: dict[str, Any]) -> bool:
        return bool(event.get("data", {}).get("device") == dev_id)

    if mon.wait_event("DEVICE_DELETED", timeout, mine) is None:
        raise QemuError(
            f"{what} was not released by the guest within {timeout:g} s: the unplug request "
            f"for device '{dev_id}' stays pending and the device stays in the live XML. The "
            "guest must be running and support PCI hot-unplug (ACPI on pc, pciehp on q35); "
            "run the detach again to finish once the guest has let go of it"
        )


# block devices over QMP -----------------------------------------------------------------------


@dataclass
class BlockParts:
    """blockdev-add arguments (file node, then format node) and the -device(s) of one disk."""

    blockdevs: list[dict[str, Any]]
    devices: list[DeviceArg]

    @property
    def nodes(self) -> list[str]:
        return [str(b["node-name"]) for b in self.blockdevs]

    @property
    def top_id(self) -> str:
        """The device to unplug (usb-bot for a USB cdrom: its scsi-cd goes with it)."""
        return str(self.devices[0].props["id"])

    @property
    def media_id(self) -> str:
        """The device that holds the medium (a USB cdrom's scsi-cd)."""
        return str(self.devices[-1].props["id"])

    @property
    def ids(self) -> set[str]:
        return {str(d.props["id"]) for d in self.devices}


def block_parts(dom: Domain, disk: Disk) -> BlockParts:
    """What a start gives `disk` in `dom` (node names, device ids), as QMP arguments: the argv
    builder's own output for a domain holding just that disk and `dom`'s controllers."""
    from vmkit.qemu.argv_context import ArgvOptions, Ctx, DeviceArg, RuntimePaths
    from vmkit.qemu.argv_disks import disk_items

    ctrls = [c for c in dom.devices.controllers if c.type is not ControllerType.PCI]
    one = Domain(name=dom.name, uuid=dom.uuid, os=dom.os, features=dom.features)
    one.devices = Devices(disks=[disk], controllers=ctrls)
    nowhere = Path("/nonexistent")
    ctx = Ctx(one, ArgvOptions(accel="tcg"), RuntimePaths(*[nowhere] * 4), family_of(dom))
    parts = BlockParts([], [])
    for item in disk_items(ctx):
        if isinstance(item, DeviceArg):
            if item.xpath == "/domain/devices/disk[1]":
                parts.devices.append(item)
        elif item[0] == "-blockdev":
            parts.blockdevs.append(blockdev_args(item[1]))
    return parts


def blockdev_args(text: str) -> dict[str, Any]:
    """`-blockdev` option text (',,' escapes, on/off, dotted keys) -> blockdev-add arguments."""
    args: dict[str, Any] = {}
    for part in _split_opts(text):
        key, _, value = part.partition("=")
        typed: str | bool = {"on": True, "off": False}.get(value, value)
        *heads, last = key.split(".")
        where = args
        for head in heads:
            where = where.setdefault(head, {})
        where[last] = typed
    return args


def _split_opts(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2] == ",,"
        if text[i] == "," and not pair:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(text[i])
        i += 2 if pair else 1
    parts.append("".join(cur))
    return parts


def plug_block(mon: Monitor, dom: Domain, disk: Disk, what: str) -> None:
    """blockdev-add the nodes, device_add the device(s); undo all on the first failure."""
    from vmkit.qemu.argv_context import Slot

    parts = block_parts(dom, disk)
    _check_controllers(mon, parts, dom, what)
    devices: list[dict[str, Any]] = []
    place: Address | None = None
    for dev in parts.devices:
        devices.append({"driver": dev.driver, **dev.props})
        if dev.slot is Slot.PORT:
            props, place = pci_bus_props(mon, dom, dev.address, what)
            devices[-1].update(props)
    nodes: list[str] = []
    plugged: list[str] = []
    try:
        for args in parts.blockdevs:
            mon.execute("blockdev-add", args)
            nodes.append(str(args["node-name"]))
        for args in devices:
            mon.execute("device_add", args)
            plugged.append(str(args["id"]))
    except VmkitError as exc:
        if plugged:
            quietly(lambda: unplug(mon, plugged[0], timeout=10.0, what=what))
        delete_nodes(mon, nodes)
        if isinstance(exc, QmpError):
            raise QemuError(f"cannot attach {what}: {exc.desc}") from exc
        raise
    if place is not None and disk.address is None:
        disk.address = record_pci_place(dom, place)


def _check_controllers(mon: Monitor, parts: BlockParts, dom: Domain, what: str) -> None:
    """The bus each device plugs into exists (a SCSI or USB controller)."""
    have = peripherals(mon)
    for dev in parts.devices:
        bus = dev.props.get("bus")
        ctrl = str(bus).rsplit(".", 1)[0] if isinstance(bus, str) else None
        usb = dev.driver in ("usb-storage", "usb-bot")
        if ctrl in parts.ids or not (ctrl or usb):
            continue
        if (ctrl is not None and ctrl not in have) or (usb and not any(map(_USB_RE.match, have))):
            needed = f"controller '{ctrl}'" if ctrl else "USB controller"
            raise WrongState(
                f"domain '{dom.name}' has no {needed} for {what}: add it with --config "
                "and restart the domain",
                state="no controller",
                required=needed,
            )


def unplug_block(mon: Monitor, dom: Domain, disk: Disk, timeout: float, what: str) -> list[str]:
    """device_del + wait, then blockdev-del; returns the nodes QEMU would not delete."""
    parts = block_parts(dom, disk)
    unplug(mon, parts.top_id, timeout=timeout, what=what)
    return delete_nodes(mon, parts.nodes)


def delete_nodes(mon: Monitor, nodes: list[str]) -> list[str]:
    """blockdev-del the format node, then the file node; returns what could not be deleted."""
    problems: list[str] = []
    for node in reversed(nodes):
        try:
            mon.execute("blockdev-del", {"node-name": node})
        except QmpError as exc:
            if "not found" not in exc.desc.lower():
                problems.append(f"{node}: {exc.desc}")
    return problems


def quietly(action: Callable[[], object]) -> None:
    """A best-effort undo: its failure must not hide the error being reported."""
    with contextlib.suppress(VmkitError):
        action()


def swap_media(
    mon: Monitor, dom: Domain, drive: Disk, new: Disk, *, force: bool, what: str
) -> None:
    """Tray open, old medium out (its nodes deleted), `new`'s medium in (if any), tray closed;
    on failure the old medium goes back in."""
    old = block_parts(dom, drive)
    dev_id = old.media_id
    if not force:
        for dev in mon.execute("query-block"):
            if dev.get("qdev") == dev_id and dev.get("locked"):
                raise WrongState(
                    f"the guest has locked the tray of {what}: use --force to change it anyway",
                    state="locked",
                    required="unlocked",
                )
    removed = False
    try:
        mon.execute("blockdev-open-tray", {"id": dev_id, "force": True})
        if drive.source is not None:
            mon.execute("blockdev-remove-medium", {"id": dev_id})
            removed = True
            delete_nodes(mon, old.nodes)
        if new.source is not None:
            _insert(mon, dev_id, block_parts(dom, new))
    except QmpError as exc:
        if removed:
            quietly(lambda: _insert(mon, dev_id, old))
        raise QemuError(f"cannot change the media of {what}: {exc.desc}") from exc
    finally:
        quietly(lambda: mon.execute("blockdev-close-tray", {"id": dev_id}))


def _insert(mon: Monitor, dev_id: str, parts: BlockParts) -> None:
    added: list[str] = []
    try:
        for args in parts.blockdevs:
            mon.execute("blockdev-add", args)
            added.append(str(args["node-name"]))
        mon.execute("blockdev-insert-medium", {"id": dev_id, "node-name": parts.nodes[-1]})
    except QmpError:
        delete_nodes(mon, added)
        raise


def block_stats_of(reply: list[dict[str, Any]], parts: BlockParts) -> dict[str, Any]:
    """From query-blockstats, the stats of the disk's device (qdev: its id or a path under it)
    or of its format node; {} when QEMU has none (an empty drive)."""
    nodes = set(parts.nodes)
    for entry in reply:
        owner = str(entry.get("qdev", "")).removeprefix("/machine/peripheral/").split("/")[0]
        if owner in parts.ids or entry.get("node-name") in nodes:
            return dict(entry.get("stats", {}))
    return {}


# attach-device / detach-device ---------------------------------------------------------------


class DeviceHandler(Protocol):
    """What a kind of device provides for attach-device and detach-device."""

    def attach(self, ctx: Context, key: str, device: Device, flags: Flags) -> None: ...

    def detach(
        self, ctx: Context, key: str, device: Device, flags: Flags, *, timeout: float
    ) -> None: ...


def _handlers() -> dict[str, DeviceHandler]:
    """Element name -> handler; add a kind here (imported lazily: no import cycle)."""
    from vmkit.engine.disks import DiskHandler
    from vmkit.engine.iface_hotplug import InterfaceHandler

    return {"disk": DiskHandler(), "interface": InterfaceHandler()}


def _parse(xml: str | bytes, source: str) -> tuple[Device, DeviceHandler]:
    from vmkit.xml.device import device_tag, parse_device

    device = parse_device(xml, source=source)
    tag = device_tag(device)
    handler = _handlers().get(tag)
    if handler is None:
        raise InvalidConfig(
            f"{source}: attaching or detaching <{tag}> is not supported yet", value=tag
        )
    return device, handler


def attach_device(ctx: Context, key: str, xml: str | bytes, source: str, flags: Flags) -> Device:
    """attach-device: add the device the XML describes; returns it."""
    device, handler = _parse(xml, source)
    handler.attach(ctx, key, device, flags)
    return device


def detach_device(
    ctx: Context,
    key: str,
    xml: str | bytes,
    source: str,
    flags: Flags,
    *,
    timeout: float = DETACH_TIMEOUT,
) -> Device:
    """detach-device: remove the device the XML names; returns it."""
    device, handler = _parse(xml, source)
    handler.detach(ctx, key, device, flags, timeout=timeout)
    return device
