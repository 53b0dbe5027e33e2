"""A domain snapshot as libvirt's domainsnapshot XML describes it. Plain data; no I/O.

Where the state of a snapshot lives:
- internal: qcow2 internal snapshots inside the domain's disk images (memory too, when the
  domain ran: QEMU's vmstate goes into the first qcow2 disk);
- external: the disks' images as they were are frozen and the domain goes on in new qcow2
  overlays on top of them (`disks/disk/source/@file` names the overlay); memory, when taken,
  is a vmkit save image at `memory/@file`.
`domain_xml` is the domain definition at the time of the snapshot (sources = the frozen images
for external disks). `current` is libvirt's private `<active>` marker of the current snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vmkit.model.validate import check_name


class SnapshotState(StrEnum):
    """`<state>`: the domain's state when the snapshot was taken."""

    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    DISK_SNAPSHOT = "disk-snapshot"  # disks only, of a domain that was running


class SnapshotLocation(StrEnum):
    """`memory/@snapshot` and `disk/@snapshot`."""

    NO = "no"
    INTERNAL = "internal"
    EXTERNAL = "external"
    MANUAL = "manual"


@dataclass
class SnapshotDisk:
    """`<disks><disk>`: what the snapshot does with one disk."""

    name: str  # ./@name (target dev, e.g. vda, or the disk's source path)
    snapshot: SnapshotLocation | None = None  # ./@snapshot
    type: str | None = None  # ./@type (file)
    source_file: str | None = None  # ./source/@file (external: the new overlay)
    driver_type: str | None = None  # ./driver/@type (external: qcow2)


@dataclass
class DomainSnapshot:
    """`<domainsnapshot>`."""

    name: str | None = None  # ./name (default: the creation time in seconds)
    description: str | None = None  # ./description
    state: SnapshotState | None = None  # ./state
    parent: str | None = None  # ./parent/name
    creation_time: int | None = None  # ./creationTime (seconds since the epoch)
    memory: SnapshotLocation | None = None  # ./memory/@snapshot
    memory_file: str | None = None  # ./memory/@file (external)
    disks: list[SnapshotDisk] = field(default_factory=list)  # ./disks/disk
    domain_xml: str | None = None  # ./domain (the definition at snapshot time, serialized)
    current: bool = False  # ./active (libvirt's metadata: 1 on the current snapshot)

    @property
    def is_external(self) -> bool:
        """libvirt's "Location: external": memory or any disk outside the images."""
        if self.memory is SnapshotLocation.EXTERNAL:
            return True
        return any(d.snapshot is SnapshotLocation.EXTERNAL for d in self.disks)

    @property
    def has_memory(self) -> bool:
        return self.memory in (SnapshotLocation.INTERNAL, SnapshotLocation.EXTERNAL)

    def disk(self, name: str) -> SnapshotDisk | None:
        for d in self.disks:
            if d.name == name:
                return d
        return None


def check_snapshot_name(name: str) -> None:
    """A snapshot name: used in overlay file names and qemu-img's argv (InvalidConfig if not)."""
    check_name(name, kind="snapshot", xpath="/domainsnapshot/name")
