"""`<interface>` -> `-netdev` + `-device` (the NIC the guest sees).

network / bridge / ethernet interfaces use a tap vmkit created before the start
(`ArgvOptions.taps[i]`, i = the interface's position) or, failing that, the XML's
`<target dev>`; QEMU never runs ifup scripts (`script=no,downscript=no`) unless the XML names
one. `vhost=on` only when the host has /dev/vhost-net (`ArgvOptions.vhost_net`) and the XML
does not ask for `<driver name='qemu'>`; asking for vhost on a host without it is an error.
user -> `-netdev user`. Ids follow libvirt: `hostnetN` for the backend, `netN` for the NIC.
Link state down is not a start-up property in QEMU: the engine sets it over QMP `set_link`.

Pure: no I/O.
"""

from __future__ import annotations

import re

from vmkit.errors import InvalidConfig
from vmkit.model.devices import Interface, InterfaceType, NicModel
from vmkit.qemu.argv_context import (
    Ctx,
    DeviceArg,
    Item,
    OptValue,
    Slot,
    check_path,
    device_id,
    render_opts,
)

_TAP_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_NIC_DRIVERS = {
    NicModel.VIRTIO: "virtio-net-pci",
    NicModel.E1000: "e1000",
    NicModel.E1000E: "e1000e",
    NicModel.RTL8139: "rtl8139",
    NicModel.NE2K_PCI: "ne2k_pci",
    NicModel.PCNET: "pcnet",
}
_TAP_TYPES = {InterfaceType.NETWORK, InterfaceType.BRIDGE, InterfaceType.ETHERNET}


def nic_items(ctx: Ctx) -> list[Item]:
    items: list[Item] = []
    for i, nic in enumerate(ctx.dom.devices.interfaces):
        xpath = f"/domain/devices/interface[{i + 1}]"
        items.append(("-netdev", render_opts(*_netdev(ctx, nic, i, xpath))))
        items.append(_nic_device(ctx, nic, i, xpath))
    return items


def tap_name(ctx: Ctx, nic: Interface, i: int, xpath: str) -> str:
    """The tap interface `i` uses: the one vmkit made for it, else `<target dev>`."""
    name = ctx.opts.taps.get(i) or nic.target_dev
    if name is None:
        raise InvalidConfig(
            f"interface {i} (type '{nic.type}') has no tap: none was created for it and it "
            "has no <target dev>",
            xpath=xpath + "/target/@dev",
        )
    if not _TAP_RE.match(name):
        raise InvalidConfig(
            f"'{name}' is not a valid tap name (1-15 letters, digits, '_', '.', ':' or '-')",
            xpath=xpath + "/target/@dev",
            value=name,
        )
    return name


def _netdev(ctx: Ctx, nic: Interface, i: int, xpath: str) -> tuple[str, dict[str, OptValue]]:
    ident = f"hostnet{i}"
    if nic.type is InterfaceType.USER:
        if nic.script_path is not None:
            raise InvalidConfig(
                "a user-mode interface runs no script", xpath=xpath + "/script/@path"
            )
        return "user", {"id": ident}
    if nic.type not in _TAP_TYPES:
        raise InvalidConfig(
            f"interface type '{nic.type}' is not supported",
            xpath=xpath + "/@type",
            value=str(nic.type),
        )
    props: dict[str, OptValue] = {"id": ident, "ifname": tap_name(ctx, nic, i, xpath)}
    script = nic.script_path
    props["script"] = check_path(script, xpath + "/script/@path") if script else "no"
    props["downscript"] = "no"
    if _vhost(ctx, nic, xpath):
        props["vhost"] = True
    if nic.driver_queues is not None and nic.driver_queues > 1:
        props["queues"] = nic.driver_queues
    return "tap", props


def _vhost(ctx: Ctx, nic: Interface, xpath: str) -> bool:
    if nic.driver_name not in (None, "qemu", "vhost"):
        raise InvalidConfig(
            f"interface driver '{nic.driver_name}' is not supported (qemu, vhost)",
            xpath=xpath + "/driver/@name",
            value=nic.driver_name,
        )
    virtio = (nic.model_type or _default_model(ctx)) is NicModel.VIRTIO
    if nic.driver_name == "vhost" and not (ctx.opts.vhost_net and virtio):
        raise InvalidConfig(
            "vhost-net was asked for but is not available (no /dev/vhost-net on this host, "
            "or not a virtio NIC)",
            xpath=xpath + "/driver/@name",
            value="vhost",
        )
    return ctx.opts.vhost_net and virtio and nic.driver_name != "qemu"


def _default_model(ctx: Ctx) -> NicModel:
    """libvirt's default NIC for x86 is rtl8139; microvm only has virtio."""
    return NicModel.VIRTIO if ctx.microvm else NicModel.RTL8139


def _nic_device(ctx: Ctx, nic: Interface, i: int, xpath: str) -> DeviceArg:
    model = nic.model_type or _default_model(ctx)
    virtio = model is NicModel.VIRTIO
    if ctx.microvm and not virtio:
        raise InvalidConfig(
            f"NIC model '{model}' is not available on microvm (only virtio)",
            xpath=xpath + "/model/@type",
            value=str(model),
        )
    driver = ctx.virtio("virtio-net-pci", "virtio-net-device") if virtio else _NIC_DRIVERS[model]
    props: dict[str, OptValue] = {"netdev": f"hostnet{i}", "id": device_id(nic.alias, f"net{i}")}
    if nic.mac_address is not None:
        props["mac"] = nic.mac_address.lower()
    queues = nic.driver_queues
    if queues is not None and queues > 1:
        _virtio_only(virtio, "multiqueue (driver queues)", xpath + "/driver/@queues")
        if nic.type is InterfaceType.USER:
            raise InvalidConfig(
                "a user-mode interface has one queue", xpath=xpath + "/driver/@queues"
            )
        props["mq"] = True
        if not ctx.microvm:
            props["vectors"] = 2 * queues + 2
    if nic.mtu_size is not None:
        _virtio_only(virtio, "the MTU", xpath + "/mtu/@size")
        props["host_mtu"] = nic.mtu_size
    if nic.link_state not in (None, "up", "down"):
        raise InvalidConfig(
            f"link state '{nic.link_state}' is not valid (up, down)",
            xpath=xpath + "/link/@state",
            value=nic.link_state,
        )
    index = ctx.boot_index(nic)
    if index is not None:
        props["bootindex"] = index
    address = ctx.pci_address(nic.address, xpath)
    slot = Slot.NONE if ctx.microvm else Slot.PORT
    return DeviceArg(driver, props, xpath, slot, address)


def _virtio_only(virtio: bool, what: str, xpath: str) -> None:
    if not virtio:
        raise InvalidConfig(f"{what} is only supported on virtio NICs", xpath=xpath)
