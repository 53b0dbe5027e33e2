"""model.defaults: what define fills in (MACs in 52:54:00, disk buses, machine type)."""

from __future__ import annotations

import random
import re

from vmkit.model.defaults import DEFAULT_MACHINE, MAC_PREFIX, complete_domain, generate_mac
from vmkit.model.devices import Disk, DiskBus, Interface, InterfaceType
from vmkit.model.domain import Domain
from vmkit.model.validate import check_mac, validate_domain

MAC_RE = re.compile(r"^52:54:00(:[0-9a-f]{2}){3}$")


def test_generated_macs_are_qemu_prefixed_unicast_and_lower_case() -> None:
    rng = random.Random(1)
    for _ in range(500):
        mac = generate_mac(rng=rng)
        assert MAC_RE.match(mac), mac
        check_mac(mac, xpath="x")  # unicast, well-formed


def test_generated_macs_are_unique_against_taken_ones() -> None:
    rng = random.Random(7)
    taken: set[str] = set()
    for _ in range(2000):
        mac = generate_mac(taken, rng)
        assert mac not in taken
        taken.add(mac)
    assert len(taken) == 2000


def test_generate_mac_skips_a_taken_mac_whatever_its_case() -> None:
    first = generate_mac(rng=random.Random(3))
    again = generate_mac([first.upper()], random.Random(3))
    assert again != first
    assert again.startswith(MAC_PREFIX)


def test_generate_mac_without_a_seed_uses_the_system_source() -> None:
    macs = {generate_mac() for _ in range(50)}
    assert len(macs) == 50


def test_complete_domain_fills_in_what_libvirt_does() -> None:
    dom = Domain(name="vm")
    dom.devices.disks += [
        Disk(source="/var/lib/vmkit/images/a.img", target_dev="vda"),
        Disk(source="/var/lib/vmkit/images/b.img", target_dev="hdb"),
        Disk(source="/var/lib/vmkit/images/c.img", target_dev="sdc", target_bus=DiskBus.SATA),
    ]
    dom.devices.interfaces += [Interface(type=InterfaceType.USER) for _ in range(3)]
    assert complete_domain(dom, rng=random.Random(5)) is dom
    assert dom.os.machine == DEFAULT_MACHINE
    assert [d.target_bus for d in dom.devices.disks] == [DiskBus.VIRTIO, DiskBus.IDE, DiskBus.SATA]
    macs = [n.mac_address for n in dom.devices.interfaces]
    assert all(m is not None and MAC_RE.match(m) for m in macs)
    assert len(set(macs)) == 3
    assert dom.current_memory_kib == dom.memory_kib
    assert dom.vcpu.placement == "static"
    assert dom.clock is not None and dom.clock.offset == "utc"
    assert (dom.on_poweroff, dom.on_reboot, dom.on_crash) == ("destroy", "restart", "destroy")
    validate_domain(dom)


def test_complete_domain_keeps_what_is_set() -> None:
    dom = Domain(name="vm")
    dom.os.machine = "q35"
    dom.devices.interfaces.append(
        Interface(type=InterfaceType.USER, mac_address="52:54:00:AA:BB:CC")
    )
    complete_domain(dom)
    assert dom.os.machine == "q35"
    assert dom.devices.interfaces[0].mac_address == "52:54:00:AA:BB:CC"


def test_complete_domain_avoids_macs_of_the_domain_and_of_others() -> None:
    # A seeded source that would repeat itself: the second pick must skip what is taken.
    first = generate_mac(rng=random.Random(11))
    second = generate_mac([first], random.Random(11))
    dom = Domain(name="vm")
    dom.devices.interfaces += [
        Interface(type=InterfaceType.USER, mac_address=first),
        Interface(type=InterfaceType.USER),
    ]
    complete_domain(dom, rng=random.Random(11))
    assert dom.devices.interfaces[1].mac_address == second

    other = Domain(name="other")
    other.devices.interfaces.append(Interface(type=InterfaceType.USER))
    complete_domain(other, taken_macs=[first.upper()], rng=random.Random(11))
    assert other.devices.interfaces[0].mac_address == second


def test_complete_domain_is_idempotent() -> None:
    dom = Domain(name="vm")
    dom.devices.interfaces.append(Interface(type=InterfaceType.USER))
    complete_domain(dom)
    snapshot = repr(dom)
    complete_domain(dom)
    assert repr(dom) == snapshot


def test_an_unknown_target_prefix_leaves_the_bus_unset() -> None:
    dom = Domain(name="vm")
    dom.devices.disks.append(Disk(source="/x.img", target_dev="xvda"))
    complete_domain(dom)
    assert dom.devices.disks[0].target_bus is None
