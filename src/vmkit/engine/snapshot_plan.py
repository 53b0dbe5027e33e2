"""What a new snapshot will do, decided from the domain, the request and the domain's state.

Pure: no I/O. The rules (libvirt's where it has one, vmkit's where libvirt fails its users):

- Disks that are cdroms, floppies, read-only or empty are left out (`snapshot='no'`); so is any
  disk the request marks `snapshot='no'`.
- `--disk-only` (or any disk asked `external`): external snapshot. Each disk's image is frozen
  and a new qcow2 overlay takes the writes: `<dir>/<image stem>.<snapshot name>` by default.
- Otherwise internal: qcow2 internal snapshots in every disk; a running domain's memory goes
  into the first one. Every disk must then be qcow2 (a raw disk is refused, naming it and
  pointing at --disk-only).
- A running domain whose disks cannot hold its memory (no disk at all, or every disk external)
  gets an external memory snapshot: a vmkit save image under the domain's snapshot directory
  (libvirt refuses internal snapshots of a diskless domain with a confusing message).
- A shut-off diskless domain gets a snapshot of its definition only.
- Internal and external disks are never mixed in one snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmkit.errors import InvalidConfig
from vmkit.model.devices import Disk, DiskDevice, DiskFormat
from vmkit.model.domain import Domain
from vmkit.model.snapshot import DomainSnapshot, SnapshotDisk, SnapshotLocation, SnapshotState

NO, INTERNAL, EXTERNAL = SnapshotLocation.NO, SnapshotLocation.INTERNAL, SnapshotLocation.EXTERNAL


@dataclass(frozen=True)
class DiskStep:
    """One disk of a snapshot: its image now and, for an external snapshot, the new overlay."""

    target: str  # vda
    mode: SnapshotLocation  # INTERNAL or EXTERNAL
    source: str  # the image the domain uses now
    fmt: str  # its format (raw, qcow2)
    overlay: str | None = None  # EXTERNAL: the qcow2 overlay that takes the writes


@dataclass(frozen=True)
class SnapshotPlan:
    name: str
    state: SnapshotState
    memory: SnapshotLocation
    memory_file: str | None
    disks: tuple[DiskStep, ...]
    skipped: tuple[str, ...]  # targets left out

    @property
    def external(self) -> bool:
        return self.memory is EXTERNAL or any(d.mode is EXTERNAL for d in self.disks)

    def metadata_disks(self) -> list[SnapshotDisk]:
        """`<disks>` of the snapshot's XML."""
        out = [
            SnapshotDisk(d.target, d.mode, "file", d.overlay, "qcow2")
            if d.mode is EXTERNAL
            else SnapshotDisk(d.target, d.mode)
            for d in self.disks
        ]
        return out + [SnapshotDisk(t, NO) for t in self.skipped]


def snapshottable(disk: Disk) -> bool:
    """A disk whose contents a snapshot keeps: a writable hard disk with an image."""
    return disk.device is DiskDevice.DISK and not disk.readonly and disk.source is not None


def overlay_path(source: str, name: str) -> str:
    """libvirt's default name of an external snapshot's overlay: the image's stem + the name."""
    path = Path(source)
    return str(path.with_name(f"{path.stem}.{name}"))


def plan_snapshot(
    dom: Domain,
    req: DomainSnapshot,
    name: str,
    *,
    active: bool,
    paused: bool,
    disk_only: bool,
    memory_dir: Path,
) -> SnapshotPlan:
    """Decide what to snapshot and how; InvalidConfig says why a request cannot be done."""
    _check_request_disks(dom, req)
    chosen, skipped = _choose_disks(dom, req, disk_only)
    modes = {mode for _, mode in chosen}
    if modes == {INTERNAL, EXTERNAL}:
        raise InvalidConfig(
            "mixing internal and external disk snapshots in one snapshot is not supported"
        )
    external = EXTERNAL in modes
    if disk_only and not chosen:
        raise InvalidConfig(f"domain '{dom.name}' has no disk to snapshot (--disk-only)")
    if disk_only and req.memory in (INTERNAL, EXTERNAL):
        raise InvalidConfig("--disk-only cannot be combined with a memory snapshot")
    memory = _memory(dom, req, active, disk_only, external, bool(chosen))
    steps = tuple(_step(dom.name, disk, mode, name, req) for disk, mode in chosen)
    if memory is INTERNAL or (not external and steps):
        _check_qcow2(dom.name, steps)
    memory_file = None
    if memory is EXTERNAL:
        memory_file = req.memory_file or str(memory_dir / f"{name}.mem")
    if not active:
        state = SnapshotState.SHUTOFF
    elif memory is NO:
        state = SnapshotState.DISK_SNAPSHOT
    else:
        state = SnapshotState.PAUSED if paused else SnapshotState.RUNNING
    return SnapshotPlan(name, state, memory, memory_file, steps, tuple(skipped))


def _check_request_disks(dom: Domain, req: DomainSnapshot) -> None:
    known = {d.target_dev for d in dom.devices.disks} | {
        d.source for d in dom.devices.disks if d.source
    }
    for d in req.disks:
        if d.name not in known:
            raise InvalidConfig(
                f"no disk named '{d.name}' in domain '{dom.name}'",
                xpath="/domainsnapshot/disks/disk/@name",
                value=d.name,
            )


def _asked(req: DomainSnapshot, disk: Disk) -> SnapshotDisk | None:
    return req.disk(disk.target_dev) or (req.disk(disk.source) if disk.source else None)


def _choose_disks(
    dom: Domain, req: DomainSnapshot, disk_only: bool
) -> tuple[list[tuple[Disk, SnapshotLocation]], list[str]]:
    default = EXTERNAL if disk_only or req.memory is EXTERNAL else INTERNAL
    if any(d.snapshot is EXTERNAL for d in req.disks):
        default = EXTERNAL
    chosen: list[tuple[Disk, SnapshotLocation]] = []
    skipped: list[str] = []
    for disk in dom.devices.disks:
        asked = _asked(req, disk)
        mode = asked.snapshot if asked is not None and asked.snapshot is not None else default
        if mode is NO or not snapshottable(disk):
            if asked is not None and mode is not NO:
                raise InvalidConfig(
                    f"disk '{disk.target_dev}' of domain '{dom.name}' cannot be snapshotted "
                    "(a cdrom, floppy, read-only or empty drive)",
                    value=disk.target_dev,
                )
            skipped.append(disk.target_dev)
            continue
        chosen.append((disk, mode))
    return chosen, skipped


def _memory(
    dom: Domain,
    req: DomainSnapshot,
    active: bool,
    disk_only: bool,
    external: bool,
    has_disks: bool,
) -> SnapshotLocation:
    if not active or disk_only or req.memory is NO:
        if active and req.memory is NO and not disk_only and not external:
            raise InvalidConfig(
                f"an internal snapshot of running domain '{dom.name}' includes its memory; "
                "use --disk-only for a snapshot of the disks alone"
            )
        if not active and req.memory in (INTERNAL, EXTERNAL):
            raise InvalidConfig(f"domain '{dom.name}' is not running: it has no memory to save")
        return NO
    if req.memory is INTERNAL and (external or not has_disks):
        raise InvalidConfig(
            f"an internal memory snapshot needs a qcow2 disk of domain '{dom.name}' to hold it "
            "(use <memory snapshot='external'/>)"
        )
    if req.memory is EXTERNAL or external or not has_disks:
        return EXTERNAL
    return INTERNAL


def _step(
    dom_name: str, disk: Disk, mode: SnapshotLocation, name: str, req: DomainSnapshot
) -> DiskStep:
    assert disk.source is not None
    fmt = str(disk.driver_type or DiskFormat.RAW)
    if mode is not EXTERNAL:
        return DiskStep(disk.target_dev, mode, disk.source, fmt)
    asked = _asked(req, disk)
    overlay = asked.source_file if asked is not None else None
    overlay = overlay or overlay_path(disk.source, name)
    if overlay == disk.source:
        raise InvalidConfig(
            f"the overlay of disk '{disk.target_dev}' must not be its current image {overlay}",
            value=overlay,
        )
    return DiskStep(disk.target_dev, mode, disk.source, fmt, overlay)


def _check_qcow2(dom_name: str, steps: tuple[DiskStep, ...]) -> None:
    for step in steps:
        if step.mode is INTERNAL and step.fmt != DiskFormat.QCOW2:
            raise InvalidConfig(
                f"internal snapshots of domain '{dom_name}' need qcow2 disks, but disk "
                f"'{step.target}' ({step.source}) is {step.fmt}: use --disk-only for an external "
                "snapshot, or convert the image to qcow2",
                value=step.target,
            )
