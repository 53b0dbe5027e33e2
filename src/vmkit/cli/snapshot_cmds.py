"""CLI for domain snapshots: snapshot-create, snapshot-create-as, snapshot-list, snapshot-info,
snapshot-dumpxml, snapshot-current, snapshot-revert, snapshot-delete, snapshot-parent.

Text follows virsh's layouts (snapshot-list's table and --tree, snapshot-info's fields);
`--json` prints the same facts as JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict

from vmkit.cli.output import emit, emit_json, fields
from vmkit.cli.snapshot_listing import check_list_args, filtered, table, tree
from vmkit.engine.context import Context
from vmkit.errors import InvalidConfig, NotFound, VmkitError
from vmkit.model.snapshot import (
    DomainSnapshot,
    SnapshotDisk,
    SnapshotLocation,
    check_snapshot_name,
)

Handler = Callable[[Context, argparse.Namespace], int]
_LIST_FLAGS = [
    ("--parent", "add a column showing parent snapshot"),
    ("--roots", "list only snapshots without parents"),
    ("--leaves", "list only snapshots without children"),
    ("--no-leaves", "list only snapshots that are not leaves (with children)"),
    ("--tree", "list snapshots in a tree"),
    ("--name", "list snapshot names only"),
    ("--current", "limit list to children of current snapshot"),
    ("--descendants", "with --from, list all descendants"),
    ("--internal", "filter by internal snapshots"),
    ("--external", "filter by external snapshots"),
    ("--disk-only", "filter by disk-only snapshots"),
    ("--active", "filter by snapshots taken while active (full system snapshots)"),
    ("--inactive", "filter by snapshots taken while inactive"),
    ("--topological", "accepted for virsh habits (the list is sorted by name)"),
]


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("domain", help="domain name, id or uuid")
    if name in ("snapshot-create", "snapshot-create-as"):
        _create_arguments(name, p)
    elif name == "snapshot-list":
        for flag, what in _LIST_FLAGS:
            p.add_argument(flag, action="store_true", help=what)
        p.add_argument("--from", dest="from_", metavar="SNAPSHOT", help="list children of it")
    elif name == "snapshot-dumpxml":
        p.add_argument("snapshotname", help="snapshot name")
        p.add_argument("--security-info", action="store_true", help="accepted for virsh habits")
    elif name == "snapshot-current":
        p.add_argument("snapshotname", nargs="?", help="name of existing snapshot to make current")
        p.add_argument("--name", action="store_true", help="list the name, rather than the XML")
        p.add_argument("--security-info", action="store_true", help="accepted for virsh habits")
    else:
        p.add_argument("snapshotname", nargs="?", help="snapshot name")
        p.add_argument("--current", action="store_true", help="the current snapshot")
    if name == "snapshot-revert":
        state = p.add_mutually_exclusive_group()
        state.add_argument("--running", action="store_true", help="the domain runs after revert")
        state.add_argument("--paused", action="store_true", help="the domain is paused after")
        p.add_argument("--force", action="store_true", help="accepted for virsh habits")
    elif name == "snapshot-delete":
        p.add_argument("--children", action="store_true", help="delete snapshot and children")
        p.add_argument("--children-only", action="store_true", help="delete children only")
        p.add_argument("--metadata", action="store_true", help="delete only vmkit's metadata")


def _create_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "snapshot-create":
        p.add_argument("xmlfile", nargs="?", help="domain snapshot XML")
    else:
        p.add_argument("name_pos", nargs="?", metavar="name", help="name of snapshot")
        p.add_argument("description_pos", nargs="?", metavar="description", help="description")
        p.add_argument("--name", help="name of snapshot")
        p.add_argument("--description", help="description of snapshot")
        p.add_argument("--print-xml", action="store_true", help="print XML document only")
        p.add_argument("--memspec", metavar="[file=]PATH[,snapshot=TYPE]", help="memory attributes")
        p.add_argument(
            "--diskspec",
            action="append",
            default=[],
            metavar="DISK[,snapshot=TYPE][,driver=qcow2][,file=PATH]",
            help="disk attributes",
        )
    p.add_argument("--disk-only", action="store_true", help="capture disk state but not vm state")
    p.add_argument("--quiesce", action="store_true", help="quiesce guest's file systems")
    p.add_argument(
        "--no-metadata", action="store_true", help="take snapshot but create no metadata"
    )
    p.add_argument("--atomic", action="store_true", help="accepted; vmkit is always atomic")
    p.add_argument("--live", action="store_true", help="accepted for virsh habits")
    p.add_argument("--validate", action="store_true", help="accepted; vmkit always validates")


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        return _HANDLERS[name](ctx, args)


# -- create -----------------------------------------------------------------------------------


def _create(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.xml.snapshot import parse_snapshot

    source = None
    if args.xmlfile:
        from vmkit.cli.domain_cmds import read_xml_arg

        data, source = read_xml_arg(args.xmlfile)
        req = parse_snapshot(data, source=source)
    else:
        req = DomainSnapshot()
    snap = _do_create(ctx, args, req)
    where = f" from '{source}'" if source else ""
    return _created(args, snap, f"Domain snapshot {snap.name} created{where}")


def _create_as(ctx: Context, args: argparse.Namespace) -> int:
    name = args.name or args.name_pos
    if name is not None:
        check_snapshot_name(name)
    req = DomainSnapshot(name=name, description=args.description or args.description_pos)
    if args.memspec:
        req.memory, req.memory_file = _memspec(args.memspec)
    req.disks = [_diskspec(spec) for spec in args.diskspec]
    if args.print_xml:
        from vmkit.xml.snapshot import render_snapshot

        emit(render_snapshot(req) + "\n")
        return 0
    snap = _do_create(ctx, args, req)
    return _created(args, snap, f"Domain snapshot {snap.name} created")


def _do_create(ctx: Context, args: argparse.Namespace, req: DomainSnapshot) -> DomainSnapshot:
    from vmkit.engine.snapshots import create_snapshot

    return create_snapshot(
        ctx,
        args.domain,
        req,
        disk_only=args.disk_only,
        quiesce=args.quiesce,
        no_metadata=args.no_metadata,
    )


def _created(args: argparse.Namespace, snap: DomainSnapshot, text: str) -> int:
    if args.json:
        emit_json(_snap_json(snap))
    else:
        emit(text + "\n")
    return 0


def _spec_parts(spec: str) -> list[tuple[str, str]]:
    parts = []
    for piece in spec.split(","):
        key, sep, value = piece.partition("=")
        parts.append((key.strip(), value.strip()) if sep else ("", key.strip()))
    return parts


def _memspec(spec: str) -> tuple[SnapshotLocation | None, str | None]:
    location: SnapshotLocation | None = None
    path: str | None = None
    for key, value in _spec_parts(spec):
        if key in ("", "file"):
            path = value
        elif key == "snapshot":
            location = _location(value, "--memspec")
        else:
            raise InvalidConfig(f"--memspec: unknown attribute '{key}'", value=spec)
    if path and not path.startswith("/"):
        raise InvalidConfig(f"--memspec: the memory file must be an absolute path: {path}")
    if location is None:
        location = SnapshotLocation.EXTERNAL if path else None
    return location, path or None


def _diskspec(spec: str) -> SnapshotDisk:
    parts = _spec_parts(spec)
    if not parts or parts[0][0] or not parts[0][1]:
        raise InvalidConfig(f"--diskspec must start with a disk name: '{spec}'", value=spec)
    disk = SnapshotDisk(name=parts[0][1])
    for key, value in parts[1:]:
        if key == "snapshot":
            disk.snapshot = _location(value, "--diskspec")
        elif key == "driver":
            if value != "qcow2":
                raise InvalidConfig(f"--diskspec: only driver=qcow2 is supported, not {value}")
            disk.driver_type = value
        elif key == "file":
            if not value.startswith("/"):
                raise InvalidConfig(f"--diskspec: the file must be an absolute path: {value}")
            disk.source_file = value
        elif key != "stype" or value != "file":
            raise InvalidConfig(f"--diskspec: unsupported attribute '{key}={value}'", value=spec)
    if disk.snapshot is None and (disk.source_file or disk.driver_type):
        disk.snapshot = SnapshotLocation.EXTERNAL
    return disk


def _location(value: str, flag: str) -> SnapshotLocation:
    allowed = ("no", "internal", "external")
    if value not in allowed:
        raise InvalidConfig(f"{flag}: snapshot must be one of {', '.join(allowed)}: {value}")
    return SnapshotLocation(value)


# -- list -------------------------------------------------------------------------------------


def _list(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.snapshots import list_snapshots

    check_list_args(args)
    _, snaps = list_snapshots(ctx, args.domain)
    by_name = {s.name: s for s in snaps if s.name}
    start = args.from_
    if args.current:
        current = [s.name for s in snaps if s.current]
        if not current:
            raise _no_current()
        start = current[0]
    if start is not None and start not in by_name:
        raise _not_found(start)
    shown = filtered(snaps, by_name, args, start)
    if args.json:
        emit_json([_snap_json(s) for s in shown])
    elif args.tree:
        emit(tree([s for s in shown], start) + "\n")
    elif args.name:
        emit("".join(f"{s.name}\n" for s in shown) + "\n")
    else:
        emit(table(shown, parent=args.parent) + "\n")
    return 0


# -- one snapshot -----------------------------------------------------------------------------


def _snapshot_arg(args: argparse.Namespace) -> str | None:
    """The snapshot named on the command line; None means the current one."""
    if args.snapshotname:
        return str(args.snapshotname)
    if getattr(args, "current", False):
        return None
    raise InvalidConfig("a snapshot name or --current is required")


def _info(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.snapshots import snapshot_info

    i = snapshot_info(ctx, args.domain, _snapshot_arg(args))
    if args.json:
        emit_json(asdict(i))
        return 0
    pairs: list[tuple[str, object]] = [
        ("Name", i.name),
        ("Domain", i.domain),
        ("Current", "yes" if i.current else "no"),
        ("State", i.state),
        ("Location", i.location),
        ("Parent", i.parent or "-"),
        ("Children", i.children),
        ("Descendants", i.descendants),
        ("Metadata", "yes" if i.metadata else "no"),
    ]
    emit(fields(pairs) + "\n")
    return 0


def _dumpxml(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.snapshots import get_snapshot
    from vmkit.xml.snapshot import render_snapshot

    snap = get_snapshot(ctx, args.domain, args.snapshotname)
    xml = render_snapshot(snap)
    emit_json({"name": snap.name, "xml": xml}) if args.json else emit(xml + "\n")
    return 0


def _current(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.snapshots import get_snapshot, set_current_snapshot
    from vmkit.xml.snapshot import render_snapshot

    if args.snapshotname:
        snap = set_current_snapshot(ctx, args.domain, args.snapshotname)
        _say(args, f"Snapshot {snap.name} set as current", name=snap.name, current=True)
        return 0
    snap = get_snapshot(ctx, args.domain, None)
    if args.json:
        emit_json(_snap_json(snap))
    elif args.name:
        emit(f"{snap.name}\n\n")
    else:
        emit(render_snapshot(snap) + "\n")
    return 0


def _parent(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.snapshots import get_snapshot

    snap = get_snapshot(ctx, args.domain, _snapshot_arg(args))
    if snap.parent is None:
        raise VmkitError(f"snapshot '{snap.name}' has no parent")
    _say(args, snap.parent, name=snap.name, parent=snap.parent)
    return 0


def _revert(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.snapshot_revert import revert_snapshot
    from vmkit.engine.snapshots import get_snapshot

    name = _snapshot_arg(args) or get_snapshot(ctx, args.domain, None).name
    assert name is not None
    running = True if args.running else False if args.paused else None
    snap = revert_snapshot(ctx, args.domain, name, running=running)
    _say(args, f"Domain snapshot {snap.name} reverted", name=snap.name, reverted=True)
    return 0


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.snapshots import delete_snapshot, get_snapshot

    name = _snapshot_arg(args) or get_snapshot(ctx, args.domain, None).name
    assert name is not None
    done = delete_snapshot(
        ctx,
        args.domain,
        name,
        children=args.children,
        children_only=args.children_only,
        metadata_only=args.metadata,
    )
    what = "children deleted" if args.children_only else "deleted"
    _say(args, f"Domain snapshot {name} {what}", name=name, deleted=done)
    return 0


# -- helpers ----------------------------------------------------------------------------------


def _say(args: argparse.Namespace, text: str, **facts: object) -> None:
    if args.json:
        emit_json(facts)
    else:
        emit(text + "\n\n")


def _snap_json(snap: DomainSnapshot) -> dict[str, object]:
    return {
        "name": snap.name,
        "description": snap.description,
        "state": str(snap.state) if snap.state else None,
        "parent": snap.parent,
        "creation_time": snap.creation_time,
        "current": snap.current,
        "location": "external" if snap.is_external else "internal",
        "memory": str(snap.memory) if snap.memory else None,
        "memory_file": snap.memory_file,
        "disks": [
            {
                "name": d.name,
                "snapshot": str(d.snapshot) if d.snapshot else None,
                "file": d.source_file,
            }
            for d in snap.disks
        ],
    }


def _no_current() -> VmkitError:
    return NotFound(
        "domain snapshot",
        "current",
        "Domain snapshot not found: the domain does not have a current snapshot",
    )


def _not_found(name: str) -> VmkitError:
    return NotFound(
        "domain snapshot",
        name,
        f"Domain snapshot not found: no domain snapshot with matching name '{name}'",
    )


_HANDLERS: dict[str, Handler] = {
    "snapshot-create": _create,
    "snapshot-create-as": _create_as,
    "snapshot-list": _list,
    "snapshot-info": _info,
    "snapshot-dumpxml": _dumpxml,
    "snapshot-current": _current,
    "snapshot-revert": _revert,
    "snapshot-delete": _delete,
    "snapshot-parent": _parent,
}
