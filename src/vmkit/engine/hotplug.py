"""What every kind of hot-pluggable device shares; attach-device / detach-device.

Owns: which configuration an operation changes (libvirt's `--live`, `--config`, `--persistent`,
`--current`), the edit of a domain's live XML (runtime record) and persistent XML under its lock
and their commit in one store transaction, the QMP steps every device kind needs (a free
hot-plug slot, `device_del` and the wait for the guest to let go), and the dispatch of an
attach-device / detach-device XML element to the handler of its kind.

A device kind (disks.py; NICs later) implements `DeviceHandler` and is listed in `_handlers()`.
Must not: know what any one kind of device needs from QEMU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vmkit.engine.context import Context
from vmkit.engine.runtime import is_active
from vmkit.errors import InvalidConfig, QemuError, QmpError, WrongState
from vmkit.model.defaults import DEFAULT_MACHINE
from vmkit.model.devices import Address
from vmkit.model.domain import Domain
from vmkit.qemu.argv_context import Family, OptValue, int_attr, machine_family
from vmkit.state.records import DOMAIN, DomainEntry
from vmkit.xml.device import Device

NOT_RUNNING = "Requested operation is not valid: domain is not running"
DETACH_TIMEOUT = 30.0
_ROOT_PORTS = ("pcie-root-port", "ioh3420")
_PORT_ID_RE = re.compile(r"^pci\.(\d+)$")


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
            store.put_runtime(dataclasses.replace(rt, live_xml=live_xml))
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
    ports = {n for n, t in peripherals(mon).items() if t in _ROOT_PORTS}
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
) -> dict[str, OptValue]:
    """bus= (and addr=) for a PCI device plugged now: the XML's address, else a free slot."""
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
        return {"bus": name, "addr": f"{slot:#x}"}
    if family is Family.PC:
        return {"bus": "pci.0"}
    free = free_root_ports(mon)
    if not free:
        raise WrongState(
            f"no free pcie-root-port left in domain '{dom.name}' for {what}: q35 hot-plugs into "
            "spare ports made at start; add <controller type='pci' model='pcie-root-port'/> "
            "elements to its config and restart it",
            state="no free port",
            required="a free pcie-root-port",
        )
    return {"bus": free[0], "addr": "0x0"}


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

    return {"disk": DiskHandler()}


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
