"""libvirt domainsnapshot XML <-> vmkit.model.snapshot.DomainSnapshot.

`parse_snapshot` reads what a user gives `snapshot-create` (name, description, memory, disks);
the parts libvirt fills in itself (state, parent, creationTime, domain, ...) are only accepted
with `stored=True`, i.e. from vmkit's own metadata (libvirt wants --redefine for them, which vmkit
does not offer). `render_snapshot` prints like `virsh snapshot-dumpxml`; the result validates
against libvirt's domainsnapshot.rng. The embedded `<domain>` is kept as serialized text (vmkit
rendered it, so it validates as a domain).
"""

from __future__ import annotations

from lxml import etree

from vmkit.model.snapshot import (
    DomainSnapshot,
    SnapshotDisk,
    SnapshotLocation,
    SnapshotState,
    check_snapshot_name,
)
from vmkit.xml.xmlutil import Elem, Node, ParseContext, parse_xml, render_xml

_FILLED_IN = ("state", "parent", "creationTime", "domain", "inactiveDomain", "active", "cookie")
_MEMORY = (SnapshotLocation.NO, SnapshotLocation.INTERNAL, SnapshotLocation.EXTERNAL)


def parse_snapshot(
    text: str | bytes, *, source: str = "<string>", stored: bool = False
) -> DomainSnapshot:
    """Read a domainsnapshot document; InvalidConfig names the line of what is wrong."""
    tree = parse_xml(text, source=source)
    ctx = ParseContext(tree, source, skip_unknown=False)
    root = Node(ctx, tree.getroot())
    if root.tag != "domainsnapshot":
        raise root.error(f"expected <domainsnapshot>, found <{root.tag}>")
    snap = DomainSnapshot()
    name = root.child_text("name")
    if name is not None:
        snap.name = name.strip()
        check_snapshot_name(snap.name)
    snap.description = root.child_text("description")
    if not stored:
        _refuse_filled_in(root)
    else:
        _read_stored(root, snap, text)
    memory = root.child("memory")
    if memory is not None:
        snap.memory = memory.enum_attr("snapshot", SnapshotLocation, _MEMORY)
        snap.memory_file = _abs_path(memory, memory.attr("file"))
        if snap.memory_file is not None and snap.memory is None:
            snap.memory = SnapshotLocation.EXTERNAL
        if snap.memory is SnapshotLocation.EXTERNAL and snap.memory_file is None and stored:
            raise memory.error("<memory snapshot='external'> needs a file")
        memory.finish()
    disks = root.child("disks")
    if disks is not None:
        snap.disks = [_read_disk(d) for d in disks.children("disk")]
        disks.finish()
    root.finish()
    return snap


def _refuse_filled_in(root: Node) -> None:
    for tag in _FILLED_IN:
        for node in root.children(tag):
            raise node.error(
                f"<{tag}> is filled in by vmkit; it is only accepted when redefining a "
                "snapshot's metadata (--redefine), which vmkit does not support"
            )


def _read_stored(root: Node, snap: DomainSnapshot, text: str | bytes) -> None:
    state = root.child("state")
    if state is not None:
        snap.state = state.enum_text(SnapshotState)
        state.finish()
    parent = root.child("parent")
    if parent is not None:
        snap.parent = parent.child_text("name")
        parent.finish()
    created = root.child("creationTime")
    if created is not None:
        snap.creation_time = created.int_text()
        created.finish()
    domain = root.children("domain")
    if domain:
        snap.domain_xml = _domain_text(text, domain[0].el)
    active = root.child("active")
    if active is not None:
        snap.current = active.choice_text(("0", "1")) == "1"
        active.finish()


def _domain_text(text: str | bytes, el: etree._Element) -> str:
    """The embedded `<domain>` as vmkit wrote it (byte for byte), else re-serialized."""
    doc = text.decode("utf-8") if isinstance(text, bytes) else text
    start, end = doc.find("\n  <domain "), doc.find("\n  </domain>\n")
    if start >= 0 and end > start:
        lines = doc[start + 1 : end + len("\n  </domain>")].splitlines()
        if all(line.startswith("  ") for line in lines):
            return "\n".join(line[2:] for line in lines) + "\n"
    copy = etree.fromstring(etree.tostring(el))
    copy.tail = None
    etree.indent(copy, space="  ")
    return etree.tostring(copy, encoding="unicode") + "\n"


def _read_disk(node: Node) -> SnapshotDisk:
    disk = SnapshotDisk(name=node.req_attr("name"))
    disk.snapshot = node.enum_attr("snapshot", SnapshotLocation)
    disk.type = node.choice_attr("type", ("file",))
    source = node.child("source")
    if source is not None:
        disk.source_file = _abs_path(source, source.attr("file"))
        source.finish()
    driver = node.child("driver")
    if driver is not None:
        disk.driver_type = driver.choice_attr("type", ("qcow2",))
        driver.finish()
    if disk.snapshot is None and (disk.source_file or disk.type or disk.driver_type):
        disk.snapshot = SnapshotLocation.EXTERNAL
    if disk.snapshot is not SnapshotLocation.EXTERNAL and (disk.source_file or disk.driver_type):
        raise node.error(
            f"disk '{disk.name}': a source or driver is only meaningful for an external snapshot"
        )
    if disk.snapshot is SnapshotLocation.MANUAL:
        raise node.error(
            f"disk '{disk.name}': snapshot='manual' is not supported by vmkit "
            "(it has no way to let you snapshot a disk yourself while the guest waits)",
            attr="snapshot",
        )
    node.finish()
    return disk


def _abs_path(node: Node, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith("/") or "\x00" in value:
        raise node.error(f"'{value}' must be an absolute path", value=value)
    return value


def render_snapshot(snap: DomainSnapshot, *, with_current: bool = False) -> str:
    """The snapshot as libvirt prints it; `with_current` adds the private `<active>` marker."""
    root = Elem("domainsnapshot")
    if snap.name is not None:
        root.sub("name", snap.name)
    if snap.description is not None:
        root.sub("description", snap.description)
    if snap.state is not None:
        root.sub("state", snap.state.value)
    if snap.parent is not None:
        root.sub("parent").sub("name", snap.parent)
    if snap.creation_time is not None:
        root.sub("creationTime", str(snap.creation_time))
    if snap.memory is not None:
        root.sub("memory", snapshot=snap.memory.value, file=snap.memory_file)
    if snap.disks:
        disks = root.sub("disks")
        for d in snap.disks:
            el = disks.sub("disk", name=d.name, snapshot=d.snapshot.value if d.snapshot else None)
            el.put("type", d.type)
            if d.driver_type is not None:
                el.sub("driver", type=d.driver_type)
            if d.source_file is not None:
                el.sub("source", file=d.source_file)
    if snap.domain_xml is not None:
        root.raw("\n  ".join(snap.domain_xml.rstrip("\n").splitlines()))
    if with_current:
        root.sub("active", "1" if snap.current else "0")
    return render_xml(root)
