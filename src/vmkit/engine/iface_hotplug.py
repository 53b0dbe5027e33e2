"""NIC hot-plug: attach-interface, detach-interface, and attach-device / detach-device of an
`<interface>`.

A NIC plugged into a running QEMU gets the ids a start would give it (`hostnetN` for the
backend, `netN` for the device, N = its position) and the tap a start would make
(`vk<domid>n<N>` or its `<target dev>`), so that it can be detached after a restart as well as
before. Plug: the tap (recorded in the runtime record's extras["taps"] before it exists, so a
crash leaves nothing behind that a stop does not delete), `netdev_add` (never vhost), then
`device_add` into a free pcie-root-port (q35) or pci.0 (pc). Unplug: `device_del`, the wait for
DEVICE_DELETED of that id, `netdev_del`, the tap. Whatever fails midway is undone before the
error is raised, and the store is only written after QEMU agreed.

Detaching a NIC that is not the last one moves the later ones up in the live XML while QEMU
keeps their ids and taps: the live XML then names their taps (`<target dev>`) and
extras["nic_numbers"] (MAC -> N) keeps their ids; `qemu_ids` reads both back.
Must not: decide scope rules (hotplug.py) or how a tap is made (nics.py).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmkit.engine import nics
from vmkit.engine.context import Context
from vmkit.engine.domains import locked_lookup, lookup
from vmkit.engine.hotplug import (
    DETACH_TIMEOUT,
    Edit,
    Flags,
    Monitor,
    begin_edit,
    check_config,
    commit_edit,
    family_of,
    open_monitor,
    pci_bus_props,
    peripherals,
    quietly,
    record_pci_place,
    refuse_microvm,
    unplug,
)
from vmkit.errors import Conflict, InvalidConfig, NotFound, QemuError, QmpError
from vmkit.model.devices import Devices, Interface, InterfaceType
from vmkit.model.domain import Domain
from vmkit.state.records import DOMAIN, DomainRuntime

if TYPE_CHECKING:
    from vmkit.qemu.argv_context import DeviceArg
    from vmkit.xml.device import Device

TAP_TYPES = (InterfaceType.NETWORK, InterfaceType.BRIDGE, InterfaceType.ETHERNET)
_MAC_RE = re.compile(r"<mac address=['\"]([0-9a-fA-F:]{17})['\"]")
_NUMBERS = "nic_numbers"


# building a NIC from attach-interface's options -----------------------------------------------


@dataclass(frozen=True)
class IfaceArgs:
    """attach-interface's options, as virsh names them."""

    type: str  # network | bridge | user | ethernet
    source: str | None = None  # the network or bridge (ignored for user and ethernet, as virsh)
    target: str | None = None
    mac: str | None = None
    model: str | None = None
    script: str | None = None


def interface_type(text: str) -> InterfaceType:
    try:
        return InterfaceType(text)
    except ValueError:
        choices = ", ".join(t.value for t in InterfaceType)
        raise InvalidConfig(
            f"interface type '{text}' is not supported (use {choices})", value=text
        ) from None


def iface_xml(a: IfaceArgs) -> str:
    """The `<interface>` XML attach-interface's options describe (what virsh builds,
    --print-xml)."""
    from vmkit.xml.xmlutil import Elem, render_xml

    kind = interface_type(a.type)
    el = Elem("interface", type=kind.value)
    if kind in (InterfaceType.NETWORK, InterfaceType.BRIDGE):
        if not a.source:
            raise InvalidConfig(
                f"an interface of type '{kind}' needs a source (the {kind} to attach to)"
            )
        el.sub("source", **{kind.value: a.source})
    if a.target:
        el.sub("target", dev=a.target)
    if a.mac:
        el.sub("mac", address=a.mac.lower())
    if a.script:
        el.sub("script", path=a.script)
    if a.model:
        el.sub("model", type=a.model)
    return render_xml(el)


def iface_from_args(a: IfaceArgs) -> Interface:
    """attach-interface's options -> an Interface, checked like the same XML in a domain."""
    from vmkit.model.validate import check_mac
    from vmkit.xml.device import parse_device

    dev = parse_device(iface_xml(a), source="attach-interface options")
    assert isinstance(dev, Interface)
    if dev.mac_address is not None:
        check_mac(dev.mac_address, xpath="/interface/mac/@address")
    return dev


# MAC addresses ---------------------------------------------------------------------------------


def _macs_of_others(ctx: Context, uuid: str) -> dict[str, str]:
    """MAC -> name of the other domain that uses it (definition or live XML)."""
    found: dict[str, str] = {}
    for entry in ctx.store.domains():
        if entry.uuid == uuid:
            continue
        texts = [entry.definition.xml, entry.runtime.live_xml if entry.runtime else ""]
        for text in texts:
            for mac in _MAC_RE.findall(text):
                found.setdefault(mac.lower(), entry.name)
    return found


def _assign_mac(ctx: Context, edit: Edit, nic: Interface) -> None:
    """Check the NIC's MAC is free (in the domain's changed configs and in every other domain),
    or give it a new 52:54:00:xx:xx:xx that no domain uses."""
    from vmkit.model.defaults import generate_mac
    from vmkit.model.validate import check_mac

    others = _macs_of_others(ctx, edit.entry.uuid)
    if nic.mac_address is None:
        rt = edit.entry.runtime
        own = _MAC_RE.findall(edit.entry.definition.xml + (rt.live_xml if rt else ""))
        nic.mac_address = generate_mac({*others, *(m.lower() for m in own)})
        return
    mac = nic.mac_address = nic.mac_address.lower()
    check_mac(mac, xpath="/interface/mac/@address")
    for dom in edit.targets():
        if any((n.mac_address or "").lower() == mac for n in dom.devices.interfaces):
            raise Conflict(
                "interface",
                mac,
                f"MAC address {mac} is already used by an interface in the "
                f"{edit.scope_name(dom)} configuration of domain '{edit.name}'",
            )
    if mac in others:
        raise Conflict(
            "interface", mac, f"MAC address {mac} is already used by domain '{others[mac]}'"
        )


# ids of a running domain's NICs ---------------------------------------------------------------


@dataclass(frozen=True)
class NicIds:
    """What one NIC of a running domain is called in QEMU and on the host."""

    netdev: str  # hostnetN
    device: str  # netN (or its ua- alias)
    tap: str | None


def qemu_ids(dom: Domain, rt: DomainRuntime) -> list[NicIds]:
    """By position in the live XML `dom` of the run `rt`: each NIC's QEMU ids and tap."""
    from vmkit.qemu.argv_context import device_id

    pinned = rt.extras.get(_NUMBERS) or {}
    taps = nics.tap_names(dom, rt.domain_id)
    out = []
    for i, nic in enumerate(dom.devices.interfaces):
        n = int(pinned.get((nic.mac_address or "").lower(), i))
        out.append(NicIds(f"hostnet{n}", device_id(nic.alias, f"net{n}"), taps.get(i)))
    return out


def _number(ids: NicIds) -> int:
    return int(ids.netdev.removeprefix("hostnet"))


def _repin(dom: Domain, rt: DomainRuntime, now: list[NicIds]) -> dict[str, int]:
    """After the live XML `dom` changed, make it name each NIC's tap and ids as QEMU has them
    (`now`, by position): `<target dev>` where the tap is not the one a start would pick there,
    and the MAC -> N map for extras where N is not the position."""
    defaults = nics.tap_names(dom, rt.domain_id)
    pinned: dict[str, int] = {}
    for i, (nic, ids) in enumerate(zip(dom.devices.interfaces, now, strict=True)):
        if ids.tap is not None and defaults.get(i) != ids.tap:
            nic.target_dev = ids.tap
        if _number(ids) != i and nic.mac_address:
            pinned[nic.mac_address.lower()] = _number(ids)
    return pinned


def _extras(rt: DomainRuntime, taps: list[str], pinned: dict[str, int]) -> dict[str, Any]:
    extras = {k: v for k, v in rt.extras.items() if k != _NUMBERS}
    extras["taps"] = sorted(set(taps))
    if pinned:
        extras[_NUMBERS] = pinned
    return extras


def _put_extras(ctx: Context, uuid: str, change: Callable[[DomainRuntime], dict[str, Any]]) -> None:
    store = ctx.store
    with store.transaction():
        rt = store.get_runtime(uuid)
        assert rt is not None
        store.put_runtime(rt.replace(extras=change(rt)))


def _recorded_taps(rt: DomainRuntime) -> list[str]:
    return [str(t) for t in rt.extras.get("taps") or []]


# QMP -------------------------------------------------------------------------------------------


def netdev_args(nic: Interface, ids: NicIds) -> dict[str, Any]:
    """netdev_add's arguments: a user-mode backend, or the tap vmkit made (QEMU runs no script,
    and never vhost: hosts here have no /dev/vhost-net)."""
    if nic.type is InterfaceType.USER:
        return {"type": "user", "id": ids.netdev}
    assert ids.tap is not None
    args: dict[str, Any] = {
        "type": "tap",
        "id": ids.netdev,
        "ifname": ids.tap,
        "script": "no",
        "downscript": "no",
    }
    if nic.driver_queues is not None and nic.driver_queues > 1:
        args["queues"] = nic.driver_queues
    return args


def device_args(dom: Domain, nic: Interface, ids: NicIds) -> tuple[dict[str, Any], DeviceArg]:
    """device_add's arguments (without the bus) and the argv builder's DeviceArg of the NIC, as
    a start makes them for a NIC numbered like `ids`."""
    from vmkit.qemu.argv_context import ArgvOptions, Ctx, DeviceArg, RuntimePaths
    from vmkit.qemu.argv_net import nic_items

    n = _number(ids)
    one = Domain(name=dom.name, uuid=dom.uuid, os=dom.os, features=dom.features)
    padding = [Interface(type=InterfaceType.USER) for _ in range(n)]
    one.devices = Devices(interfaces=[*padding, nic])
    taps = {n: ids.tap} if ids.tap else {}
    nowhere = Path("/nonexistent")
    ctx = Ctx(
        one, ArgvOptions(accel="tcg", taps=taps), RuntimePaths(*[nowhere] * 4), family_of(dom)
    )
    xpath = f"/domain/devices/interface[{n + 1}]"
    dev = next(i for i in nic_items(ctx) if isinstance(i, DeviceArg) and i.xpath == xpath)
    return {"driver": dev.driver, **dev.props}, dev


def plug_nic(mon: Monitor, dom: Domain, nic: Interface, ids: NicIds, what: str) -> None:
    """netdev_add, device_add; the backend is removed again when the device is refused."""
    device, arg = device_args(dom, nic, ids)
    props, place = pci_bus_props(mon, dom, arg.address, what)
    device.update(props)
    try:
        mon.execute("netdev_add", netdev_args(nic, ids))
    except QmpError as exc:
        raise QemuError(f"cannot attach {what}: {exc.desc}") from exc
    try:
        mon.execute("device_add", device)
    except BaseException as exc:
        quietly(lambda: mon.execute("netdev_del", {"id": ids.netdev}))
        if isinstance(exc, QmpError):
            raise QemuError(f"cannot attach {what}: {exc.desc}") from exc
        raise
    if place is not None and nic.address is None:
        nic.address = record_pci_place(dom, place)


def unplug_nic(mon: Monitor, ids: NicIds, *, timeout: float, what: str) -> str | None:
    """device_del + wait, then netdev_del; returns QEMU's complaint if the backend stayed."""
    unplug(mon, ids.device, timeout=timeout, what=what)
    try:
        mon.execute("netdev_del", {"id": ids.netdev})
    except QmpError as exc:
        if exc.error_class != "DeviceNotFound" and "not found" not in exc.desc.lower():
            return f"{ids.netdev}: {exc.desc}"
    return None


def _free_ids(mon: Monitor, dom: Domain, rt: DomainRuntime, pos: int, nic: Interface) -> NicIds:
    """Ids for the NIC at `pos` (the last one): N = its position unless a NIC that moved up, or
    a device QEMU still holds, has it already."""
    from vmkit.qemu.argv_context import device_id

    others = qemu_ids(dom, rt)[:pos]
    taken = {_number(i) for i in others}
    held = set(peripherals(mon))
    n = pos
    while n in taken or f"net{n}" in held or device_id(nic.alias, f"net{n}") in held:
        n += 1
    tap = None
    if nic.type in TAP_TYPES:
        wanted = nics.tap_names(dom, rt.domain_id)[pos]
        tap = wanted if nic.target_dev == wanted else f"vk{rt.domain_id}n{n}"
        if tap in {i.tap for i in others}:
            raise Conflict(
                "interface", tap, f"tap '{tap}' is already used by another interface of the domain"
            )
    return NicIds(f"hostnet{n}", device_id(nic.alias, f"net{n}"), tap)


# attach ----------------------------------------------------------------------------------------


def attach_interface(ctx: Context, key: str, nic: Interface, flags: Flags) -> Interface:
    """attach-interface / attach-device <interface>; returns the NIC (with its MAC)."""
    from vmkit.model.validate import validate_domain

    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        edit = begin_edit(lookup(ctx, uuid), flags)
        nic = copy.deepcopy(nic)
        _assign_mac(ctx, edit, nic)
        what = f"interface '{nic.mac_address}' of domain '{edit.name}'"
        for dom in edit.targets():
            dom.devices.interfaces.append(copy.deepcopy(nic))
            validate_domain(dom)
        if edit.config is not None:
            check_config(edit.config)
            _check_network_defined(ctx, nic)
        if edit.live is None:
            commit_edit(ctx, edit, "interface-attached", str(nic.mac_address))
            return nic
        _attach_live(ctx, edit, what)
        return nic


def _check_network_defined(ctx: Context, nic: Interface) -> None:
    """A config change may name an inactive network (it is started at boot), not a missing one."""
    from vmkit.engine.net_records import find

    name = nic.source_network
    if nic.type is InterfaceType.NETWORK and name and name != "default" and not find(ctx, name):
        raise NotFound(
            "network", name, f"network '{name}' not found: no network with matching name"
        )


def _attach_live(ctx: Context, edit: Edit, what: str) -> None:
    live, rt = edit.live, edit.entry.runtime
    assert live is not None and rt is not None
    refuse_microvm(live, what)
    pos = len(live.devices.interfaces) - 1
    nic = live.devices.interfaces[pos]
    check_config(live)
    uuid = edit.entry.uuid
    with open_monitor(edit.entry) as mon:
        ids = _free_ids(mon, live, rt, pos, nic)
        plans = nics.plan_taps(ctx, live, {pos: ids.tap}) if ids.tap else []
        now = [*qemu_ids(live, rt)[:pos], ids]
        pinned = _repin(live, rt, now)
        if ids.tap:  # recorded first: a crash from here on leaves no tap that a stop keeps
            _put_extras(ctx, uuid, lambda r: {**r.extras, "taps": [*_recorded_taps(r), ids.tap]})
        try:
            nics.create_taps(plans)
            plug_nic(mon, live, nic, ids, what)
            try:
                with ctx.store.transaction():
                    tap = ids.tap
                    add = [tap] if tap else []
                    _put_extras(ctx, uuid, lambda r: _extras(r, [*_recorded_taps(r), *add], pinned))
                    commit_edit(ctx, edit, "interface-attached", str(nic.mac_address))
            except BaseException:
                quietly(lambda: unplug_nic(mon, ids, timeout=10.0, what=what))
                raise
        except BaseException:
            if ids.tap:
                tap = ids.tap
                nics.delete_taps([tap])
                quietly(lambda: _forget_tap(ctx, uuid, tap))
            raise


def _forget_tap(ctx: Context, uuid: str, tap: str) -> None:
    def change(rt: DomainRuntime) -> dict[str, Any]:
        return {**rt.extras, "taps": [t for t in _recorded_taps(rt) if t != tap]}

    _put_extras(ctx, uuid, change)


# detach ----------------------------------------------------------------------------------------

Selector = Callable[[Domain, str], Interface]


def by_type_and_mac(kind: InterfaceType, mac: str | None) -> Selector:
    """detach-interface's choice (virsh's messages): the one NIC of `kind`, or the one with
    `mac`."""

    def select(dom: Domain, scope: str) -> Interface:
        found = [n for n in dom.devices.interfaces if n.type == kind]
        if mac is not None:
            found = [n for n in found if (n.mac_address or "").lower() == mac.lower()]
        where = f"in the {scope} configuration of domain '{dom.name}'"
        if not found:
            message = (
                f"No interface with MAC address {mac} was found"
                if mac is not None
                else f"No interface found whose type is {kind}"
            )
            raise NotFound("interface", mac or str(kind), f"{message} {where}")
        if len(found) > 1:
            raise InvalidConfig(
                f"Domain has {len(found)} interfaces. Please specify which one to detach "
                f"using --mac ({where})"
            )
        return found[0]

    return select


def by_device(want: Interface) -> Selector:
    """detach-device's choice: by MAC when the XML has one, else by type and source."""
    if want.mac_address is not None:
        return by_type_and_mac(want.type, want.mac_address)

    def select(dom: Domain, scope: str) -> Interface:
        found = [
            n
            for n in dom.devices.interfaces
            if n.type == want.type
            and want.source_network in (None, n.source_network)
            and want.source_bridge in (None, n.source_bridge)
            and want.target_dev in (None, n.target_dev)
        ]
        if len(found) == 1:
            return found[0]
        if not found:
            raise NotFound(
                "interface",
                str(want.type),
                f"no matching interface in the {scope} configuration of domain '{dom.name}'",
            )
        raise InvalidConfig(
            f"{len(found)} interfaces of domain '{dom.name}' match: give the one to detach a "
            "<mac address='...'/>"
        )

    return select


def detach_interface(
    ctx: Context,
    key: str,
    select: Selector,
    flags: Flags,
    *,
    timeout: float = DETACH_TIMEOUT,
) -> Interface:
    """detach-interface / detach-device <interface>: remove the NIC `select` picks; returns it."""
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        edit = begin_edit(lookup(ctx, uuid), flags)
        found = [(dom, select(dom, edit.scope_name(dom))) for dom in edit.targets()]
        nic = found[0][1]
        what = f"interface '{nic.mac_address}' of domain '{edit.name}'"
        problem = None
        pinned: dict[str, int] = {}
        taps: list[str] = []
        if edit.live is not None:
            problem, pinned, taps = _detach_live(edit, found[0][1], timeout, what)
        for dom, gone in found:
            dom.devices.interfaces = [x for x in dom.devices.interfaces if x is not gone]
        with ctx.store.transaction():
            if edit.live is not None:
                _put_extras(ctx, uuid, lambda r: _extras(r, taps, pinned))
            commit_edit(ctx, edit, "interface-detached", str(nic.mac_address))
        if problem:
            raise QemuError(f"{what} was detached, but QEMU kept its backend: {problem}")
        return nic


def _detach_live(
    edit: Edit, nic: Interface, timeout: float, what: str
) -> tuple[str | None, dict[str, int], list[str]]:
    """Unplug `nic` from QEMU, delete its tap, and pin the NICs after it in the live XML;
    returns (QEMU's complaint, extras' MAC -> N, the taps still in use)."""
    live, rt = edit.live, edit.entry.runtime
    assert live is not None and rt is not None
    refuse_microvm(live, what)
    pos = next(i for i, n in enumerate(live.devices.interfaces) if n is nic)
    now = qemu_ids(live, rt)
    ids = now.pop(pos)
    with open_monitor(edit.entry) as mon:
        problem = unplug_nic(mon, ids, timeout=timeout, what=what)
    if ids.tap:
        nics.delete_taps([ids.tap])
    live.devices.interfaces.pop(pos)
    pinned = _repin(live, rt, now)
    live.devices.interfaces.insert(pos, nic)  # the caller removes it from every target
    taps = [t for t in _recorded_taps(rt) if t != ids.tap]
    return problem, pinned, taps


# attach-device / detach-device ----------------------------------------------------------------


class InterfaceHandler:
    """attach-device / detach-device for `<interface>`."""

    def attach(self, ctx: Context, key: str, device: Device, flags: Flags) -> None:
        assert isinstance(device, Interface)
        attach_interface(ctx, key, device, flags)

    def detach(
        self, ctx: Context, key: str, device: Device, flags: Flags, *, timeout: float
    ) -> None:
        assert isinstance(device, Interface)
        detach_interface(ctx, key, by_device(device), flags, timeout=timeout)
