"""`<devices>` of libvirt's domain XML <-> vmkit.model.devices, one reader and writer per kind.

Reads strictly (see xmlutil.Node); writes in libvirt's element order. Runtime-only parts (alias,
a pty's path, a console's tty, source index, a network NIC's bridge and port id, a channel's
state) are written unless `inactive`. Does not check semantics across devices: that is
vmkit.model.validate's job.
"""

from __future__ import annotations

import re

from vmkit.model.devices import (
    Devices,
    Graphics,
    GraphicsType,
    Input,
    MemBalloon,
    Rng,
    Video,
    VideoModel,
    Watchdog,
)
from vmkit.xml.domain_chardevs import read_chardev, render_chardev
from vmkit.xml.domain_devinfo import (
    path_text,
    read_info,
    with_info,
)
from vmkit.xml.domain_disks import read_controllers, read_disk, render_controller, render_disk
from vmkit.xml.domain_nics import read_interface, render_interface
from vmkit.xml.xmlutil import Elem, Node, on_off, yes_no

_LISTEN_RE = re.compile(r"^[A-Za-z0-9.:%_-]+$")


def read_devices(node: Node) -> Devices:
    devs = Devices()
    devs.emulator = path_text(node.child("emulator"))
    devs.disks = [read_disk(n) for n in node.children("disk")]
    devs.controllers = read_controllers(node.children("controller"))
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
            with_info(Elem("input", type=inp.type, bus=inp.bus), inp.alias, inp.address, inactive)
        )
    for gfx in devs.graphics:
        if gfx.type != GraphicsType.NONE:  # libvirt has no <graphics type='none'>: headless
            el.add(render_graphics(gfx))
    for video in devs.videos:
        el.add(render_video(video, inactive))
    for dog in devs.watchdogs:
        wd = Elem("watchdog", model=dog.model, action=dog.action)
        el.add(with_info(wd, dog.alias, dog.address, inactive))
    if devs.memballoon is not None:
        el.add(render_memballoon(devs.memballoon, inactive))
    for rng in devs.rngs:
        el.add(render_rng(rng, inactive))
    return el


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
    video.alias, video.address = read_info(node)
    node.finish()
    return video


def render_video(video: Video, inactive: bool) -> Elem:
    el = Elem("video")
    model = el.sub("model", type=video.model_type.value, ram=video.ram, vram=video.vram)
    model.set(vgamem=video.vgamem, heads=video.heads, primary=yes_no(video.primary))
    return with_info(el, video.alias, video.address, inactive)


def read_input(node: Node) -> Input:
    kind = node.choice_attr("type", ("mouse", "tablet", "keyboard"))
    if kind is None:
        raise node.error("missing required attribute 'type' in <input>", attr="type")
    inp = Input(type=kind, bus=node.choice_attr("bus", ("ps2", "usb", "virtio")))
    inp.alias, inp.address = read_info(node)
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
    balloon.alias, balloon.address = read_info(node)
    node.finish()
    return balloon


def render_memballoon(balloon: MemBalloon, inactive: bool) -> Elem:
    el = Elem("memballoon", model=balloon.model, autodeflate=on_off(balloon.autodeflate))
    if balloon.stats_period is not None:
        el.sub("stats", period=balloon.stats_period)
    return with_info(el, balloon.alias, balloon.address, inactive)


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
    rng.alias, rng.address = read_info(node)
    node.finish()
    return rng


def render_rng(rng: Rng, inactive: bool) -> Elem:
    el = Elem("rng", model=rng.model)
    if rng.rate_bytes is not None:
        el.sub("rate", bytes=rng.rate_bytes, period=rng.rate_period)
    el.sub("backend", rng.backend_path, model=rng.backend_model)
    return with_info(el, rng.alias, rng.address, inactive)


def read_watchdog(node: Node) -> Watchdog:
    model = node.choice_attr("model", ("i6300esb", "ib700"))
    if model is None:
        raise node.error("missing required attribute 'model' in <watchdog>", attr="model")
    actions = ("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi")
    dog = Watchdog(model=model, action=node.choice_attr("action", actions))
    dog.alias, dog.address = read_info(node)
    node.finish()
    return dog
