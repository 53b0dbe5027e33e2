"""Defaults libvirt fills in when a domain is defined: MAC addresses, disk buses, machine type.

Pure apart from the random source for MACs, which callers may pass in for determinism.
"""

from __future__ import annotations

import random
from collections.abc import Collection

from vmkit.model.domain import Clock, Domain
from vmkit.model.validate import bus_for_target

DEFAULT_MACHINE = "pc"
MAC_PREFIX = "52:54:00"


def generate_mac(taken: Collection[str] = (), rng: random.Random | None = None) -> str:
    """A random locally administered unicast MAC in 52:54:00:xx:xx:xx not in `taken`."""
    r = rng or random.SystemRandom()
    used = {m.lower() for m in taken}
    while True:
        tail = ":".join(f"{r.randrange(256):02x}" for _ in range(3))
        mac = f"{MAC_PREFIX}:{tail}"
        if mac not in used:
            return mac


def complete_domain(
    dom: Domain, *, taken_macs: Collection[str] = (), rng: random.Random | None = None
) -> Domain:
    """Fill in what libvirt fills in at define time; mutates and returns `dom`."""
    if dom.os.machine is None:
        dom.os.machine = DEFAULT_MACHINE
    if dom.current_memory_kib is None:
        dom.current_memory_kib = dom.memory_kib
    if dom.vcpu.placement is None:
        dom.vcpu.placement = "static"
    if dom.clock is None:
        dom.clock = Clock()
    dom.on_poweroff = dom.effective_on_poweroff
    dom.on_reboot = dom.effective_on_reboot
    dom.on_crash = dom.effective_on_crash
    for disk in dom.devices.disks:
        if disk.target_bus is None:
            disk.target_bus = bus_for_target(disk.target_dev)
    used = {m.lower() for m in taken_macs}
    used |= {n.mac_address.lower() for n in dom.devices.interfaces if n.mac_address}
    for nic in dom.devices.interfaces:
        if nic.mac_address is None:
            nic.mac_address = generate_mac(used, rng)
            used.add(nic.mac_address)
    return dom
