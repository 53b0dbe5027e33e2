"""`<serial>`, `<console>` and `<channel>` of a domain XML <-> vmkit.model.devices.CharDevice.

Runtime-only parts (a pty's path, a console's tty, a channel's state, aliases) are written
unless `inactive`.
"""

from __future__ import annotations

from vmkit.model.devices import (
    CharDevice,
    CharType,
)
from vmkit.xml.domain_devinfo import (
    path_attr,
    read_info,
    with_info,
)
from vmkit.xml.xmlutil import Elem, Node, on_off

_CHAR_TARGET_TYPES = {
    "serial": ("isa-serial",),
    "console": ("serial", "virtio"),
    "channel": ("virtio",),
}


def read_chardev(node: Node) -> CharDevice:
    kind = node.tag
    dev = CharDevice(kind=kind, type=node.enum_attr("type", CharType) or CharType.PTY)
    dev.tty = node.attr("tty")
    source = node.child("source")
    if source is not None:
        if dev.type == CharType.NULL:
            raise source.ctx.refuse(source.el)
        dev.source_path = path_attr(source, "path")
        if dev.type == CharType.UNIX:
            dev.source_mode = source.choice_attr("mode", ("bind", "connect"))
        source.finish()
    if dev.source_path is None and (
        dev.type == CharType.FILE or (dev.type == CharType.UNIX and kind != "channel")
    ):
        raise node.error(f"<{kind} type='{dev.type}'> needs <source path=...>")
    log = node.child("log")
    if log is not None:
        dev.log_file = path_attr(log, "file", required=True)
        dev.log_append = log.bool_attr("append", "on", "off")
        log.finish()
    target = node.child("target")
    if target is not None:
        _read_char_target(target, dev)
    elif kind == "channel":
        raise node.error("missing required element <target> in <channel>")
    dev.alias, dev.address = read_info(node)
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
    return with_info(el, dev.alias, dev.address, inactive)
