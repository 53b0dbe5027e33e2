"""`<interface>` of a domain XML <-> vmkit.model.devices.Interface.

A network NIC's source bridge and port id are runtime-only: written unless `inactive`.
"""

from __future__ import annotations

from vmkit.model.devices import (
    Interface,
    InterfaceType,
    NicModel,
)
from vmkit.xml.domain_devinfo import (
    ifname_attr,
    path_attr,
    read_boot,
    read_info,
    with_info,
)
from vmkit.xml.xmlutil import Elem, Node


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
        nic.target_dev = ifname_attr(target, "dev", required=True)
        target.finish()
    script = node.child("script")
    if script is not None:
        nic.script_path = path_attr(script, "path", required=True)
        script.finish()
    _read_nic_parts(node, nic)
    nic.boot_order = read_boot(node)
    nic.alias, nic.address = read_info(node)
    node.finish()
    return nic


def _read_nic_source(source: Node, nic: Interface) -> None:
    if nic.type == InterfaceType.NETWORK:
        nic.source_network = source.name_attr("network", required=True)
        nic.source_bridge = ifname_attr(source, "bridge")
        nic.source_portid = source.attr("portid")
    elif nic.type == InterfaceType.BRIDGE:
        nic.source_bridge = ifname_attr(source, "bridge", required=True)
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
    return with_info(el, nic.alias, nic.address, inactive, nic.boot_order)
