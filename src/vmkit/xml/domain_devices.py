"""`<devices>` of libvirt's domain XML <-> vmkit.model.devices, one reader and writer per kind.

Reads strictly (see xmlutil.Node); writes in libvirt's element order. Runtime-only parts (alias,
a pty's path, a console's tty, source index, a network NIC's bridge and port id, a channel's
state) are written unless `inactive`. Does not check semantics across devices: that is
vmkit.model.validate's job.
"""

from __future__ import annotations

import re

from vmkit.model.devices import (
    Address,
    CharDevice,
    CharType,
    Controller,
    ControllerType,
    Devices,
    Disk,
    DiskBus,
    DiskCache,
    DiskDevice,
    DiskFormat,
    DiskIo,
    DiskType,
    Graphics,
    GraphicsType,
    Input,
    Interface,
    InterfaceType,
    MemBalloon,
    NicModel,
    Rng,
    Video,
    VideoModel,
    Watchdog,
)
from vmkit.xml.xmlutil import Elem, Node, on_off, yes_no

ADDRESS_ATTRS: dict[str, tuple[str, ...]] = {
    "pci": ("domain", "bus", "slot", "function", "multifunction"),
    "drive": ("controller", "bus", "target", "unit"),
    "usb": ("bus", "port"),
    "virtio-serial": ("controller", "bus", "port"),
    "isa": ("iobase", "irq"),
    "virtio-mmio": (),
}
CONTROLLER_MODELS: dict[ControllerType, tuple[str, ...]] = {
    ControllerType.IDE: (),
    ControllerType.FDC: (),
    ControllerType.SATA: (),
    ControllerType.SCSI: ("virtio-scsi", "lsilogic"),
    ControllerType.USB: ("qemu-xhci", "nec-xhci", "piix3-uhci", "ehci", "none"),
    ControllerType.PCI: ("pci-root", "pcie-root", "pcie-root-port"),
    ControllerType.VIRTIO_SERIAL: (),
}
_ROOT_PCI_MODELS = ("pci-root", "pcie-root")
_CHAR_TARGET_TYPES = {
    "serial": ("isa-serial",),
    "console": ("serial", "virtio"),
    "channel": ("virtio",),
}
_IFNAME_MAX = 15
_LISTEN_RE = re.compile(r"^[A-Za-z0-9.:%_-]+$")


def read_devices(node: Node) -> Devices:
    devs = Devices()
    devs.emulator = _path_text(node.child("emulator"))
    devs.disks = [read_disk(n) for n in node.children("disk")]
    devs.controllers = _read_controllers(node.children("controller"))
    devs.interfaces = [read_interface(n) for n in node.children("interface")]
    for kind, target in (
        ("serial", devs.serials),
        ("console", devs.consoles),
        ("channel", devs.channels),
    ):
        target.extend(read_chardev(n) for n in node.children(kind))
    devs.graphics = [read_graphics(n) for n in node.children("graphics")]
    devs.videos = [read_video(n) for n in node.children("video")]
    devs.inputs = [read_input(n) for n in node.children("input")]
    balloon = node.child("memballoon")
    devs.memballoon = read_memballoon(balloon) if balloon is not None else None
    devs.rngs = [read_rng(n) for n in node.children("rng")]
    devs.watchdogs = [read_watchdog(n) for n in node.children("watchdog")]
    node.finish()
    return devs


def render_devices(devs: Devices, *, inactive: bool) -> Elem:
    el = Elem("devices")
    if devs.emulator is not None:
        el.sub("emulator", devs.emulator)
    for disk in devs.disks:
        el.add(render_disk(disk, inactive))
    for ctl in devs.controllers:
        el.add(render_controller(ctl, inactive))
    for nic in devs.interfaces:
        el.add(render_interface(nic, inactive))
    for chardev in (*devs.serials, *devs.consoles, *devs.channels):
        el.add(render_chardev(chardev, inactive))
    for inp in devs.inputs:
        el.add(
            _with_info(Elem("input", type=inp.type, bus=inp.bus), inp.alias, inp.address, inactive)
        )
    for gfx in devs.graphics:
        if gfx.type != GraphicsType.NONE:  # libvirt has no <graphics type='none'>: headless
            el.add(render_graphics(gfx))
    for video in devs.videos:
        el.add(render_video(video, inactive))
    for dog in devs.watchdogs:
        wd = Elem("watchdog", model=dog.model, action=dog.action)
        el.add(_with_info(wd, dog.alias, dog.address, inactive))
    if devs.memballoon is not None:
        el.add(render_memballoon(devs.memballoon, inactive))
    for rng in devs.rngs:
        el.add(render_rng(rng, inactive))
    return el


# common parts --------------------------------------------------------------------------------


def _path_text(node: Node | None) -> str | None:
    if node is None:
        return None
    value = node.text()
    if not value.startswith("/"):
        raise node.error(f"invalid value '{value}' for <{node.tag}>: expected an absolute path")
    node.finish()
    return value


def _path_attr(node: Node, name: str, *, required: bool = False) -> str | None:
    value = node.req_attr(name) if required else node.attr(name)
    if value is not None and not value.startswith("/"):
        raise node.error(
            f"invalid value '{value}' for attribute '{name}' of <{node.tag}>: "
            "expected an absolute path",
            attr=name,
            value=value,
        )
    return value


def _ifname_attr(node: Node, name: str, *, required: bool = False) -> str | None:
    value = node.name_attr(name, required=required)
    if value is not None and len(value) > _IFNAME_MAX:
        raise node.error(
            f"invalid value '{value}' for attribute '{name}' of <{node.tag}>: "
            f"an interface name has at most {_IFNAME_MAX} characters",
            attr=name,
            value=value,
        )
    return value


def _read_info(node: Node) -> tuple[str | None, Address | None]:
    """A device's `<alias name>` and `<address>`."""
    alias = node.child("alias")
    name = None
    if alias is not None:
        name = alias.name_attr("name", required=True)
        alias.finish()
    addr = node.child("address")
    return name, (_read_address(addr) if addr is not None else None)


def _read_address(node: Node) -> Address:
    kind = node.choice_attr("type", tuple(ADDRESS_ATTRS))
    if kind is None:
        raise node.error("missing required attribute 'type' in <address>", attr="type")
    attrs: dict[str, str] = {}
    for name in ADDRESS_ATTRS[kind]:
        if name == "multifunction":
            value = node.choice_attr(name, ("on", "off"))
        else:
            value = node.attr(name)
            if value is not None:
                node.int_attr(name)  # checks the number; the text is kept as written
        if value is not None:
            attrs[name] = value
    node.finish()
    return Address(type=kind, attrs=attrs)


def _with_info(
    el: Elem, alias: str | None, address: Address | None, inactive: bool, boot: int | None = None
) -> Elem:
    if boot is not None:
        el.sub("boot", order=boot)
    if alias is not None and (not inactive or alias.startswith("ua-")):
        el.sub("alias", name=alias)
    if address is not None:
        addr = el.sub("address", type=address.type)
        for name in ADDRESS_ATTRS.get(address.type, ()):
            addr.put(name, address.attrs.get(name))
        for name, value in address.attrs.items():
            if name not in ADDRESS_ATTRS.get(address.type, ()):
                addr.put(name, value)
    return el


def _read_boot(node: Node) -> int | None:
    boot = node.child("boot")
    if boot is None:
        return None
    order = boot.int_attr("order", minimum=1)
    if order is None:
        raise boot.error("missing required attribute 'order' in <boot>", attr="order")
    boot.finish()
    return order


# disks ---------------------------------------------------------------------------------------


def read_disk(node: Node) -> Disk:
    disk = Disk()
    disk.type = node.enum_attr("type", DiskType) or DiskType.FILE
    disk.device = node.enum_attr("device", DiskDevice) or DiskDevice.DISK
    driver = node.child("driver")
    if driver is not None:
        disk.driver_name = driver.choice_attr("name", ("qemu",))
        disk.driver_type = driver.enum_attr("type", DiskFormat)
        disk.driver_cache = driver.enum_attr("cache", DiskCache)
        disk.driver_io = driver.enum_attr("io", DiskIo)
        disk.driver_discard = driver.choice_attr("discard", ("unmap", "ignore"))
        driver.finish()
    source = node.child("source")
    if source is not None:
        _read_disk_source(source, disk)
    backing = node.raw_children("backingStore")
    disk.backing_store = backing[0] if backing else None
    target = node.req_child("target")
    disk.target_dev = target.req_attr("dev")
    disk.target_bus = target.enum_attr("bus", DiskBus)
    disk.target_tray = target.choice_attr("tray", ("open", "closed"))
    target.finish()
    disk.readonly = node.flag_child("readonly")
    disk.shareable = node.flag_child("shareable")
    serial = node.child("serial")
    if serial is not None:
        disk.serial = _disk_serial(serial)
    disk.boot_order = _read_boot(node)
    disk.alias, disk.address = _read_info(node)
    node.finish()
    return disk


def _read_disk_source(source: Node, disk: Disk) -> None:
    want, other = ("file", "dev") if disk.type == DiskType.FILE else ("dev", "file")
    if source.has(other):
        raise source.error(
            f"attribute '{other}' of <source> does not fit <disk type='{disk.type}'>; use '{want}'",
            attr=other,
        )
    disk.source = _path_attr(source, want)
    disk.source_index = source.int_attr("index", minimum=1)
    source.finish()


_SERIAL_RE = re.compile(r"^[A-Za-z0-9_.+\- ]+$")


def _disk_serial(node: Node) -> str:
    value = node.text()
    if not _SERIAL_RE.match(value):
        raise node.error(
            f"invalid disk serial '{value}': expected letters, digits, ' ', '.', '_', '+' or '-'"
        )
    node.finish()
    return value


def render_disk(disk: Disk, inactive: bool) -> Elem:
    el = Elem("disk", type=disk.type.value, device=disk.device.value)
    driver = Elem(
        "driver",
        name=disk.driver_name,
        type=disk.driver_type,
        cache=disk.driver_cache,
        io=disk.driver_io,
        discard=disk.driver_discard,
    )
    if not driver.is_empty():
        el.add(driver)
    if disk.source is not None:
        attr = "file" if disk.type == DiskType.FILE else "dev"
        src = el.sub("source").set(**{attr: disk.source})
        src.put("index", None if inactive else disk.source_index)
    if disk.backing_store is not None:
        el.raw(_reindent(disk.backing_store, 3))
    el.sub("target", dev=disk.target_dev, bus=disk.target_bus, tray=disk.target_tray)
    if disk.readonly:
        el.sub("readonly")
    if disk.shareable:
        el.sub("shareable")
    if disk.serial is not None:
        el.sub("serial", disk.serial)
    return _with_info(el, disk.alias, disk.address, inactive, disk.boot_order)


def _reindent(xml: str, level: int) -> str:
    """A preserved fragment (laid out for level 1) moved to `level`."""
    pad = "  " * (level - 1)
    lines = xml.split("\n")
    return "\n".join([lines[0], *(pad + line for line in lines[1:])])


# controllers ---------------------------------------------------------------------------------


def _read_controllers(nodes: list[Node]) -> list[Controller]:
    """Controllers; a missing index gets the lowest free one of its type, like libvirt."""
    read = [read_controller(n) for n in nodes]
    taken = {(c.type, c.index) for c, explicit in read if explicit}
    out = []
    for ctl, explicit in read:
        if not explicit:
            index = 0 if ctl.model in _ROOT_PCI_MODELS or ctl.type != ControllerType.PCI else 1
            while (ctl.type, index) in taken:
                index += 1
            ctl.index = index
            taken.add((ctl.type, index))
        out.append(ctl)
    return out


def read_controller(node: Node) -> tuple[Controller, bool]:
    kind = node.enum_attr("type", ControllerType)
    if kind is None:
        raise node.error("missing required attribute 'type' in <controller>", attr="type")
    ctl = Controller(type=kind)
    index = node.int_attr("index", minimum=0)
    ctl.index = index or 0
    ctl.model = node.choice_attr("model", CONTROLLER_MODELS[kind])
    ctl.ports = node.int_attr("ports", minimum=1)
    model = node.child("model")
    if model is not None:
        ctl.model_name = model.name_attr("name", required=True)
        model.finish()
    target = node.child("target")
    if target is not None:
        ctl.target_chassis = target.int_attr("chassis", minimum=0, maximum=255)
        ctl.target_port = target.int_attr("port", minimum=0, maximum=255)
        target.finish()
    ctl.alias, ctl.address = _read_info(node)
    node.finish()
    return ctl, index is not None


def render_controller(ctl: Controller, inactive: bool) -> Elem:
    el = Elem("controller", type=ctl.type.value, index=ctl.index, model=ctl.model, ports=ctl.ports)
    if ctl.model_name is not None:
        el.sub("model", name=ctl.model_name)
    if ctl.target_chassis is not None or ctl.target_port is not None:
        port = None if ctl.target_port is None else f"{ctl.target_port:#x}"
        el.sub("target", chassis=ctl.target_chassis, port=port)
    return _with_info(el, ctl.alias, ctl.address, inactive)


# interfaces ----------------------------------------------------------------------------------


def read_interface(node: Node) -> Interface:
    kind = node.enum_attr("type", InterfaceType)
    if kind is None:
        raise node.error("missing required attribute 'type' in <interface>", attr="type")
    nic = Interface(type=kind)
    mac = node.child("mac")
    if mac is not None:
        nic.mac_address = mac.req_attr("address")
        mac.finish()
    source = node.child("source")
    if source is not None:
        _read_nic_source(source, nic)
    elif kind in (InterfaceType.NETWORK, InterfaceType.BRIDGE):
        raise node.error(f"missing required element <source> in <interface type='{kind}'>")
    target = node.child("target")
    if target is not None:
        nic.target_dev = _ifname_attr(target, "dev", required=True)
        target.finish()
    script = node.child("script")
    if script is not None:
        nic.script_path = _path_attr(script, "path", required=True)
        script.finish()
    _read_nic_parts(node, nic)
    nic.boot_order = _read_boot(node)
    nic.alias, nic.address = _read_info(node)
    node.finish()
    return nic


def _read_nic_source(source: Node, nic: Interface) -> None:
    if nic.type == InterfaceType.NETWORK:
        nic.source_network = source.name_attr("network", required=True)
        nic.source_bridge = _ifname_attr(source, "bridge")
        nic.source_portid = source.attr("portid")
    elif nic.type == InterfaceType.BRIDGE:
        nic.source_bridge = _ifname_attr(source, "bridge", required=True)
    source.finish()


def _read_nic_parts(node: Node, nic: Interface) -> None:
    model = node.child("model")
    if model is not None:
        nic.model_type = model.enum_attr("type", NicModel)
        model.finish()
    driver = node.child("driver")
    if driver is not None:
        nic.driver_name = driver.choice_attr("name", ("qemu", "vhost"))
        nic.driver_queues = driver.int_attr("queues", minimum=1)
        driver.finish()
    link = node.child("link")
    if link is not None:
        nic.link_state = link.choice_attr("state", ("up", "down"))
        link.finish()
    mtu = node.child("mtu")
    if mtu is not None:
        nic.mtu_size = mtu.int_attr("size", minimum=68, maximum=65535)
        mtu.finish()


def render_interface(nic: Interface, inactive: bool) -> Elem:
    el = Elem("interface", type=nic.type.value)
    if nic.mac_address is not None:
        el.sub("mac", address=nic.mac_address)
    if nic.type == InterfaceType.NETWORK:
        src = el.sub("source", network=nic.source_network)
        if not inactive:
            src.set(portid=nic.source_portid, bridge=nic.source_bridge)
    elif nic.type == InterfaceType.BRIDGE:
        el.sub("source", bridge=nic.source_bridge)
    if nic.script_path is not None:
        el.sub("script", path=nic.script_path)
    if nic.target_dev is not None:
        el.sub("target", dev=nic.target_dev)
    if nic.model_type is not None:
        el.sub("model", type=nic.model_type.value)
    if nic.driver_name is not None or nic.driver_queues is not None:
        el.sub("driver", name=nic.driver_name, queues=nic.driver_queues)
    if nic.link_state is not None:
        el.sub("link", state=nic.link_state)
    if nic.mtu_size is not None:
        el.sub("mtu", size=nic.mtu_size)
    return _with_info(el, nic.alias, nic.address, inactive, nic.boot_order)


# character devices ---------------------------------------------------------------------------


def read_chardev(node: Node) -> CharDevice:
    kind = node.tag
    dev = CharDevice(kind=kind, type=node.enum_attr("type", CharType) or CharType.PTY)
    dev.tty = node.attr("tty")
    source = node.child("source")
    if source is not None:
        if dev.type == CharType.NULL:
            raise source.ctx.refuse(source.el)
        dev.source_path = _path_attr(source, "path")
        if dev.type == CharType.UNIX:
            dev.source_mode = source.choice_attr("mode", ("bind", "connect"))
        source.finish()
    if dev.source_path is None and (
        dev.type == CharType.FILE or (dev.type == CharType.UNIX and kind != "channel")
    ):
        raise node.error(f"<{kind} type='{dev.type}'> needs <source path=...>")
    log = node.child("log")
    if log is not None:
        dev.log_file = _path_attr(log, "file", required=True)
        dev.log_append = log.bool_attr("append", "on", "off")
        log.finish()
    target = node.child("target")
    if target is not None:
        _read_char_target(target, dev)
    elif kind == "channel":
        raise node.error("missing required element <target> in <channel>")
    dev.alias, dev.address = _read_info(node)
    node.finish()
    return dev


def _read_char_target(target: Node, dev: CharDevice) -> None:
    dev.target_type = target.choice_attr("type", _CHAR_TARGET_TYPES[dev.kind])
    if dev.kind == "channel":
        if dev.target_type is None:
            raise target.error("missing required attribute 'type' in <target>", attr="type")
        dev.target_name = target.name_attr("name")
        dev.target_state = target.choice_attr("state", ("connected", "disconnected"))
    else:
        dev.target_port = target.int_attr("port", minimum=0)
    if dev.kind == "serial":
        model = target.child("model")
        if model is not None:
            dev.target_model = model.choice_attr("name", ("isa-serial",))
            model.finish()
    target.finish()


def render_chardev(dev: CharDevice, inactive: bool) -> Elem:
    el = Elem(dev.kind, type=dev.type.value)
    if not inactive:
        el.put("tty", dev.tty)
    path = dev.source_path
    if inactive and dev.type == CharType.PTY:
        path = None
    if path is not None or dev.source_mode is not None:
        el.sub("source", mode=dev.source_mode, path=path)
    if dev.log_file is not None:
        el.sub("log", file=dev.log_file, append=on_off(dev.log_append))
    target = Elem("target", type=dev.target_type, port=dev.target_port, name=dev.target_name)
    if not inactive:
        target.put("state", dev.target_state)
    if dev.target_model is not None:
        target.sub("model", name=dev.target_model)
    if not target.is_empty():
        el.add(target)
    return _with_info(el, dev.alias, dev.address, inactive)


# graphics, video, input ----------------------------------------------------------------------


def read_graphics(node: Node) -> Graphics:
    kind = node.enum_attr("type", GraphicsType, (GraphicsType.VNC,))
    if kind is None:
        raise node.error("missing required attribute 'type' in <graphics>", attr="type")
    gfx = Graphics(type=kind)
    if kind == GraphicsType.VNC:
        gfx.port = _vnc_port(node, "port", 5900)
        gfx.autoport = node.bool_attr("autoport")
        gfx.websocket = _vnc_port(node, "websocket", 1)
        gfx.listen = _listen(node, node.attr("listen"))
        gfx.passwd = node.attr("passwd")
        gfx.keymap = node.name_attr("keymap")
        listens = node.children("listen")
        if len(listens) > 1:
            raise listens[1].ctx.refuse(listens[1].el)
        for listen in listens:
            _read_listen(listen, gfx)
    node.finish()
    return gfx


def _vnc_port(node: Node, name: str, low: int) -> int | None:
    port = node.int_attr(name, minimum=-1, maximum=65535)
    if port is not None and port != -1 and port < low:
        raise node.error(
            f"invalid value '{port}' for attribute '{name}' of <graphics>: "
            f"expected -1 (pick one) or a port from {low} to 65535",
            attr=name,
            value=port,
        )
    return port


def _listen(node: Node, value: str | None, attr: str = "listen") -> str | None:
    if value is not None and not _LISTEN_RE.match(value):
        raise node.error(
            f"invalid value '{value}' for attribute '{attr}' of <{node.tag}>: "
            "expected an IP address or host name",
            attr=attr,
            value=value,
        )
    return value


def _read_listen(listen: Node, gfx: Graphics) -> None:
    if listen.choice_attr("type", ("address",)) is None:
        raise listen.error("missing required attribute 'type' in <listen>", attr="type")
    address = _listen(listen, listen.attr("address"), "address")
    if address is not None:
        if gfx.listen is not None and gfx.listen != address:
            raise listen.error(
                f"<listen address='{address}'> disagrees with <graphics listen='{gfx.listen}'>",
                attr="address",
                value=address,
            )
        gfx.listen = address
    listen.finish()


def render_graphics(gfx: Graphics) -> Elem:
    el = Elem("graphics", type=gfx.type.value)
    if gfx.type == GraphicsType.VNC:
        el.set(port=gfx.port, autoport=yes_no(gfx.autoport), websocket=gfx.websocket)
        el.set(listen=gfx.listen, passwd=gfx.passwd, keymap=gfx.keymap)
        if gfx.listen is not None:
            el.sub("listen", type="address", address=gfx.listen)
    return el


def read_video(node: Node) -> Video:
    model = node.req_child("model")
    kind = model.enum_attr("type", VideoModel)
    if kind is None:
        raise model.error("missing required attribute 'type' in <model>", attr="type")
    video = Video(model_type=kind)
    video.ram = model.int_attr("ram")
    video.vram = model.int_attr("vram")
    video.vgamem = model.int_attr("vgamem")
    video.heads = model.int_attr("heads", minimum=1)
    video.primary = model.bool_attr("primary")
    model.finish()
    video.alias, video.address = _read_info(node)
    node.finish()
    return video


def render_video(video: Video, inactive: bool) -> Elem:
    el = Elem("video")
    model = el.sub("model", type=video.model_type.value, ram=video.ram, vram=video.vram)
    model.set(vgamem=video.vgamem, heads=video.heads, primary=yes_no(video.primary))
    return _with_info(el, video.alias, video.address, inactive)


def read_input(node: Node) -> Input:
    kind = node.choice_attr("type", ("mouse", "tablet", "keyboard"))
    if kind is None:
        raise node.error("missing required attribute 'type' in <input>", attr="type")
    inp = Input(type=kind, bus=node.choice_attr("bus", ("ps2", "usb", "virtio")))
    inp.alias, inp.address = _read_info(node)
    node.finish()
    return inp


# balloon, rng, watchdog ----------------------------------------------------------------------


def read_memballoon(node: Node) -> MemBalloon:
    model = node.choice_attr("model", ("virtio", "none"))
    if model is None:
        raise node.error("missing required attribute 'model' in <memballoon>", attr="model")
    balloon = MemBalloon(model=model, autodeflate=node.bool_attr("autodeflate", "on", "off"))
    stats = node.child("stats")
    if stats is not None:
        balloon.stats_period = stats.int_attr("period")
        stats.finish()
    balloon.alias, balloon.address = _read_info(node)
    node.finish()
    return balloon


def render_memballoon(balloon: MemBalloon, inactive: bool) -> Elem:
    el = Elem("memballoon", model=balloon.model, autodeflate=on_off(balloon.autodeflate))
    if balloon.stats_period is not None:
        el.sub("stats", period=balloon.stats_period)
    return _with_info(el, balloon.alias, balloon.address, inactive)


def read_rng(node: Node) -> Rng:
    rng = Rng(model=node.choice_attr("model", ("virtio",)) or "virtio")
    rate = node.child("rate")
    if rate is not None:
        rng.rate_bytes = rate.int_attr("bytes", minimum=1)
        if rng.rate_bytes is None:
            raise rate.error("missing required attribute 'bytes' in <rate>", attr="bytes")
        rng.rate_period = rate.int_attr("period", minimum=1)
        rate.finish()
    backend = node.req_child("backend")
    rng.backend_model = backend.choice_attr("model", ("random", "builtin")) or ""
    if not rng.backend_model:
        raise backend.error("missing required attribute 'model' in <backend>", attr="model")
    if rng.backend_model == "random" and (backend.el.text or "").strip():
        rng.backend_path = backend.text()
        if not rng.backend_path.startswith("/"):
            raise backend.error(
                f"invalid value '{rng.backend_path}' for <backend>: expected an absolute path"
            )
    backend.finish()
    rng.alias, rng.address = _read_info(node)
    node.finish()
    return rng


def render_rng(rng: Rng, inactive: bool) -> Elem:
    el = Elem("rng", model=rng.model)
    if rng.rate_bytes is not None:
        el.sub("rate", bytes=rng.rate_bytes, period=rng.rate_period)
    el.sub("backend", rng.backend_path, model=rng.backend_model)
    return _with_info(el, rng.alias, rng.address, inactive)


def read_watchdog(node: Node) -> Watchdog:
    model = node.choice_attr("model", ("i6300esb", "ib700"))
    if model is None:
        raise node.error("missing required attribute 'model' in <watchdog>", attr="model")
    actions = ("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi")
    dog = Watchdog(model=model, action=node.choice_attr("action", actions))
    dog.alias, dog.address = _read_info(node)
    node.finish()
    return dog
