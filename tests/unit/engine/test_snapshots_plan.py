"""plan_snapshot: which kind of snapshot a request on a domain in a given state becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmkit.engine.snapshot_plan import SnapshotPlan, overlay_path, plan_snapshot
from vmkit.errors import InvalidConfig
from vmkit.model.devices import Disk, DiskDevice, DiskFormat
from vmkit.model.domain import Domain
from vmkit.model.snapshot import DomainSnapshot, SnapshotDisk, SnapshotLocation, SnapshotState

NO, INTERNAL, EXTERNAL = SnapshotLocation.NO, SnapshotLocation.INTERNAL, SnapshotLocation.EXTERNAL
MEM = Path("/var/lib/vmkit/snapshot/u")


def _disk(dev: str, source: str | None, fmt: DiskFormat = DiskFormat.QCOW2, **kw: object) -> Disk:
    return Disk(source=source, target_dev=dev, driver_type=fmt, **kw)  # type: ignore[arg-type]


def _dom(*disks: Disk) -> Domain:
    dom = Domain(name="vm1")
    dom.devices.disks = list(disks)
    return dom


def _plan(
    dom: Domain,
    req: DomainSnapshot | None = None,
    *,
    active: bool = True,
    paused: bool = False,
    disk_only: bool = False,
) -> SnapshotPlan:
    return plan_snapshot(
        dom,
        req or DomainSnapshot(),
        "s1",
        active=active,
        paused=paused,
        disk_only=disk_only,
        memory_dir=MEM,
    )


def test_running_qcow2_domain_gets_internal_snapshot_with_memory() -> None:
    plan = _plan(_dom(_disk("vda", "/i/a.qcow2"), _disk("vdb", "/i/b.qcow2")))
    assert plan.memory is INTERNAL and plan.state is SnapshotState.RUNNING
    assert [d.mode for d in plan.disks] == [INTERNAL, INTERNAL]
    assert not plan.external


def test_paused_and_shut_off_states() -> None:
    dom = _dom(_disk("vda", "/i/a.qcow2"))
    assert _plan(dom, paused=True).state is SnapshotState.PAUSED
    off = _plan(dom, active=False)
    assert off.state is SnapshotState.SHUTOFF and off.memory is NO
    assert [d.mode for d in off.disks] == [INTERNAL]


def test_cdrom_readonly_and_empty_drives_are_left_out() -> None:
    dom = _dom(
        _disk("vda", "/i/a.qcow2"),
        _disk("sda", "/i/x.iso", DiskFormat.RAW, device=DiskDevice.CDROM),
        _disk("vdb", "/i/ro.raw", DiskFormat.RAW, readonly=True),
        _disk("sdb", None, device=DiskDevice.CDROM),
    )
    plan = _plan(dom)
    assert [d.target for d in plan.disks] == ["vda"]
    assert plan.skipped == ("sda", "vdb", "sdb")
    assert [(d.name, d.snapshot) for d in plan.metadata_disks()] == [
        ("vda", INTERNAL),
        ("sda", NO),
        ("vdb", NO),
        ("sdb", NO),
    ]


def test_raw_disk_refuses_internal_and_points_at_disk_only() -> None:
    dom = _dom(_disk("vda", "/i/a.qcow2"), _disk("vdb", "/i/b.img", DiskFormat.RAW))
    with pytest.raises(InvalidConfig, match=r"'vdb' \(/i/b.img\) is raw: use --disk-only"):
        _plan(dom)
    with pytest.raises(InvalidConfig, match="need qcow2"):
        _plan(dom, active=False)


def test_disk_only_makes_overlays_named_like_libvirt() -> None:
    dom = _dom(_disk("vda", "/i/a.qcow2"), _disk("vdb", "/i/b.img", DiskFormat.RAW))
    plan = _plan(dom, disk_only=True)
    assert plan.external and plan.memory is NO
    assert plan.state is SnapshotState.DISK_SNAPSHOT
    assert [(d.source, d.fmt, d.overlay) for d in plan.disks] == [
        ("/i/a.qcow2", "qcow2", "/i/a.s1"),
        ("/i/b.img", "raw", "/i/b.s1"),
    ]
    assert _plan(dom, disk_only=True, active=False).state is SnapshotState.SHUTOFF
    meta = plan.metadata_disks()[0]
    assert (meta.snapshot, meta.source_file, meta.driver_type) == (EXTERNAL, "/i/a.s1", "qcow2")


def test_overlay_file_from_request_by_target_or_path() -> None:
    dom = _dom(_disk("vda", "/i/a.qcow2"), _disk("vdb", "/i/b.qcow2"))
    req = DomainSnapshot(
        disks=[
            SnapshotDisk("vda", EXTERNAL, source_file="/o/a.top"),
            SnapshotDisk("/i/b.qcow2", NO),
        ]
    )
    plan = _plan(dom, req, disk_only=True)
    assert [(d.target, d.overlay) for d in plan.disks] == [("vda", "/o/a.top")]
    assert plan.skipped == ("vdb",)


def test_diskless_running_domain_gets_an_external_memory_snapshot() -> None:
    plan = _plan(_dom())
    assert plan.memory is EXTERNAL and plan.memory_file == str(MEM / "s1.mem")
    assert plan.disks == () and plan.external and plan.state is SnapshotState.RUNNING


def test_diskless_shut_off_domain_gets_a_definition_snapshot() -> None:
    plan = _plan(_dom(), active=False)
    assert (plan.memory, plan.disks, plan.state) == (NO, (), SnapshotState.SHUTOFF)


def test_memory_file_from_request_and_external_disks_with_memory() -> None:
    dom = _dom(_disk("vda", "/i/a.qcow2"))
    req = DomainSnapshot(memory=EXTERNAL, memory_file="/m/vm1.mem")
    plan = _plan(dom, req)
    assert plan.memory_file == "/m/vm1.mem"
    assert [d.mode for d in plan.disks] == [EXTERNAL]
    assert plan.state is SnapshotState.RUNNING


@pytest.mark.parametrize(
    ("req", "kw", "message"),
    [
        (DomainSnapshot(disks=[SnapshotDisk("vdz", NO)]), {}, "no disk named 'vdz'"),
        (DomainSnapshot(memory=INTERNAL), {"disk_only": True}, "--disk-only cannot"),
        (DomainSnapshot(memory=NO), {}, "includes its memory"),
        (DomainSnapshot(memory=INTERNAL), {"active": False}, "not running"),
        (
            DomainSnapshot(disks=[SnapshotDisk("vda", INTERNAL), SnapshotDisk("vdb", EXTERNAL)]),
            {},
            "mixing internal and external",
        ),
        (
            DomainSnapshot(disks=[SnapshotDisk("vda", EXTERNAL, source_file="/i/a.qcow2")]),
            {},
            "must not be its current image",
        ),
        (DomainSnapshot(disks=[SnapshotDisk("sda", INTERNAL)]), {}, "cannot be snapshotted"),
    ],
)
def test_requests_that_cannot_be_done(
    req: DomainSnapshot, kw: dict[str, bool], message: str
) -> None:
    dom = _dom(
        _disk("vda", "/i/a.qcow2"),
        _disk("vdb", "/i/b.qcow2"),
        _disk("sda", "/i/x.iso", DiskFormat.RAW, device=DiskDevice.CDROM),
    )
    with pytest.raises(InvalidConfig, match=message):
        _plan(dom, req, **kw)


def test_disk_only_of_a_diskless_domain_is_refused() -> None:
    with pytest.raises(InvalidConfig, match="no disk to snapshot"):
        _plan(_dom(), disk_only=True)


def test_overlay_path() -> None:
    assert overlay_path("/d/vm1.qcow2", "s1") == "/d/vm1.s1"
    assert overlay_path("/d/disk", "before-upgrade") == "/d/disk.before-upgrade"
