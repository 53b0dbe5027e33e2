"""The QMP side of disk hot-plug, against a recording fake monitor: which commands, in which
order, with which node names and ids, and what is undone when QEMU refuses."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vmkit.engine.hotplug import (
    block_parts,
    block_stats_of,
    blockdev_args,
    free_root_ports,
    plug_block,
    swap_media,
    unplug,
    unplug_block,
)
from vmkit.errors import QemuError, QmpError, WrongState
from vmkit.model.devices import Controller, ControllerType, Disk, DiskBus, DiskDevice, DiskFormat
from vmkit.model.domain import Domain, Os
from vmkit.qemu.argv import ArgvOptions, RuntimePaths, build_argv

WHAT = "disk 'vdb' of domain 'vm'"


def port(n: int, *children: str) -> dict[str, Any]:
    devices = [{"qdev_id": c, "bus": n, "slot": 0} for c in children]
    return {"qdev_id": f"pci.{n}", "bus": 0, "pci_bridge": {"bus": {}, "devices": devices}}


PCI_Q35 = [{"bus": 0, "devices": [{"qdev_id": ""}, port(1, "balloon0"), port(2), port(3)]}]
PERIPHERALS = [
    {"name": "type", "type": "string"},
    {"name": "pci.1", "type": "child<pcie-root-port>"},
    {"name": "pci.2", "type": "child<pcie-root-port>"},
    {"name": "pci.3", "type": "child<pcie-root-port>"},
    {"name": "balloon0", "type": "child<virtio-balloon-pci>"},
    {"name": "scsi0", "type": "child<virtio-scsi-pci>"},
]


def deleted(dev_id: str | None, path: str) -> dict[str, Any]:
    data = {"path": path} if dev_id is None else {"device": dev_id, "path": path}
    return {"event": "DEVICE_DELETED", "data": data}


class FakeMonitor:
    """Records commands; answers from `replies`, raises what `fail` maps a command to."""

    def __init__(self, events: list[dict[str, Any]] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.replies: dict[str, Any] = {
            "qom-list": PERIPHERALS,
            "query-pci": PCI_Q35,
            "query-block": [],
        }
        self.fail: dict[str, QmpError] = {}
        self.events = events or []

    def execute(self, command: str, args: Any = None, *, timeout: float = 30.0) -> Any:
        self.calls.append((command, dict(args or {})))
        if command in self.fail:
            raise self.fail[command]
        return self.replies.get(command, {})

    def wait_event(
        self, name: str, timeout: float, match: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any] | None:
        for i, event in enumerate(self.events):
            if event["event"] == name and (match is None or match(event)):
                return self.events.pop(i)
        return None

    def commands(self) -> list[str]:
        return [c for c, _ in self.calls if c not in ("qom-list", "query-pci", "query-block")]


def domain(machine: str = "q35", *disks: Disk) -> Domain:
    dom = Domain(name="vm", os=Os(machine=machine))
    dom.devices.disks = list(disks)
    return dom


def vdb(**kw: Any) -> Disk:
    return Disk(source="/img/b,c.raw", target_dev="vdb", target_bus=DiskBus.VIRTIO, **kw)


def test_blockdev_args_undo_render_opts() -> None:
    text = "driver=file,filename=/a,,b.img,node-name=vdb-storage,read-only=on,cache.direct=off"
    assert blockdev_args(text) == {
        "driver": "file",
        "filename": "/a,b.img",
        "node-name": "vdb-storage",
        "read-only": True,
        "cache": {"direct": False},
    }


def test_plug_on_q35_uses_a_free_root_port() -> None:
    mon = FakeMonitor()
    dom = domain("q35", vdb(driver_type=DiskFormat.QCOW2, serial="S1"))
    plug_block(mon, dom, dom.devices.disks[0], WHAT)
    plan = [(c, a) for c, a in mon.calls if c in ("blockdev-add", "device_add")]
    assert plan == [
        ("blockdev-add", {"driver": "file", "filename": "/img/b,c.raw", "node-name": "vdb-storage",
                          "read-only": False}),
        ("blockdev-add", {"driver": "qcow2", "file": "vdb-storage", "node-name": "vdb-format",
                          "read-only": False}),
        ("device_add", {"driver": "virtio-blk-pci", "drive": "vdb-format", "id": "virtio-disk1",
                        "serial": "S1", "bus": "pci.2", "addr": "0x0"}),
    ]  # fmt: skip


def test_plug_on_pc_takes_the_first_free_slot_and_records_it() -> None:
    mon = FakeMonitor()
    mon.replies["query-pci"] = [{"bus": 0, "devices": [{"slot": 2}, {"slot": 3}, {"slot": 5}]}]
    dom = domain("pc", vdb())
    plug_block(mon, dom, dom.devices.disks[0], WHAT)
    device = next(a for c, a in mon.calls if c == "device_add")
    assert (device["bus"], device["addr"]) == ("pci.0", "0x4")
    address = dom.devices.disks[0].address  # a restart from the live XML puts it there again
    assert address is not None and (address.attrs["bus"], address.attrs["slot"]) == ("0x00", "0x04")


def test_plug_on_q35_records_the_port_it_took() -> None:
    mon = FakeMonitor()
    mon.replies["query-pci"] = [{"bus": 0, "devices": [port(1, "a"), port(2), port(3)]}]
    dom = domain("q35", vdb())
    plug_block(mon, dom, dom.devices.disks[0], WHAT)
    device = next(a for c, a in mon.calls if c == "device_add")
    assert device["bus"] == "pci.2"
    address = dom.devices.disks[0].address
    assert address is not None and address.attrs["bus"] == "0x02"
    ports = [c.index for c in dom.devices.controllers if c.model == "pcie-root-port"]
    assert ports == [2]  # declared in the live XML, so a restore keeps its number


def test_failed_device_add_deletes_the_nodes_it_added() -> None:
    mon = FakeMonitor()
    mon.fail["device_add"] = QmpError("device_add", "GenericError", "PCI: slot 0 not available")
    dom = domain("q35", vdb())
    with pytest.raises(QemuError, match="cannot attach disk 'vdb' of domain 'vm': PCI: slot 0"):
        plug_block(mon, dom, dom.devices.disks[0], WHAT)
    assert mon.commands() == ["blockdev-add", "blockdev-add", "device_add", "blockdev-del",
                              "blockdev-del"]  # fmt: skip
    dels = [a["node-name"] for c, a in mon.calls if c == "blockdev-del"]
    assert dels == ["vdb-format", "vdb-storage"]


def test_no_free_port_is_refused_before_anything_is_added() -> None:
    mon = FakeMonitor()
    mon.replies["query-pci"] = [{"bus": 0, "devices": [port(1, "a"), port(2, "b"), port(3, "c")]}]
    dom = domain("q35", vdb())
    with pytest.raises(WrongState, match="no free pcie-root-port left in domain 'vm'"):
        plug_block(mon, dom, dom.devices.disks[0], WHAT)
    assert mon.commands() == []


def test_free_root_ports_in_index_order() -> None:
    mon = FakeMonitor()
    mon.replies["query-pci"] = [{"bus": 0, "devices": [port(3), port(1, "x"), port(2)]}]
    assert free_root_ports(mon) == ["pci.2", "pci.3"]


def test_scsi_disk_needs_its_controller() -> None:
    mon = FakeMonitor()
    mon.replies["qom-list"] = [p for p in PERIPHERALS if p["name"] != "scsi0"]
    sdb = Disk(source="/img/s.raw", target_dev="sdb", target_bus=DiskBus.SCSI)
    dom = domain("q35", sdb)
    with pytest.raises(WrongState, match="has no controller 'scsi0'"):
        plug_block(mon, dom, sdb, "disk 'sdb' of domain 'vm'")
    assert mon.commands() == []


def test_unplug_waits_for_the_device_itself_not_its_virtio_child() -> None:
    child = deleted(None, "/machine/peripheral/virtio-disk1/virtio-backend")
    mon = FakeMonitor([child, deleted("virtio-disk1", "/machine/peripheral/virtio-disk1")])
    dom = domain("q35", vdb())
    assert unplug_block(mon, dom, dom.devices.disks[0], 5.0, WHAT) == []
    assert mon.commands() == ["device_del", "blockdev-del", "blockdev-del"]
    assert mon.events == [child]


def test_unplug_timeout_names_the_disk_and_keeps_the_nodes() -> None:
    mon = FakeMonitor([deleted(None, "/machine/peripheral/virtio-disk1/virtio-backend")])
    dom = domain("q35", vdb())
    with pytest.raises(QemuError, match=r"disk 'vdb' of domain 'vm' was not released .* 2 s"):
        unplug_block(mon, dom, dom.devices.disks[0], 2.0, WHAT)
    assert mon.commands() == ["device_del"]


def test_unplug_of_a_device_already_gone_is_done() -> None:
    mon = FakeMonitor()
    mon.fail["device_del"] = QmpError("device_del", "DeviceNotFound", "Device 'x' not found")
    unplug(mon, "virtio-disk1", timeout=1.0, what=WHAT)


@pytest.mark.parametrize(
    ("disk", "ids"),
    [
        (Disk(source="/i", target_dev="vdc"), ["virtio-disk2"]),
        (Disk(source="/i", target_dev="sdb", target_bus=DiskBus.SCSI), ["scsi0-0-0-1"]),
        (Disk(source="/i", target_dev="sdc", target_bus=DiskBus.USB), ["usb-disk2"]),
        (
            Disk(device=DiskDevice.CDROM, target_dev="sdd", target_bus=DiskBus.USB),
            ["usb-disk3", "usb-disk3-cd"],
        ),
    ],
)
def test_hotplug_ids_are_the_ids_of_a_start(disk: Disk, ids: list[str]) -> None:
    """What is plugged now must be found by name after a restart, and the other way round."""
    dom = domain("q35", disk)
    dom.devices.controllers = [Controller(ControllerType.USB, model="qemu-xhci")]
    parts = block_parts(dom, disk)
    assert [str(d.props["id"]) for d in parts.devices] == ids
    nowhere = RuntimePaths(*[Path("/x")] * 4)
    argv = " ".join(build_argv(dom, ArgvOptions(accel="tcg"), nowhere))
    for ident in ids:
        assert re.search(rf"[,=]id={re.escape(ident)}(,|$| )", argv), ident
    for node in parts.nodes:
        assert f"node-name={node}" in argv


def test_swap_media_ejects_then_inserts_and_closes_the_tray() -> None:
    cd = Disk(device=DiskDevice.CDROM, source="/a.iso", target_dev="sda", target_bus=DiskBus.SCSI)
    dom = domain("q35", cd)
    mon = FakeMonitor()
    new = Disk(device=DiskDevice.CDROM, source="/b.iso", target_dev="sda", target_bus=DiskBus.SCSI)
    swap_media(mon, dom, cd, new, force=False, what="drive 'sda'")
    assert mon.commands() == [
        "blockdev-open-tray", "blockdev-remove-medium", "blockdev-del", "blockdev-del",
        "blockdev-add", "blockdev-add", "blockdev-insert-medium", "blockdev-close-tray",
    ]  # fmt: skip
    insert = next(a for c, a in mon.calls if c == "blockdev-insert-medium")
    assert insert == {"id": "scsi0-0-0-0", "node-name": "sda-format"}


def test_swap_media_refuses_a_locked_tray_unless_forced() -> None:
    cd = Disk(device=DiskDevice.CDROM, source="/a.iso", target_dev="hdc", target_bus=DiskBus.IDE)
    dom = domain("pc", cd)
    mon = FakeMonitor()
    mon.replies["query-block"] = [{"qdev": "ide0-1-0", "locked": True}]
    empty = Disk(device=DiskDevice.CDROM, target_dev="hdc", target_bus=DiskBus.IDE)
    with pytest.raises(WrongState, match=r"locked the tray of drive 'hdc'.*--force"):
        swap_media(mon, dom, cd, empty, force=False, what="drive 'hdc'")
    assert mon.commands() == []
    swap_media(mon, dom, cd, empty, force=True, what="drive 'hdc'")
    assert "blockdev-remove-medium" in mon.commands()


def test_failed_insert_puts_the_old_medium_back() -> None:
    cd = Disk(device=DiskDevice.CDROM, source="/a.iso", target_dev="sda", target_bus=DiskBus.SCSI)
    dom = domain("q35", cd)
    mon = FakeMonitor()
    mon.fail["blockdev-insert-medium"] = QmpError("blockdev-insert-medium", "GenericError", "no")
    new = Disk(device=DiskDevice.CDROM, source="/b.iso", target_dev="sda", target_bus=DiskBus.SCSI)
    with pytest.raises(QemuError, match="cannot change the media of drive 'sda': no"):
        swap_media(mon, dom, cd, new, force=True, what="drive 'sda'")
    adds = [a["filename"] for c, a in mon.calls if c == "blockdev-add" and "filename" in a]
    assert adds == ["/b.iso", "/a.iso"]
    assert mon.commands()[-1] == "blockdev-close-tray"


def test_block_stats_by_device_path_or_node() -> None:
    dom = domain("q35", vdb())
    parts = block_parts(dom, dom.devices.disks[0])
    reply = [
        {"qdev": "scsi0-0-0-0", "stats": {"rd_operations": 9}},
        {"qdev": "/machine/peripheral/virtio-disk1/virtio-backend", "stats": {"rd_operations": 2}},
    ]
    assert block_stats_of(reply, parts) == {"rd_operations": 2}
    assert block_stats_of([{"node-name": "vdb-format", "stats": {"x": 1}}], parts) == {"x": 1}
    assert block_stats_of(reply[:1], parts) == {}
