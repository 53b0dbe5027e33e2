"""The remaining devices: USB controllers, input, graphics (VNC), video, balloon, rng, watchdog.

USB: controller index 0 is `usb` (bus usb.0), N is `usbN`; model none means no USB. A USB
device without a declared controller gets libvirt's default (piix3-uhci on pc, qemu-xhci on
q35); microvm has no USB. ps2 input is the i8042 every pc/q35 has, so it adds nothing. VNC
listens on 127.0.0.1 unless told otherwise; an automatic port is display 0 with `to=99` (QEMU
takes the first free one; the engine reads it back with query-vnc); a password turns on
`password=on` and the engine sets the secret over QMP. The watchdog action is QEMU's
`-action watchdog=`.

Pure: no I/O.
"""

from __future__ import annotations

import re

from vmkit.errors import InvalidConfig
from vmkit.model.devices import (
    Address,
    ControllerType,
    DiskBus,
    GraphicsType,
    Input,
    MemBalloon,
    Video,
    VideoModel,
)
from vmkit.qemu.argv_context import (
    Ctx,
    DeviceArg,
    Family,
    Item,
    OptValue,
    Slot,
    check_path,
    device_id,
    expect_address,
    int_attr,
    render_opts,
)

_USB_MODELS = {
    "qemu-xhci": "qemu-xhci",
    "nec-xhci": "nec-usb-xhci",
    "piix3-uhci": "piix3-usb-uhci",
    "piix4-uhci": "piix4-usb-uhci",
    "ehci": "usb-ehci",
    "ich9-ehci1": "ich9-usb-ehci1",
    "ich9-uhci1": "ich9-usb-uhci1",
    "ich9-uhci2": "ich9-usb-uhci2",
    "ich9-uhci3": "ich9-usb-uhci3",
}
_INPUT_DEVICES = {
    ("mouse", "usb"): "usb-mouse",
    ("tablet", "usb"): "usb-tablet",
    ("keyboard", "usb"): "usb-kbd",
    ("mouse", "virtio"): "virtio-mouse",
    ("tablet", "virtio"): "virtio-tablet",
    ("keyboard", "virtio"): "virtio-keyboard",
}
_VIDEO = {
    VideoModel.VGA: "VGA",
    VideoModel.CIRRUS: "cirrus-vga",
    VideoModel.QXL: "qxl-vga",
    VideoModel.VIRTIO: "virtio-vga",
    VideoModel.VMVGA: "vmware-svga",
    VideoModel.BOCHS: "bochs-display",
}
_SECONDARY = {VideoModel.QXL: "qxl", VideoModel.VIRTIO: "virtio-gpu-pci"}
_WATCHDOG_ACTIONS = {"reset", "shutdown", "poweroff", "pause", "none", "inject-nmi"}
_LISTEN_RE = re.compile(r"^[A-Za-z0-9.:%-]+$")
_KEYMAP_RE = re.compile(r"^[A-Za-z][A-Za-z_-]*$")


def usb_bus_props(address: Address | None, xpath: str) -> dict[str, OptValue]:
    """bus=/port= of a USB device from `<address type='usb' bus= port=>` (none: QEMU's pick)."""
    addr = expect_address(address, ("usb",), xpath)
    if addr is None:
        return {}
    bus = int_attr(addr, "bus", xpath)
    props: dict[str, OptValue] = {"bus": "usb.0" if bus == 0 else f"usb{bus}.0"}
    port = addr.attrs.get("port")
    if port:
        if not re.match(r"^\d+(\.\d+)*$", port):
            raise InvalidConfig(
                f"malformed USB port '{port}'", xpath=xpath + "/address/@port", value=port
            )
        props["port"] = port
    return props


def usb_controller_items(ctx: Ctx) -> list[Item]:
    items: list[Item] = []
    ctrls = [
        (c, f"/domain/devices/controller[{i}]")
        for i, c in enumerate(ctx.dom.devices.controllers, start=1)
        if c.type is ControllerType.USB
    ]
    none = [x for c, x in ctrls if c.model == "none"]
    if none and len(ctrls) > 1:
        raise InvalidConfig("USB model 'none' excludes other USB controllers", xpath=none[0])
    need = _usb_user(ctx)
    if need is not None and (none or (ctrls and ctx.microvm)):
        raise InvalidConfig(f"{need[0]} needs USB, but USB is off", xpath=need[1])
    for ctrl, xpath in ctrls:
        if ctrl.model == "none":
            continue
        ctx.refuse_on_microvm("a USB controller", xpath)
        driver = _USB_MODELS.get(ctrl.model or _default_usb(ctx))
        if driver is None:
            raise InvalidConfig(
                f"USB controller model '{ctrl.model}' is not supported "
                f"({', '.join(sorted(_USB_MODELS))}, none)",
                xpath=xpath + "/@model",
                value=ctrl.model,
            )
        props = _usb_props(driver, ctrl.index, ctrl.ports, xpath)
        address = expect_address(ctrl.address, ("pci",), xpath)
        items.append(DeviceArg(driver, props, xpath, Slot.PORT, address))
    if need is not None and not ctrls:
        ctx.refuse_on_microvm(need[0] + " (USB)", need[1])
        driver = _USB_MODELS[_default_usb(ctx)]
        items.append(DeviceArg(driver, {"id": "usb"}, "/domain/devices", Slot.PORT))
    return items


def _default_usb(ctx: Ctx) -> str:
    return "qemu-xhci" if ctx.family is Family.Q35 else "piix3-uhci"


def _usb_props(driver: str, index: int, ports: int | None, xpath: str) -> dict[str, OptValue]:
    name = "usb" if index == 0 else f"usb{index}"
    props: dict[str, OptValue]
    if driver.startswith("ich9-usb-uhci"):
        props = {"masterbus": f"{name}.0", "firstport": (int(driver[-1]) - 1) * 2}
    else:
        props = {"id": name}
    if ports is not None:
        if "xhci" not in driver:
            raise InvalidConfig(
                "a port count is only supported on xHCI controllers", xpath=xpath + "/@ports"
            )
        props.update(p2=ports, p3=ports)
    return props


def _usb_user(ctx: Ctx) -> tuple[str, str] | None:
    """The first device that needs a USB bus, as (what, xpath)."""
    devs = ctx.dom.devices
    for i, disk in enumerate(devs.disks, start=1):
        if disk.target_bus is DiskBus.USB:
            return f"disk '{disk.target_dev}'", f"/domain/devices/disk[{i}]"
    for i, inp in enumerate(devs.inputs, start=1):
        if _input_bus(inp) == "usb":
            return f"input {inp.type}", f"/domain/devices/input[{i}]"
    for i, ser in enumerate(devs.serials, start=1):
        if ser.target_type == "usb-serial":
            return "a usb-serial port", f"/domain/devices/serial[{i}]"
    return None


def device_items(ctx: Ctx) -> list[Item]:
    items: list[Item] = []
    for i, inp in enumerate(ctx.dom.devices.inputs):
        items += _input_items(ctx, inp, i)
    items += _graphics_args(ctx)
    items += _video_items(ctx)
    items += _balloon_items(ctx)
    items += _rng_items(ctx)
    items += _watchdog_items(ctx)
    return items


def _input_bus(inp: Input) -> str:
    return inp.bus or ("usb" if inp.type == "tablet" else "ps2")


def _input_items(ctx: Ctx, inp: Input, i: int) -> list[Item]:
    xpath = f"/domain/devices/input[{i + 1}]"
    bus = _input_bus(inp)
    if bus == "ps2" and inp.type in ("mouse", "keyboard"):
        ctx.refuse_on_microvm("a PS/2 " + inp.type, xpath + "/@bus")
        return []  # the i8042 of pc and q35
    base = _INPUT_DEVICES.get((inp.type, bus))
    if base is None:
        raise InvalidConfig(
            f"input type '{inp.type}' on bus '{bus}' is not supported", xpath=xpath, value=bus
        )
    props: dict[str, OptValue] = {"id": device_id(inp.alias, f"input{i}")}
    if bus == "usb":
        return [DeviceArg(base, {**usb_bus_props(inp.address, xpath), **props}, xpath)]
    driver = ctx.virtio(f"{base}-pci", f"{base}-device")
    address = ctx.pci_address(inp.address, xpath)
    return [DeviceArg(driver, props, xpath, Slot.NONE if ctx.microvm else Slot.PORT, address)]


def _graphics_args(ctx: Ctx) -> list[Item]:
    vnc = [
        (g, f"/domain/devices/graphics[{i}]")
        for i, g in enumerate(ctx.dom.devices.graphics, start=1)
        if g.type is GraphicsType.VNC
    ]
    if not vnc:
        return []
    if len(vnc) > 1:
        raise InvalidConfig("only one VNC display is supported", xpath=vnc[1][1])
    g, xpath = vnc[0]
    listen = g.listen or "127.0.0.1"
    if not _LISTEN_RE.match(listen):
        raise InvalidConfig(
            f"malformed VNC listen address '{listen}'", xpath=xpath + "/@listen", value=listen
        )
    host = f"[{listen}]" if ":" in listen else listen
    props: dict[str, OptValue] = {}
    if g.autoport or g.port is None or g.port == -1:
        display, props["to"] = 0, 99
    elif g.port < 5900:
        raise InvalidConfig(
            f"VNC port {g.port} is below 5900", xpath=xpath + "/@port", value=g.port
        )
    else:
        display = g.port - 5900
    if g.websocket is not None:
        props["websocket"] = "on" if g.websocket == -1 else g.websocket
    if g.passwd is not None:
        props["password"] = True
    args: list[Item] = [("-vnc", render_opts(f"{host}:{display}", props))]
    if g.keymap is not None:
        if not _KEYMAP_RE.match(g.keymap):
            raise InvalidConfig(
                f"malformed keymap '{g.keymap}'", xpath=xpath + "/@keymap", value=g.keymap
            )
        args.append(("-k", g.keymap))
    return args


def _video_items(ctx: Ctx) -> list[Item]:
    videos = [
        (v, f"/domain/devices/video[{i}]", i - 1)
        for i, v in enumerate(ctx.dom.devices.videos, start=1)
        if v.model_type is not VideoModel.NONE
    ]
    if not videos:
        return []
    ctx.refuse_on_microvm("a video device", videos[0][1])
    first = next((n for n, (v, _, _) in enumerate(videos) if v.primary), 0)
    ordered = [videos[first], *videos[:first], *videos[first + 1 :]]
    return [_video(v, xpath, n, primary=k == 0) for k, (v, xpath, n) in enumerate(ordered)]


def _video(video: Video, xpath: str, n: int, *, primary: bool) -> DeviceArg:
    model = video.model_type
    driver = _VIDEO[model] if primary else _SECONDARY.get(model)
    if driver is None:
        raise InvalidConfig(
            f"video model '{model}' can only be the primary display (secondary: qxl, virtio)",
            xpath=xpath + "/model/@type",
            value=str(model),
        )
    props: dict[str, OptValue] = {"id": device_id(video.alias, f"video{n}")}
    if video.heads not in (None, 1):
        if model not in (VideoModel.QXL, VideoModel.VIRTIO):
            raise InvalidConfig(
                f"video model '{model}' has one head", xpath=xpath + "/model/@heads"
            )
        props["max_outputs"] = video.heads
    if video.vram is not None:
        props.update(_vram_props(video, xpath))
    props.update(_qxl_props(video, xpath))
    address = expect_address(video.address, ("pci",), xpath)
    return DeviceArg(driver, props, xpath, Slot.ROOT, address)


def _vram_props(video: Video, xpath: str) -> dict[str, OptValue]:
    vram = video.vram or 0
    model = video.model_type
    if model is VideoModel.QXL:
        return {"vram_size": vram * 1024}
    if model is VideoModel.BOCHS:
        return {"vgamem": vram * 1024}
    if model is VideoModel.VIRTIO or vram % 1024:
        raise InvalidConfig(
            f"vram {vram} KiB cannot be set on video model '{model}'"
            + ("" if model is VideoModel.VIRTIO else " (whole MiB only)"),
            xpath=xpath + "/model/@vram",
            value=vram,
        )
    return {"vgamem_mb": vram // 1024}


def _qxl_props(video: Video, xpath: str) -> dict[str, OptValue]:
    """qxl's RAM bar and VGA memory (KiB in the XML): ram_size bytes, vgamem_mb."""
    props: dict[str, OptValue] = {}
    for name, value in (("ram", video.ram), ("vgamem", video.vgamem)):
        if value is None:
            continue
        if video.model_type is not VideoModel.QXL:
            raise InvalidConfig(
                f"{name} can only be set on a qxl video device",
                xpath=f"{xpath}/model/@{name}",
                value=value,
            )
        if name == "ram":
            props["ram_size"] = value * 1024
        elif value % 1024:
            raise InvalidConfig(
                "qxl vgamem must be whole MiB", xpath=xpath + "/model/@vgamem", value=value
            )
        else:
            props["vgamem_mb"] = value // 1024
    return props


def _balloon_items(ctx: Ctx) -> list[Item]:
    """libvirt adds a virtio balloon to a domain that declares none; so does vmkit."""
    balloon = ctx.dom.devices.memballoon or MemBalloon("virtio")
    xpath = "/domain/devices/memballoon"
    if balloon.model == "none":
        if balloon.autodeflate is not None or balloon.stats_period is not None:
            raise InvalidConfig(
                "memballoon model 'none' takes no autodeflate or stats", xpath=xpath
            )
        return []
    if balloon.model != "virtio":
        raise InvalidConfig(
            f"memballoon model '{balloon.model}' is not supported (virtio, none)",
            xpath=xpath + "/@model",
            value=balloon.model,
        )
    props: dict[str, OptValue] = {"id": device_id(balloon.alias, "balloon0")}
    if balloon.autodeflate is not None:
        props["deflate-on-oom"] = balloon.autodeflate
    if balloon.stats_period is not None:
        props["guest-stats-polling-interval"] = balloon.stats_period
    driver = ctx.virtio("virtio-balloon-pci", "virtio-balloon-device")
    address = ctx.pci_address(balloon.address, xpath)
    return [DeviceArg(driver, props, xpath, Slot.NONE if ctx.microvm else Slot.PORT, address)]


def _rng_items(ctx: Ctx) -> list[Item]:
    items: list[Item] = []
    for i, rng in enumerate(ctx.dom.devices.rngs):
        xpath = f"/domain/devices/rng[{i + 1}]"
        if rng.model != "virtio":
            raise InvalidConfig(
                f"rng model '{rng.model}' is not supported (virtio)",
                xpath=xpath + "/@model",
                value=rng.model,
            )
        obj: dict[str, OptValue] = {"id": f"objrng{i}"}
        if rng.backend_model == "random":
            obj["filename"] = check_path(rng.backend_path or "/dev/urandom", xpath + "/backend")
            kind = "rng-random"
        elif rng.backend_model == "builtin" and rng.backend_path is None:
            kind = "rng-builtin"
        else:
            raise InvalidConfig(
                f"rng backend '{rng.backend_model}' is not supported (random, builtin)",
                xpath=xpath + "/backend/@model",
                value=rng.backend_model,
            )
        props: dict[str, OptValue] = {"rng": f"objrng{i}", "id": device_id(rng.alias, f"rng{i}")}
        if rng.rate_bytes is not None:
            props["max-bytes"] = rng.rate_bytes
            props["period"] = rng.rate_period if rng.rate_period is not None else 1000
        elif rng.rate_period is not None:
            raise InvalidConfig("rng rate period needs bytes", xpath=xpath + "/rate/@period")
        driver = ctx.virtio("virtio-rng-pci", "virtio-rng-device")
        address = ctx.pci_address(rng.address, xpath)
        slot = Slot.NONE if ctx.microvm else Slot.PORT
        items += [
            ("-object", render_opts(kind, obj)),
            DeviceArg(driver, props, xpath, slot, address),
        ]
    return items


def _watchdog_items(ctx: Ctx) -> list[Item]:
    items: list[Item] = []
    actions: set[str] = set()
    for i, dog in enumerate(ctx.dom.devices.watchdogs):
        xpath = f"/domain/devices/watchdog[{i + 1}]"
        ctx.refuse_on_microvm("a watchdog", xpath)
        if dog.action is not None:
            if dog.action not in _WATCHDOG_ACTIONS:
                raise InvalidConfig(
                    f"watchdog action '{dog.action}' is not supported "
                    f"({', '.join(sorted(_WATCHDOG_ACTIONS))})",
                    xpath=xpath + "/@action",
                    value=dog.action,
                )
            actions.add(dog.action)
        props: dict[str, OptValue] = {"id": device_id(dog.alias, f"watchdog{i}")}
        if dog.model == "i6300esb":
            address = expect_address(dog.address, ("pci",), xpath)
            items.append(DeviceArg("i6300esb", props, xpath, Slot.PORT, address))
        elif dog.model == "ib700":
            expect_address(dog.address, (), xpath)
            items.append(DeviceArg("ib700", props, xpath))
        elif dog.model == "itco" and ctx.family is Family.Q35:
            expect_address(dog.address, (), xpath)
            items.append(("-global", "ICH9-LPC.noreboot=off"))
        else:
            raise InvalidConfig(
                f"watchdog model '{dog.model}' is not supported on {ctx.family} "
                "(i6300esb, ib700; itco on q35)",
                xpath=xpath + "/@model",
                value=dog.model,
            )
    if len(actions) > 1:
        raise InvalidConfig(
            "all watchdogs must share one action", xpath="/domain/devices/watchdog/@action"
        )
    if actions:
        items.append(("-action", f"watchdog={actions.pop()}"))
    return items
