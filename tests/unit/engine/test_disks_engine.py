"""Disk operations on a real store with a fake QEMU monitor: which XML changes under which
flags, what is refused (and that a refusal changes nothing), and the shared-image check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_fakes import UUIDS, domain_xml, patch_open_monitor, running_runtime
from test_disks_qmp import FakeMonitor

from vmkit.engine import disks, hotplug
from vmkit.engine.context import Context
from vmkit.engine.disks import DiskArgs, MediaAction
from vmkit.engine.hotplug import Flags, Scope, resolve_scope
from vmkit.errors import Conflict, InvalidConfig, NotFound, QemuError, QmpError, WrongState
from vmkit.state.records import DOMAIN
from vmkit.xml.domain import parse_domain

CDROM = "<disk type='file' device='cdrom'><target dev='sda' bus='scsi'/><readonly/></disk>"


@pytest.fixture
def mon(monkeypatch: pytest.MonkeyPatch) -> FakeMonitor:
    return patch_open_monitor(monkeypatch, disks, FakeMonitor())


@pytest.fixture
def img(tmp_path: Path) -> Path:
    path = tmp_path / "data.raw"
    path.write_bytes(b"\0" * 65536)
    return path


def define(ctx: Context, name: str, devices: str = "", *, running: bool = False, **kw: Any) -> None:
    xml = domain_xml(name, devices, **kw)
    ctx.store.define(DOMAIN, UUIDS[name], name, xml)
    if running:
        domain_id = len(list(ctx.store.domains())) + 10
        ctx.store.put_runtime(running_runtime(name, xml, domain_id))


def xmls(ctx: Context, name: str = "vm") -> tuple[str, str]:
    """(persistent XML, live XML or '')."""
    entry = ctx.store.lookup_domain(name)
    return entry.definition.xml, entry.runtime.live_xml if entry.runtime else ""


def targets(xml: str) -> list[str]:
    return [d.target_dev for d in parse_domain(xml).devices.disks] if xml else []


def vdb(img: Path, **kw: Any) -> Any:
    return disks.disk_from_args(DiskArgs(source=str(img), target="vdb", **kw))


@pytest.mark.parametrize(
    ("running", "flags", "want"),
    [
        (True, Flags(), Scope(live=True, config=False)),
        (False, Flags(), Scope(live=False, config=True)),
        (True, Flags(current=True), Scope(live=True, config=False)),
        (True, Flags(config=True), Scope(live=False, config=True)),
        (True, Flags(persistent=True), Scope(live=True, config=True)),
        (False, Flags(persistent=True), Scope(live=False, config=True)),
        (True, Flags(live=True, config=True), Scope(live=True, config=True)),
    ],
)
def test_scope_follows_libvirt(ctx: Context, running: bool, flags: Flags, want: Scope) -> None:
    define(ctx, "vm", running=running)
    assert resolve_scope(ctx.store.lookup_domain("vm"), flags) == want


def test_scope_refusals(ctx: Context) -> None:
    define(ctx, "vm")
    entry = ctx.store.lookup_domain("vm")
    with pytest.raises(WrongState, match="domain is not running: 'vm'"):
        resolve_scope(entry, Flags(live=True))
    with pytest.raises(InvalidConfig, match="--current and --config are mutually exclusive"):
        resolve_scope(entry, Flags(current=True, config=True))
    transient = entry.definition.replace(persistent=False)
    with pytest.raises(WrongState, match="transient domain 'vm'"):
        resolve_scope(entry.replace(definition=transient), Flags(config=True))


def test_attach_to_a_shut_off_domain_changes_its_config(ctx: Context, img: Path) -> None:
    define(ctx, "vm")
    disks.attach_disk(ctx, "vm", vdb(img), Flags())
    config, _ = xmls(ctx)
    assert targets(config) == ["vdb"]
    assert "<target dev='vdb' bus='virtio'/>" in config
    assert [e.event for e in ctx.store.events(uuid=UUIDS["vm"])][-1] == "disk-attached"


def test_attach_live_plugs_and_records_live_xml_only(
    ctx: Context, img: Path, mon: FakeMonitor
) -> None:
    define(ctx, "vm", running=True)
    disks.attach_disk(ctx, "vm", vdb(img), Flags())
    config, live = xmls(ctx)
    assert (targets(config), targets(live)) == ([], ["vdb"])
    assert mon.commands() == ["blockdev-add", "blockdev-add", "device_add"]


def test_attach_persistent_changes_both(ctx: Context, img: Path, mon: FakeMonitor) -> None:
    define(ctx, "vm", running=True)
    disks.attach_disk(ctx, "vm", vdb(img), Flags(persistent=True))
    assert [targets(x) for x in xmls(ctx)] == [["vdb"], ["vdb"]]


def test_refused_device_add_leaves_store_unchanged(
    ctx: Context, img: Path, mon: FakeMonitor
) -> None:
    define(ctx, "vm", running=True)
    before = xmls(ctx)
    mon.fail["device_add"] = QmpError("device_add", "GenericError", "no slot")
    with pytest.raises(QemuError, match="cannot attach disk 'vdb' of domain 'vm': no slot"):
        disks.attach_disk(ctx, "vm", vdb(img), Flags(persistent=True))
    assert xmls(ctx) == before
    assert mon.commands()[-2:] == ["blockdev-del", "blockdev-del"]


def test_bad_input_is_refused_before_qemu_is_asked(
    ctx: Context, img: Path, mon: FakeMonitor, tmp_path: Path
) -> None:
    define(
        ctx,
        "vm",
        f"<disk type='file'><source file='{img}'/><target dev='vda'/></disk>",
        running=True,
    )
    before = xmls(ctx)
    qcow = tmp_path / "q.qcow2"
    qcow.write_bytes(b"QFI\xfb" + b"\0" * 508)
    cases: list[tuple[type[Exception], str, Any]] = [
        (Conflict, "target 'vda' already exists", DiskArgs(str(img), "vda")),
        (InvalidConfig, "cannot access .*nope", DiskArgs(str(tmp_path / "nope"), "vdb")),
        (InvalidConfig, "is a qcow2 image.*--subdriver qcow2", DiskArgs(str(qcow), "vdb")),
        (WrongState, "ide bus, which cannot", DiskArgs(str(qcow), "hdb", subdriver="qcow2")),
        (InvalidConfig, "'vdb'.*has no source", DiskArgs("", "vdb")),
    ]  # fmt: skip
    for error, match, args in cases:
        with pytest.raises(error, match=match):
            disks.attach_disk(ctx, "vm", disks.disk_from_args(args), Flags(persistent=True))
    assert xmls(ctx) == before
    assert mon.commands() == []


def test_microvm_refuses_hotplug_but_not_config(ctx: Context, img: Path, mon: FakeMonitor) -> None:
    define(ctx, "vm", running=True, machine="microvm")
    with pytest.raises(WrongState, match="domain 'vm' is a microvm machine"):
        disks.attach_disk(ctx, "vm", vdb(img), Flags(live=True))
    disks.attach_disk(ctx, "vm", vdb(img), Flags(config=True))
    assert [targets(x) for x in xmls(ctx)] == [["vdb"], []]


def test_image_of_another_running_domain(ctx: Context, img: Path, mon: FakeMonitor) -> None:
    src = f"<source file='{img}'/>"
    define(ctx, "other", f"<disk type='file'>{src}<target dev='vda'/></disk>", running=True)
    define(ctx, "vm", running=True)
    with pytest.raises(Conflict, match=r"in use by running domain 'other' \(disk 'vda'\)"):
        disks.attach_disk(ctx, "vm", vdb(img), Flags())
    with pytest.raises(Conflict, match="'other'"):
        disks.attach_disk(ctx, "vm", vdb(img, mode="shareable"), Flags())
    disks.attach_disk(ctx, "vm", vdb(img, mode="readonly", targetbus="scsi"), Flags(config=True))
    with pytest.raises(Conflict):  # read-only here, but the other domain writes it
        disks.check_disk_conflicts(ctx, parse_domain(xmls(ctx)[0]))


def test_sharing_is_fine_when_both_share_or_both_only_read(ctx: Context, img: Path) -> None:
    shared = f"<disk type='file'><source file='{img}'/><target dev='vda'/><shareable/></disk>"
    define(ctx, "other", shared, running=True)
    mine = parse_domain(domain_xml("vm", shared.replace("vda", "vdb")))
    disks.check_disk_conflicts(ctx, mine)
    both_ro = parse_domain(domain_xml("vm", shared.replace("<shareable/>", "<readonly/>")))
    with pytest.raises(Conflict):
        disks.check_disk_conflicts(ctx, both_ro)  # the other one may write


def test_start_check_ignores_dead_domains_and_sees_duplicates(ctx: Context, img: Path) -> None:
    used = f"<disk type='file'><source file='{img}'/><target dev='vda'/></disk>"
    define(ctx, "other", used, running=True)
    rt = ctx.store.get_runtime(UUIDS["other"])
    assert rt is not None and rt.pid_start is not None
    ctx.store.put_runtime(rt.replace(pid_start=rt.pid_start + 1))  # a reused pid
    disks.check_disk_conflicts(ctx, parse_domain(domain_xml("vm", used)))
    twice = used + used.replace("vda", "vdb")
    with pytest.raises(Conflict, match=r"in use by domain 'vm' \(disk 'vdb'\)"):
        disks.check_disk_conflicts(ctx, parse_domain(domain_xml("vm", twice)))


def test_detach_unknown_and_timeout(ctx: Context, img: Path, mon: FakeMonitor) -> None:
    define(
        ctx,
        "vm",
        f"<disk type='file'><source file='{img}'/><target dev='vdb'/></disk>",
        running=True,
    )
    before = xmls(ctx)
    with pytest.raises(NotFound, match="No disk found whose source path or target is 'vdz'"):
        disks.detach_disk(ctx, "vm", "vdz", Flags())
    with pytest.raises(QemuError, match="disk 'vdb' of domain 'vm' was not released"):
        disks.detach_disk(ctx, "vm", "vdb", Flags(), timeout=0.1)
    assert xmls(ctx) == before
    mon.events.append({"event": "DEVICE_DELETED", "data": {"device": "virtio-disk1"}})
    disks.detach_disk(ctx, "vm", str(img), Flags(persistent=True))  # by source path
    assert [targets(x) for x in xmls(ctx)] == [[], []]


def test_change_media_live(ctx: Context, img: Path, mon: FakeMonitor) -> None:
    define(ctx, "vm", CDROM, running=True)
    with pytest.raises(WrongState, match="doesn't have media"):
        disks.change_media(ctx, "vm", "sda", MediaAction.EJECT, None, Flags())
    disks.change_media(ctx, "vm", "sda", MediaAction.INSERT, str(img), Flags())
    config, live = xmls(ctx)
    assert str(img) in live and str(img) not in config
    with pytest.raises(Conflict, match="already has media"):
        disks.change_media(ctx, "vm", "sda", MediaAction.INSERT, str(img), Flags())
    disks.change_media(ctx, "vm", "sda", MediaAction.EJECT, None, Flags())
    assert str(img) not in xmls(ctx)[1]
    assert "blockdev-insert-medium" in mon.commands()


def test_change_media_needs_a_removable_drive(ctx: Context, img: Path) -> None:
    define(ctx, "vm", f"<disk type='file'><source file='{img}'/><target dev='vda'/></disk>")
    with pytest.raises(InvalidConfig, match="'vda' of domain 'vm' is not removable"):
        disks.change_media(ctx, "vm", "vda", MediaAction.EJECT, None, Flags())


def test_attach_disk_on_a_cdrom_drive_changes_media(ctx: Context, img: Path) -> None:
    define(ctx, "vm", CDROM)
    cd = disks.disk_from_args(DiskArgs(str(img), "sda", type="cdrom", targetbus="scsi"))
    disks.attach_disk(ctx, "vm", cd, Flags())
    assert [d.source for d in parse_domain(xmls(ctx)[0]).devices.disks] == [str(img)]


def test_disk_xml_is_what_virsh_prints() -> None:
    args = DiskArgs("/i.qcow2", "vdb", subdriver="qcow2", cache="none", type="cdrom",
                    mode="readonly", serial="abc")  # fmt: skip
    assert disks.disk_xml(args) == (
        "<disk type='file' device='cdrom'>\n"
        "  <driver type='qcow2' cache='none'/>\n"
        "  <source file='/i.qcow2'/>\n"
        "  <target dev='vdb'/>\n"
        "  <readonly/>\n"
        "  <serial>abc</serial>\n"
        "</disk>\n"
    )
    assert disks.disk_xml(DiskArgs("/x", "vdb")) == (
        "<disk type='file'>\n  <source file='/x'/>\n  <target dev='vdb'/>\n</disk>\n"
    )


def test_attach_device_dispatches_by_element(ctx: Context, img: Path) -> None:
    define(ctx, "vm")
    xml = f"<disk type='file'><source file='{img}'/><target dev='vdc'/></disk>"
    hotplug.attach_device(ctx, "vm", xml, "d.xml", Flags())
    assert targets(xmls(ctx)[0]) == ["vdc"]
    hotplug.detach_device(ctx, "vm", xml, "d.xml", Flags())
    assert targets(xmls(ctx)[0]) == []
    with pytest.raises(InvalidConfig, match="<hostdev> is not a device vmkit can attach"):
        hotplug.attach_device(ctx, "vm", "<hostdev/>", "h.xml", Flags())
