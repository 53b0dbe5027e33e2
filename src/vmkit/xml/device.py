"""One device element on its own (`attach-device FILE`): `<disk>`, `<interface>` <-> the model.

`parse_device` reads a lone device document with the same strict readers `<devices>` uses
(domain_devices.py), so a device is accepted here exactly when it would be accepted inside a
domain; `render_device` writes one back in dumpxml's layout. What a device means for a running
domain is the engine's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Callable

from vmkit.errors import InvalidConfig
from vmkit.model.devices import Disk, Interface
from vmkit.xml.domain_disks import read_disk, render_disk
from vmkit.xml.domain_nics import read_interface, render_interface
from vmkit.xml.xmlutil import Node, ParseContext, local_name, parse_xml, render_xml

Device = Disk | Interface
_READERS: dict[str, Callable[[Node], Device]] = {"disk": read_disk, "interface": read_interface}


def device_kinds() -> tuple[str, ...]:
    """The element names `parse_device` reads."""
    return tuple(_READERS)


def device_tag(dev: Device) -> str:
    """The element name of a parsed device."""
    return "disk" if isinstance(dev, Disk) else "interface"


def parse_device(text: str | bytes, *, source: str = "<string>") -> Device:
    """Read one device element; InvalidConfig naming the line for anything wrong."""
    tree = parse_xml(text, source=source)
    root = tree.getroot()
    ctx = ParseContext(tree, source, skip_unknown=False)
    tag = local_name(root)
    reader = _READERS.get(tag)
    if reader is None:
        supported = ", ".join(f"<{k}>" for k in _READERS)
        raise ctx.error(
            f"<{tag}> is not a device vmkit can attach or detach (supported: {supported})",
            root,
            value=tag,
        )
    return reader(Node(ctx, root))


def parse_disk(text: str | bytes, *, source: str = "<string>") -> Disk:
    """Read a lone `<disk>` element."""
    dev = parse_device(text, source=source)
    if not isinstance(dev, Disk):
        prefix = "" if source == "<string>" else f"{source}: "
        raise InvalidConfig(f"{prefix}expected a <disk> element, got <{device_tag(dev)}>")
    return dev


def render_device(dev: Device, *, inactive: bool = True) -> str:
    """One device as XML, laid out like its part of `virsh dumpxml`; ends with a newline."""
    if isinstance(dev, Disk):
        return render_xml(render_disk(dev, inactive))
    return render_xml(render_interface(dev, inactive))
