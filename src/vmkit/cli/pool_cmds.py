"""CLI for storage pools: pool-define, pool-define-as, pool-create, pool-create-as, pool-build,
pool-start, pool-destroy, pool-delete, pool-undefine, pool-list, pool-info, pool-refresh,
pool-autostart, pool-dumpxml, pool-uuid, pool-name.

Messages and layouts are virsh's ("Pool default started", pool-list's table); `--json` prints
the same facts as JSON. The `default` pool is set up on the first pool or volume command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from vmkit.cli.output import emit, emit_json
from vmkit.engine import pools
from vmkit.engine.context import Context
from vmkit.errors import InvalidConfig, VmkitError
from vmkit.model.storage import Pool
from vmkit.storage import format_pool_info, format_pool_list

Handler = Callable[[Context, argparse.Namespace], int]
_DEFINING = ("pool-define", "pool-define-as", "pool-create", "pool-create-as")
_BUILD_FLAGS = (
    ("--overwrite", "fs pool: always make a new file system on the source device"),
    ("--no-overwrite", "fs pool: make a file system unless the device holds one"),
)


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name in ("pool-define", "pool-create"):
        p.add_argument("file", help="pool XML file ('-' for stdin)")
    elif name in ("pool-define-as", "pool-create-as"):
        _as_arguments(p)
    elif name == "pool-list":
        _list_arguments(p)
    else:
        p.add_argument("pool", help="pool name or uuid")
    if name in ("pool-create", "pool-create-as", "pool-start"):
        p.add_argument("--build", action="store_true", help="build the pool first")
    if name in ("pool-create", "pool-create-as", "pool-start", "pool-build"):
        for flag, text in _BUILD_FLAGS:
            p.add_argument(flag, action="store_true", help=text)
    if name == "pool-info":
        p.add_argument("--bytes", action="store_true", help="sizes in bytes")
    elif name == "pool-autostart":
        p.add_argument("--disable", action="store_true", help="disable autostarting")
    elif name == "pool-dumpxml":
        p.add_argument("--inactive", action="store_true", help="the definition, without sizes")


def _as_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="name of the pool")
    p.add_argument("type", help="type of the pool (dir, fs)")
    # virsh's optional positionals: source-host source-path source-dev source-name target ('-')
    for pos in ("source_host", "source_path", "source_dev", "source_name", "target"):
        p.add_argument(
            f"pos_{pos}", nargs="?", metavar=pos.replace("_", "-"), help=argparse.SUPPRESS
        )
    p.add_argument("--target", help="target directory of the pool")
    p.add_argument("--source-dev", help="source device (fs pools)")
    p.add_argument("--source-format", help="file system of the source device (fs pools)")
    for flag in ("--source-host", "--source-path", "--source-name"):
        p.add_argument(flag, help="not used by dir and fs pools")
    p.add_argument("--print-xml", action="store_true", help="print the XML, define nothing")


def _list_arguments(p: argparse.ArgumentParser) -> None:
    for flag, what in [
        ("--all", "list inactive & active pools"),
        ("--inactive", "list inactive pools"),
        ("--details", "display extended details for pools"),
        ("--transient", "list transient pools"),
        ("--persistent", "list persistent pools"),
        ("--autostart", "list pools with autostart enabled"),
        ("--no-autostart", "list pools with autostart disabled"),
        ("--name", "list pool names only"),
        ("--uuid", "list pool uuids only"),
    ]:
        p.add_argument(flag, action="store_true", help=what)
    p.add_argument("--type", help="only pools of these types (comma separated)")


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        if name not in _DEFINING:
            ensure_default(ctx)
        rc = _HANDLERS[name](ctx, args)
        if name in _DEFINING and not getattr(args, "print_xml", False):
            ensure_default(ctx)  # after: a pool the user just named 'default' is the default
        return rc


def ensure_default(ctx: Context) -> None:
    """Set up the default pool once; a failure is a warning, not the command's failure."""
    try:
        made = pools.ensure_default_pool(ctx)
    except VmkitError as e:
        sys.stderr.write(f"warning: cannot set up the default pool: {e}\n")
        return
    if made is not None and sys.stderr.isatty():
        sys.stderr.write(f"Pool {made.name} created at {made.pool.target_path}\n")


def _say(args: argparse.Namespace, text: str, data: dict[str, Any]) -> int:
    emit_json(data) if args.json else emit(text + "\n\n")
    return 0


def _summary(entry: pools.PoolEntry) -> dict[str, Any]:
    row = pools.row_of(entry)
    return {
        "name": entry.name,
        "uuid": entry.uuid,
        "type": str(entry.pool.type),
        "path": entry.pool.target_path,
        "state": str(row.state),
        "active": row.active,
        "persistent": row.persistent,
        "autostart": row.autostart,
        "capacity": row.capacity,
        "allocation": row.allocation,
        "available": row.available,
    }


# ---------------------------------------------------------------------------------------------
# define, create


def _read_file(path: str) -> tuple[bytes, str]:
    from vmkit.cli.domain_cmds import read_xml_arg

    return read_xml_arg(path)


def _define(ctx: Context, args: argparse.Namespace) -> int:
    data, source = _read_file(args.file)
    entry = pools.define_pool(ctx, pools.parse_pool_xml(data, source))
    return _say(args, f"Pool {entry.name} defined from {source}", _summary(entry))


def _create(ctx: Context, args: argparse.Namespace) -> int:
    data, source = _read_file(args.file)
    pool = pools.parse_pool_xml(data, source, verb="create")
    entry = pools.create_pool(ctx, pool, build=args.build, overwrite=_overwrite(args))
    return _say(args, f"Pool {entry.name} created from {source}", _summary(entry))


def _pool_from_args(args: argparse.Namespace) -> Pool:
    def pick(option: str | None, positional: str | None) -> str | None:
        value = option if option is not None else positional
        return None if value in (None, "", "-") else value

    for what in ("source_host", "source_path", "source_name"):
        if pick(getattr(args, what), getattr(args, f"pos_{what}")) is not None:
            flag = "--" + what.replace("_", "-")
            raise InvalidConfig(f"{flag} is not used by {args.type} pools", value=what)
    target = pick(args.target, args.pos_target)
    return pools.pool_from_args(
        args.name,
        args.type,
        os.path.abspath(target) if target else None,
        source_dev=pick(args.source_dev, args.pos_source_dev),
        source_format=args.source_format,
    )


def _define_as(ctx: Context, args: argparse.Namespace) -> int:
    pool = _pool_from_args(args)
    if args.print_xml:
        from vmkit.xml.storage import render_pool

        emit_json({"xml": render_pool(pool)}) if args.json else emit(render_pool(pool))
        return 0
    if args.command == "pool-create-as":
        entry = pools.create_pool(ctx, pool, build=args.build, overwrite=_overwrite(args))
        return _say(args, f"Pool {entry.name} created", _summary(entry))
    entry = pools.define_pool(ctx, pool)
    return _say(args, f"Pool {entry.name} defined", _summary(entry))


# ---------------------------------------------------------------------------------------------
# lifecycle


def _overwrite(args: argparse.Namespace) -> bool | None:
    """--overwrite: True, --no-overwrite: False, neither: None (as virsh; both: an error)."""
    if args.overwrite and args.no_overwrite:
        raise InvalidConfig("--overwrite and --no-overwrite are mutually exclusive")
    if args.overwrite:
        return True
    return False if args.no_overwrite else None


def _build(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.build(ctx, args.pool, overwrite=_overwrite(args))
    return _say(args, f"Pool {entry.name} built", {"name": entry.name, "built": True})


def _start(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.start(ctx, args.pool, build=args.build, overwrite=_overwrite(args))
    return _say(args, f"Pool {entry.name} started", _summary(entry))


def _destroy(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.destroy(ctx, args.pool)
    data = {"name": entry.name, "uuid": entry.uuid, "destroyed": True}
    return _say(args, f"Pool {entry.name} destroyed", data)


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.delete(ctx, args.pool)
    data = {"name": entry.name, "uuid": entry.uuid, "deleted": entry.pool.target_path}
    return _say(args, f"Pool {entry.name} deleted", data)


def _undefine(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.undefine(ctx, args.pool)
    data = {"name": entry.name, "uuid": entry.uuid, "transient": entry.active}
    return _say(args, f"Pool {entry.name} has been undefined", data)


def _refresh(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.lookup_pool(ctx, args.pool)
    result = pools.refresh(ctx, entry.uuid)
    data = {
        "name": entry.name,
        "volumes": [v.name for v in result.volumes],
        "skipped": [{"name": n, "reason": r} for n, r in result.skipped],
    }
    return _say(args, f"Pool {entry.name} refreshed", data)


def _autostart(ctx: Context, args: argparse.Namespace) -> int:
    d = pools.set_autostart(ctx, args.pool, not args.disable)
    verb = "unmarked" if args.disable else "marked"
    data = {"name": d.name, "autostart": d.autostart}
    return _say(args, f"Pool {d.name} {verb} as autostarted", data)


# ---------------------------------------------------------------------------------------------
# queries


def _wanted(entry: pools.PoolEntry, a: argparse.Namespace) -> bool:
    active = entry.active
    if a.inactive and not a.all and active:
        return False
    if not (a.all or a.inactive) and not active:
        return False
    d = entry.definition
    if (a.transient and d.persistent) or (a.persistent and not d.persistent):
        return False
    if (a.autostart and not d.autostart) or (a.no_autostart and d.autostart):
        return False
    return not (a.type and str(entry.pool.type) not in a.type.split(","))


def _list(ctx: Context, args: argparse.Namespace) -> int:
    entries = [e for e in pools.all_pools(ctx) if _wanted(e, args)]
    entries.sort(key=lambda e: e.name.lower())
    if args.json:
        emit_json([_summary(e) for e in entries])
    elif args.name or args.uuid:
        emit("".join(f"{e.name if args.name else e.uuid}\n" for e in entries) + "\n")
    else:
        emit(format_pool_list([pools.row_of(e) for e in entries], details=args.details))
    return 0


def _info(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.lookup_pool(ctx, args.pool)
    if args.json:
        emit_json(_summary(entry))
    else:
        emit(format_pool_info(pools.row_of(entry), in_bytes=args.bytes))
    return 0


def _dumpxml(ctx: Context, args: argparse.Namespace) -> int:
    xml = pools.dumpxml(ctx, args.pool, inactive=args.inactive)
    emit_json({"xml": xml}) if args.json else emit(xml)
    return 0


def _uuid(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.lookup_pool(ctx, args.pool)
    return _say(args, entry.uuid, {"name": entry.name, "uuid": entry.uuid})


def _name(ctx: Context, args: argparse.Namespace) -> int:
    entry = pools.lookup_pool(ctx, args.pool)
    return _say(args, entry.name, {"name": entry.name, "uuid": entry.uuid})


_HANDLERS: dict[str, Handler] = {
    "pool-define": _define,
    "pool-define-as": _define_as,
    "pool-create": _create,
    "pool-create-as": _define_as,
    "pool-build": _build,
    "pool-start": _start,
    "pool-destroy": _destroy,
    "pool-delete": _delete,
    "pool-undefine": _undefine,
    "pool-list": _list,
    "pool-info": _info,
    "pool-refresh": _refresh,
    "pool-autostart": _autostart,
    "pool-dumpxml": _dumpxml,
    "pool-uuid": _uuid,
    "pool-name": _name,
}
