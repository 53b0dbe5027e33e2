"""`<serial>`, `<console>`, `<channel>` and virtio-serial controllers -> `-chardev` + `-device`.

The first pty serial port is vmkit's console: a unix socket server (`RuntimePaths.
console_socket`) that logs to `RuntimePaths.console_log` (or the XML's `<log file>`), so a
client can attach, detach and re-attach while the guest never blocks (PLATFORM.md). Further
pty ports are QEMU ptys. file -> `file`, unix -> `socket` (server for mode bind or no mode,
client for connect), null -> `null`; `<log file>` -> `logfile=`.

A `<console>` of target type serial (or none) that names an existing serial port is libvirt's
usual alias of that port and adds nothing; without such a serial it becomes one. A virtio
console is a `virtconsole` and a channel a `virtserialport` (name= the target name, e.g.
org.qemu.guest_agent.0) on a virtio-serial controller, added when the XML declares none. A
unix channel without a path gets one in `RuntimePaths.run_dir`.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vmkit.errors import InvalidConfig
from vmkit.model.devices import CharDevice, CharType, ControllerType
from vmkit.qemu.argv_context import (
    Ctx,
    DeviceArg,
    Item,
    OptValue,
    Slot,
    check_path,
    device_id,
    expect_address,
    int_attr,
    render_opts,
)
from vmkit.qemu.argv_devices import usb_bus_props

_CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SERIAL_DEVICES = {
    "isa-serial": "isa-serial",
    "pci-serial": "pci-serial",
    "usb-serial": "usb-serial",
}


@dataclass
class _Ports:
    """virtio-serial ports taken per controller."""

    used: dict[int, set[int]] = field(default_factory=dict)

    def take(self, ctrl: int, port: int, xpath: str) -> None:
        taken = self.used.setdefault(ctrl, set())
        if port in taken:
            raise InvalidConfig(
                f"virtio-serial port {port} of controller {ctrl} is used twice",
                xpath=xpath + "/address/@port",
                value=port,
            )
        taken.add(port)

    def next_free(self, ctrl: int, start: int) -> int:
        taken = self.used.setdefault(ctrl, set())
        port = start
        while port in taken:
            port += 1
        taken.add(port)
        return port


def chardev_items(ctx: Ctx) -> list[Item]:
    serials = _serial_ports(ctx)
    console = next((i for i, (dev, _, _) in enumerate(serials) if dev.type is CharType.PTY), None)
    items: list[Item] = []
    for i, (dev, port, xpath) in enumerate(serials):
        items += _serial_items(ctx, dev, port, xpath, console=i == console)
    items += _virtio_serial_items(ctx)
    return items


def _serial_ports(ctx: Ctx) -> list[tuple[CharDevice, int, str]]:
    """Serial ports in order with their port numbers; consoles that are new serials last."""
    found: list[tuple[CharDevice, int, str]] = []
    ports: set[int] = set()
    for i, dev in enumerate(ctx.dom.devices.serials, start=1):
        xpath = f"/domain/devices/serial[{i}]"
        port = dev.target_port if dev.target_port is not None else _lowest_free(ports)
        if port in ports:
            raise InvalidConfig(
                f"serial port {port} is defined twice", xpath=xpath + "/target/@port", value=port
            )
        ports.add(port)
        found.append((dev, port, xpath))
    for j, dev in enumerate(ctx.dom.devices.consoles, start=1):
        xpath = f"/domain/devices/console[{j}]"
        if dev.target_type not in (None, "serial", "virtio"):
            raise InvalidConfig(
                f"console target type '{dev.target_type}' is not supported (serial, virtio)",
                xpath=xpath + "/target/@type",
                value=dev.target_type,
            )
        port = dev.target_port or 0
        if dev.target_type != "virtio" and port not in ports:
            ports.add(port)
            plain = CharDevice("serial", dev.type, dev.source_path, dev.source_mode)
            plain.log_file, plain.log_append, plain.alias = dev.log_file, dev.log_append, dev.alias
            found.append((plain, port, xpath))
    return found


def _lowest_free(ports: set[int]) -> int:
    port = 0
    while port in ports:
        port += 1
    return port


def _serial_items(ctx: Ctx, dev: CharDevice, port: int, xpath: str, *, console: bool) -> list[Item]:
    chardev = f"charserial{port}"
    driver = _serial_driver(ctx, dev, xpath)
    props: dict[str, OptValue] = {"chardev": chardev, "id": device_id(dev.alias, f"serial{port}")}
    slot = Slot.NONE
    address = None
    if driver == "isa-serial":
        props.update(_isa_props(dev, port, xpath))
    elif driver == "pci-serial":
        slot, address = Slot.PORT, expect_address(dev.address, ("pci",), xpath)
    else:
        props = {**usb_bus_props(dev.address, xpath), **props}
    backend = _backend(ctx, dev, chardev, xpath, console=console)
    return [("-chardev", backend), DeviceArg(driver, props, xpath, slot, address)]


def _serial_driver(ctx: Ctx, dev: CharDevice, xpath: str) -> str:
    kind = dev.target_type or "isa-serial"
    driver = _SERIAL_DEVICES.get(kind)
    if driver is None:
        raise InvalidConfig(
            f"serial target type '{kind}' is not supported (isa-serial, pci-serial, usb-serial)",
            xpath=xpath + "/target/@type",
            value=kind,
        )
    if dev.target_model not in (None, driver):
        raise InvalidConfig(
            f"serial target model '{dev.target_model}' does not fit target type '{kind}'",
            xpath=xpath + "/target/model/@name",
            value=dev.target_model,
        )
    if driver != "isa-serial":
        ctx.refuse_on_microvm(f"a {driver} port", xpath + "/target/@type")
    return driver


def _isa_props(dev: CharDevice, port: int, xpath: str) -> dict[str, OptValue]:
    addr = expect_address(dev.address, ("isa",), xpath)
    if addr is not None:
        props: dict[str, OptValue] = {}
        if "iobase" in addr.attrs:
            props["iobase"] = int_attr(addr, "iobase", xpath)
        if "irq" in addr.attrs:
            props["irq"] = int_attr(addr, "irq", xpath)
        if props:
            return props
    if port > 3:
        raise InvalidConfig(
            f"ISA serial port {port} needs an <address type='isa' iobase= irq=> (ports 0-3 "
            "have standard ones)",
            xpath=xpath + "/target/@port",
            value=port,
        )
    return {"index": port}


def _backend(ctx: Ctx, dev: CharDevice, ident: str, xpath: str, *, console: bool = False) -> str:
    """The -chardev value for `dev`; the console one is vmkit's logged socket."""
    props: dict[str, OptValue | None] = {"id": ident}
    if console:
        props.update(
            path=str(ctx.paths.console_socket),
            server=True,
            wait=False,
            logfile=dev.log_file or str(ctx.paths.console_log),
            logappend=dev.log_append is not False,
        )
        if dev.log_file is not None:
            check_path(dev.log_file, xpath + "/log/@file")
        return render_opts("socket", props)
    kind = _backend_kind(ctx, dev, props, xpath)
    if dev.log_file is not None:
        props["logfile"] = check_path(dev.log_file, xpath + "/log/@file")
        if dev.log_append is not None:
            props["logappend"] = dev.log_append
    return render_opts(kind, props)


def _backend_kind(ctx: Ctx, dev: CharDevice, props: dict[str, OptValue | None], xpath: str) -> str:
    if dev.type is CharType.PTY:
        return "pty"
    if dev.type is CharType.NULL:
        return "null"
    path = dev.source_path
    if path is None and dev.type is CharType.UNIX and dev.kind == "channel":
        name = dev.target_name or "channel"
        path = str(ctx.paths.run_dir / f"{name}.sock")
    if path is None:
        raise InvalidConfig(
            f"a {dev.type} {dev.kind} needs <source path=...>", xpath=xpath + "/source/@path"
        )
    props["path"] = check_path(path, xpath + "/source/@path")
    if dev.type is CharType.FILE:
        return "file"
    if dev.source_mode not in (None, "bind", "connect"):
        raise InvalidConfig(
            f"source mode '{dev.source_mode}' is not valid (bind, connect)",
            xpath=xpath + "/source/@mode",
            value=dev.source_mode,
        )
    if dev.source_mode != "connect":
        props.update(server=True, wait=False)
    return "socket"


def _virtio_serial_items(ctx: Ctx) -> list[Item]:
    """virtio-serial controllers, then virtio consoles and channels as ports on them."""
    items: list[Item] = []
    ports = _Ports()
    consoles = [
        (dev, f"/domain/devices/console[{j}]")
        for j, dev in enumerate(ctx.dom.devices.consoles, start=1)
        if dev.target_type == "virtio"
    ]
    channels = [
        (dev, f"/domain/devices/channel[{k}]")
        for k, dev in enumerate(ctx.dom.devices.channels, start=1)
    ]
    items += _controllers(ctx, need=bool(consoles or channels))
    for dev, xpath in [*consoles, *channels]:
        addr = expect_address(dev.address, ("virtio-serial",), xpath)
        if addr is not None:
            if int_attr(addr, "bus", xpath) != 0:
                raise InvalidConfig("virtio-serial has one bus (0)", xpath=xpath + "/address")
            ports.take(int_attr(addr, "controller", xpath), int_attr(addr, "port", xpath), xpath)
    for n, (dev, xpath) in enumerate(consoles):
        items += _port_items(ctx, dev, xpath, ports, f"console{n}", "virtconsole")
    for n, (dev, xpath) in enumerate(channels):
        items += _port_items(ctx, dev, xpath, ports, f"channel{n}", "virtserialport")
    return items


def _controllers(ctx: Ctx, *, need: bool) -> list[Item]:
    items: list[Item] = []
    seen: set[int] = set()
    driver = ctx.virtio("virtio-serial-pci", "virtio-serial-device")
    slot = Slot.NONE if ctx.microvm else Slot.PORT
    for i, ctrl in enumerate(ctx.dom.devices.controllers, start=1):
        if ctrl.type is not ControllerType.VIRTIO_SERIAL:
            continue
        xpath = f"/domain/devices/controller[{i}]"
        if ctrl.index in seen:
            raise InvalidConfig(
                f"more than one virtio-serial controller has index {ctrl.index}",
                xpath=xpath + "/@index",
            )
        seen.add(ctrl.index)
        props: dict[str, OptValue] = {"id": f"virtio-serial{ctrl.index}"}
        if ctrl.ports is not None:
            props["max_ports"] = ctrl.ports
        address = ctx.pci_address(ctrl.address, xpath)
        items.append(DeviceArg(driver, props, xpath, slot, address))
    if need and 0 not in seen:
        items.append(DeviceArg(driver, {"id": "virtio-serial0"}, "/domain/devices", slot))
    return items


def _port_items(
    ctx: Ctx, dev: CharDevice, xpath: str, ports: _Ports, ident: str, driver: str
) -> list[Item]:
    if dev.kind == "channel" and dev.target_type not in (None, "virtio"):
        raise InvalidConfig(
            f"channel target type '{dev.target_type}' is not supported (virtio)",
            xpath=xpath + "/target/@type",
            value=dev.target_type,
        )
    addr = dev.address
    if addr is not None:
        ctrl, port = int_attr(addr, "controller", xpath), int_attr(addr, "port", xpath)
    else:
        ctrl = 0
        port = ports.next_free(0, 0 if driver == "virtconsole" else 1)
    if driver == "virtserialport" and port == 0:
        raise InvalidConfig(
            "virtio-serial port 0 is reserved for a console", xpath=xpath + "/address/@port"
        )
    chardev = f"char{ident}"
    props: dict[str, OptValue] = {
        "bus": f"virtio-serial{ctrl}.0",
        "nr": port,
        "chardev": chardev,
        "id": device_id(dev.alias, ident),
    }
    if dev.target_name is not None:
        if not _CHANNEL_NAME_RE.match(dev.target_name):
            raise InvalidConfig(
                f"malformed channel name '{dev.target_name}'",
                xpath=xpath + "/target/@name",
                value=dev.target_name,
            )
        props["name"] = dev.target_name
    return [("-chardev", _backend(ctx, dev, chardev, xpath)), DeviceArg(driver, props, xpath)]
