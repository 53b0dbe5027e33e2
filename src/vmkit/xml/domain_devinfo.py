"""What devices of a domain XML share: `<alias>`, `<address>`, `<boot order>`, path and
interface-name attributes. Readers and writers only; see domain_devices for the devices.
"""

from __future__ import annotations

from vmkit.model.devices import (
    Address,
)
from vmkit.xml.xmlutil import Elem, Node

ADDRESS_ATTRS: dict[str, tuple[str, ...]] = {
    "pci": ("domain", "bus", "slot", "function", "multifunction"),
    "drive": ("controller", "bus", "target", "unit"),
    "usb": ("bus", "port"),
    "virtio-serial": ("controller", "bus", "port"),
    "isa": ("iobase", "irq"),
    "virtio-mmio": (),
}
IFNAME_MAX = 15


def path_text(node: Node | None) -> str | None:
    if node is None:
        return None
    value = node.text()
    if not value.startswith("/"):
        raise node.error(f"invalid value '{value}' for <{node.tag}>: expected an absolute path")
    node.finish()
    return value


def path_attr(node: Node, name: str, *, required: bool = False) -> str | None:
    value = node.req_attr(name) if required else node.attr(name)
    if value is not None and not value.startswith("/"):
        raise node.error(
            f"invalid value '{value}' for attribute '{name}' of <{node.tag}>: "
            "expected an absolute path",
            attr=name,
            value=value,
        )
    return value


def ifname_attr(node: Node, name: str, *, required: bool = False) -> str | None:
    value = node.name_attr(name, required=required)
    if value is not None and len(value) > IFNAME_MAX:
        raise node.error(
            f"invalid value '{value}' for attribute '{name}' of <{node.tag}>: "
            f"an interface name has at most {IFNAME_MAX} characters",
            attr=name,
            value=value,
        )
    return value


def read_info(node: Node) -> tuple[str | None, Address | None]:
    """A device's `<alias name>` and `<address>`."""
    alias = node.child("alias")
    name = None
    if alias is not None:
        name = alias.name_attr("name", required=True)
        alias.finish()
    addr = node.child("address")
    return name, (read_address(addr) if addr is not None else None)


def read_address(node: Node) -> Address:
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


def with_info(
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


def read_boot(node: Node) -> int | None:
    boot = node.child("boot")
    if boot is None:
        return None
    order = boot.int_attr("order", minimum=1)
    if order is None:
        raise boot.error("missing required attribute 'order' in <boot>", attr="order")
    boot.finish()
    return order


def reindent(xml: str, level: int) -> str:
    """A preserved fragment (laid out for level 1) moved to `level`."""
    pad = "  " * (level - 1)
    lines = xml.split("\n")
    return "\n".join([lines[0], *(pad + line for line in lines[1:])])
