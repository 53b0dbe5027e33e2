"""model.validate: names, uuid, MACs, memory, vcpus, topology, disks, boot order, machines."""

from __future__ import annotations

import pytest

from vmkit.errors import InvalidConfig
from vmkit.model.devices import Disk, DiskBus, DiskDevice, Interface, InterfaceType
from vmkit.model.domain import BootDev, Cpu, CpuTopology, Domain, Vcpu
from vmkit.model.validate import (
    NAME_MAX,
    bus_for_target,
    check_mac,
    check_name,
    check_uuid,
    validate_domain,
)

IMG = "/var/lib/vmkit/images"


def _dom(**kwargs: object) -> Domain:
    return Domain(name="vm", **kwargs)  # type: ignore[arg-type]


def _disk(dev: str, **kwargs: object) -> Disk:
    return Disk(source=f"{IMG}/{dev}.img", target_dev=dev, **kwargs)  # type: ignore[arg-type]


def _nic(mac: str | None = None, **kwargs: object) -> Interface:
    return Interface(type=InterfaceType.USER, mac_address=mac, **kwargs)  # type: ignore[arg-type]


def _fails(dom: Domain, message: str, xpath: str | None = None) -> InvalidConfig:
    with pytest.raises(InvalidConfig) as info:
        validate_domain(dom)
    assert message in str(info.value)
    if xpath is not None:
        assert info.value.xpath == xpath
    return info.value


# names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["vm", "web-01", "a.b_c", "x" * NAME_MAX, "caf\u00e9", "with space", "v-"]
)
def test_good_names(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        ("x" * (NAME_MAX + 1), "201 characters long; at most 200"),
        ("a/b", "must not contain '/'"),
        ("a\tb", "must not contain control characters"),
        ("a\nb", "must not contain control characters"),
        ("a\x7fb", "must not contain control characters"),
        ("-vm", "must not start with '-'"),
        (".", "is not allowed"),
        ("..", "is not allowed"),
    ],
)
def test_bad_names(name: str, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as info:
        check_name(name)
    assert info.value.xpath == "/domain/name"
    assert info.value.exit_code == 2


def test_check_name_names_its_kind() -> None:
    with pytest.raises(InvalidConfig, match="network name must not be empty"):
        check_name("", kind="network", xpath="/network/name")


# uuid, MAC -----------------------------------------------------------------------------------


def test_check_uuid_returns_the_canonical_form() -> None:
    assert check_uuid("6695EB01F6A4830479AA97F2502E193F") == "6695eb01-f6a4-8304-79aa-97f2502e193f"


@pytest.mark.parametrize(
    "value", ["", "not-a-uuid", "6695eb01-f6a4-8304-79aa-97f2502e193", "g" * 32]
)
def test_check_uuid_refuses(value: str) -> None:
    with pytest.raises(InvalidConfig, match="malformed uuid"):
        check_uuid(value)


@pytest.mark.parametrize("mac", ["52:54:00:12:34:56", "AA:BB:CC:DD:EE:FE", "02:00:00:00:00:00"])
def test_good_macs(mac: str) -> None:
    check_mac(mac, xpath="x")


@pytest.mark.parametrize(
    ("mac", "message"),
    [
        ("01:00:5e:00:00:01", "is multicast"),
        ("ff:ff:ff:ff:ff:ff", "is multicast"),
        ("33:33:00:00:00:01", "is multicast"),
        ("52:54:00:12:34", "malformed MAC"),
        ("52-54-00-12-34-56", "malformed MAC"),
        ("52:54:00:12:34:5g", "malformed MAC"),
        ("525400123456", "malformed MAC"),
        ("", "malformed MAC"),
    ],
)
def test_bad_macs(mac: str, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        check_mac(mac, xpath="/domain/devices/interface[1]/mac/@address")


def test_bus_for_target() -> None:
    assert bus_for_target("vda") == DiskBus.VIRTIO
    assert bus_for_target("sdb") == DiskBus.SCSI
    assert bus_for_target("hdc") == DiskBus.IDE
    assert bus_for_target("fda") == DiskBus.FDC
    assert bus_for_target("xvda") is None


# the domain ----------------------------------------------------------------------------------


def test_a_default_domain_is_valid() -> None:
    validate_domain(Domain(name="vm"))


def test_domain_uuid_is_checked() -> None:
    _fails(_dom(uuid="nope"), "malformed uuid 'nope'", "/domain/uuid")


@pytest.mark.parametrize(
    ("kwargs", "message", "xpath"),
    [
        ({"memory_kib": 0}, "memory must be greater than 0", "/domain/memory"),
        ({"current_memory_kib": 0}, "currentMemory (0 KiB) must be between 1", None),
        ({"current_memory_kib": 131073}, "must be between 1 and memory", "/domain/currentMemory"),
        ({"max_memory_kib": 1024}, "maxMemory (1024 KiB) is less than memory", None),
    ],
)
def test_memory_checks(kwargs: dict[str, object], message: str, xpath: str | None) -> None:
    _fails(_dom(**kwargs), message, xpath)


def test_memory_limits_that_fit() -> None:
    validate_domain(_dom(memory_kib=1024, current_memory_kib=1024, max_memory_kib=1024))


@pytest.mark.parametrize(
    ("vcpu", "message", "xpath"),
    [
        (Vcpu(count=0), "vcpu count must be at least 1, got 0", "/domain/vcpu"),
        (
            Vcpu(count=2, current=3),
            "current vcpus (3) must be between 1 and",
            "/domain/vcpu/@current",
        ),
        (Vcpu(count=2, current=0), "current vcpus (0)", "/domain/vcpu/@current"),
    ],
)
def test_vcpu_checks(vcpu: Vcpu, message: str, xpath: str) -> None:
    _fails(_dom(vcpu=vcpu), message, xpath)


@pytest.mark.parametrize(
    ("count", "topology", "ok"),
    [
        (8, CpuTopology(sockets=2, cores=2, threads=2), True),
        (4, CpuTopology(sockets=1, cores=2, threads=1, dies=2), True),
        (4, CpuTopology(sockets=1, cores=2, threads=1), False),
        (2, CpuTopology(sockets=0, cores=2, threads=1), False),
        (1, CpuTopology(sockets=1, cores=1, threads=1, dies=0), False),
    ],
)
def test_topology_must_multiply_to_the_vcpu_count(
    count: int, topology: CpuTopology, ok: bool
) -> None:
    dom = _dom(vcpu=Vcpu(count=count), cpu=Cpu(topology=topology))
    if ok:
        validate_domain(dom)
    else:
        _fails(dom, f"but vcpu is {count}", "/domain/cpu/topology")


def test_machine_check_uses_the_given_set() -> None:
    dom = _dom()
    dom.os.machine = "pc-q35-9.9"
    validate_domain(dom)  # no set given: not checked
    validate_domain(dom, machines={"pc-q35-9.9"})
    with pytest.raises(InvalidConfig, match=r"machine type 'pc-q35-9\.9' is not supported"):
        validate_domain(dom, machines={"pc", "q35", "pc-q35-7.2"})


# disks ---------------------------------------------------------------------------------------


def test_duplicate_target_dev() -> None:
    dom = _dom()
    dom.devices.disks += [_disk("vda"), _disk("vdb"), _disk("vda")]
    _fails(
        dom, "target dev 'vda' is used by more than one disk", "/domain/devices/disk[3]/target/@dev"
    )


@pytest.mark.parametrize("dev", ["", "disk0", "vd", "vda1", "VDA", "nvme0n1"])
def test_bad_target_dev(dev: str) -> None:
    dom = _dom()
    dom.devices.disks.append(_disk(dev))
    _fails(dom, "is not a valid name")


@pytest.mark.parametrize(
    ("device", "bus", "ok"),
    [
        (DiskDevice.DISK, DiskBus.VIRTIO, True),
        (DiskDevice.DISK, DiskBus.USB, True),
        (DiskDevice.DISK, DiskBus.FDC, False),
        (DiskDevice.CDROM, DiskBus.SATA, True),
        (DiskDevice.CDROM, DiskBus.VIRTIO, False),
        (DiskDevice.CDROM, DiskBus.FDC, False),
        (DiskDevice.FLOPPY, DiskBus.FDC, True),
        (DiskDevice.FLOPPY, DiskBus.VIRTIO, False),
        (DiskDevice.FLOPPY, DiskBus.IDE, False),
    ],
)
def test_bus_must_suit_the_device(device: DiskDevice, bus: DiskBus, ok: bool) -> None:
    dom = _dom()
    dom.devices.disks.append(_disk("sdq", device=device, target_bus=bus))
    if ok:
        validate_domain(dom)
    else:
        _fails(dom, f"bus '{bus}' is not supported for a {device} device (disk 'sdq')")


def test_bus_is_derived_from_the_target_name() -> None:
    dom = _dom()
    dom.devices.disks.append(_disk("vdb", device=DiskDevice.CDROM))
    _fails(dom, "bus 'virtio' is not supported for a cdrom device")


def test_a_nul_in_a_source_path_is_refused() -> None:
    dom = _dom()
    dom.devices.disks.append(Disk(source=f"{IMG}/a\x00b.img", target_dev="vda"))
    _fails(dom, "disk 'vda' source path contains a NUL character", "/domain/devices/disk[1]/source")


def test_only_removable_drives_may_be_empty() -> None:
    dom = _dom()
    dom.devices.disks.append(Disk(target_dev="hdc", device=DiskDevice.CDROM))
    dom.devices.disks.append(Disk(target_dev="fda", device=DiskDevice.FLOPPY))
    validate_domain(dom)
    dom.devices.disks.append(Disk(target_dev="vda"))
    _fails(dom, "disk 'vda' has no source; only cdrom and floppy drives may be empty")


# NICs and boot order -------------------------------------------------------------------------


def test_interface_macs_are_checked() -> None:
    dom = _dom()
    dom.devices.interfaces += [_nic("52:54:00:00:00:01"), _nic("01:00:00:00:00:01")]
    _fails(dom, "is multicast", "/domain/devices/interface[2]/mac/@address")


def test_duplicate_macs_ignore_case() -> None:
    dom = _dom()
    dom.devices.interfaces += [_nic("52:54:00:aa:00:01"), _nic("52:54:00:AA:00:01")]
    _fails(dom, "is used by more than one interface")


def test_interfaces_without_mac_are_fine() -> None:
    dom = _dom()
    dom.devices.interfaces += [_nic(), _nic()]
    validate_domain(dom)


def test_duplicate_boot_order() -> None:
    dom = _dom()
    dom.devices.disks.append(_disk("vda", boot_order=1))
    dom.devices.interfaces.append(_nic("52:54:00:00:00:09", boot_order=1))
    err = _fails(dom, "boot order 1 is used by both disk 'vda' and interface 52:54:00:00:00:09")
    assert err.value == 1


def test_boot_order_must_be_positive() -> None:
    dom = _dom()
    dom.devices.disks.append(_disk("vda", boot_order=0))
    _fails(dom, "boot order of disk 'vda' must be >= 1")


def test_os_boot_cannot_mix_with_device_boot() -> None:
    dom = _dom()
    dom.os.boot_devs.append(BootDev.HD)
    dom.devices.disks.append(_disk("vda", boot_order=1))
    _fails(dom, "per-device boot elements cannot be used together with <os><boot dev=...>")


def test_os_boot_alone_and_device_boot_alone_are_fine() -> None:
    dom = _dom()
    dom.os.boot_devs += [BootDev.CDROM, BootDev.HD]
    dom.devices.disks.append(_disk("vda"))
    validate_domain(dom)
    dom.os.boot_devs.clear()
    dom.devices.disks[0].boot_order = 1
    dom.devices.interfaces.append(_nic(boot_order=2))
    validate_domain(dom)
