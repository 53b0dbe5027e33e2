"""CLI for domain definitions and monitoring: define, undefine, list, dominfo, domstate, domid,
domuuid, domname, dumpxml, edit, autostart, setmem, setmaxmem, setvcpus.

Text output follows virsh's layouts; `--json` prints the same facts as JSON.
"""

from __future__ import annotations

import sys

from vmkit.cli.output import emit, emit_json, fields, table
from vmkit.cli.registry import FastSpec
from vmkit.engine import domains
from vmkit.engine.context import Context
from vmkit.engine.states import is_active
from vmkit.errors import InvalidConfig

TYPE_CHECKING = False  # argparse (with re, gettext, locale) is not needed by the fast path
if TYPE_CHECKING:
    import argparse

# `list` and `dominfo` must start fast: the model, typing, json and the QEMU process machinery are
# imported only by the handlers that need them (tests/unit/cli/test_startup_imports.py).


_LIST_FLAGS = {
    "--all": "list inactive & active domains",
    "--inactive": "list inactive domains",
    "--name": "list domain names only",
    "--uuid": "list uuid's only",
    "--title": "show domain title",
    "--state-running": "list domains in running state",
    "--state-paused": "list domains in paused state",
    "--state-shutoff": "list domains in shutoff state",
    "--autostart": "list domains with autostart enabled",
    "--no-autostart": "list domains with autostart disabled",
    "--transient": "list transient domains",
    "--persistent": "list persistent domains",
}
_FAST_FLAGS: dict[str, dict[str, str]] = {
    "list": _LIST_FLAGS,
    "dominfo": {},
    "domstate": {"--reason": "also print reason for the state"},
    "dumpxml": {
        "--inactive": "show inactive defined XML",
        "--security-info": "accepted for virsh habits",
    },
}
# Commands whose arguments are only boolean flags and positionals: cli.main parses a plain
# command line of theirs without argparse (which costs ~4 ms of start-up); anything else
# (--help, an unknown or abbreviated option, a missing argument) goes through argparse.
FAST_ARGS: dict[str, FastSpec] = {
    name: (tuple(flags), () if name == "list" else ("domain",), {})
    for name, flags in _FAST_FLAGS.items()
}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "define":
        p.add_argument("file", help="domain XML file ('-' for stdin)")
        p.add_argument("--validate", action="store_true", help="accepted; vmkit always validates")
    elif name == "undefine":
        p.add_argument("domain", help="domain name, id or uuid")
        p.add_argument("--managed-save", action="store_true", help="remove the managed save")
        p.add_argument(
            "--snapshots-metadata", action="store_true", help="remove all snapshot metadata"
        )
        p.add_argument("--nvram", action="store_true", help="accepted for virsh habits")
    elif name in FAST_ARGS:
        flags, positionals, _ = FAST_ARGS[name]
        for dest in positionals:
            p.add_argument(dest, help="domain name, id or uuid")
        for flag in flags:
            p.add_argument(flag, action="store_true", help=_FAST_FLAGS[name][flag])
    elif name == "autostart":
        p.add_argument("domain")
        p.add_argument("--disable", action="store_true", help="disable autostarting")
    elif name in ("setmem", "setmaxmem"):
        p.add_argument("domain")
        p.add_argument("size", help="new memory size, KiB by default (units: K, M, G, KiB, MiB)")
        _config_flags(p)
    elif name == "setvcpus":
        p.add_argument("domain")
        p.add_argument("count", type=int, help="number of virtual CPUs")
        p.add_argument("--maximum", action="store_true", help="set the maximum limit")
        _config_flags(p)
    else:
        p.add_argument("domain", help="domain name, id or uuid")


def _config_flags(p: argparse.ArgumentParser) -> None:
    for flag in ("--config", "--live", "--current"):
        p.add_argument(flag, action="store_true", help="vmkit changes the next boot's config")


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        handler = _HANDLERS[name]
        return handler(ctx, args)


def read_xml_arg(path: str) -> tuple[bytes, str]:
    """XML bytes of a file argument ('-' is stdin), with the name to use in messages."""
    if path == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    from pathlib import Path

    try:
        return Path(path).read_bytes(), path
    except OSError as exc:
        raise InvalidConfig(f"cannot read XML file '{path}': {exc.strerror}") from exc


def _define(ctx: Context, args: argparse.Namespace) -> int:
    data, source = read_xml_arg(args.file)
    d = domains.define(ctx, data, source)
    if args.json:
        emit_json({"name": d.name, "uuid": d.uuid, "defined": True})
    else:
        emit(f"Domain '{d.name}' defined from {source}\n\n")
    return 0


def _undefine(ctx: Context, args: argparse.Namespace) -> int:
    entry = domains.lookup(ctx, args.domain)
    gone = domains.undefine(
        ctx,
        args.domain,
        managed_save=args.managed_save,
        snapshots_metadata=args.snapshots_metadata,
    )
    if args.json:
        emit_json({"name": entry.name, "uuid": entry.uuid, "transient": not gone})
    else:
        emit(f"Domain '{entry.name}' has been undefined\n\n")
    return 0


def _wanted(row: domains.DomainRow, a: argparse.Namespace) -> bool:
    active = row.id is not None
    if a.inactive and active:
        return False
    if not (a.all or a.inactive or a.state_shutoff) and not active:
        return False
    states = []
    if a.state_running:
        states.append("running")
    if a.state_paused:
        states.append("paused")
    if a.state_shutoff:
        states.append("shut off")
    if states and row.state not in states:
        return False
    if (a.autostart and not row.autostart) or (a.no_autostart and row.autostart):
        return False
    return not ((a.transient and row.persistent) or (a.persistent and not row.persistent))


def _list(ctx: Context, args: argparse.Namespace) -> int:
    rows = [r for r in domains.list_domains(ctx) if _wanted(r, args)]
    rows.sort(key=lambda r: (r.id is None, r.id or 0, r.name))
    if args.json:
        emit_json([r.as_dict() for r in rows])
    elif args.name or args.uuid:
        emit("".join(f"{r.name if args.name else r.uuid}\n" for r in rows) + "\n")
    else:
        headers = ["Id", "Name", "State"] + (["Title"] if args.title else [])
        cells = [
            ["-" if r.id is None else r.id, r.name, r.state] + ([r.title] if args.title else [])
            for r in rows
        ]
        emit(table(headers, cells) + "\n")
    return 0


def _dominfo(ctx: Context, args: argparse.Namespace) -> int:
    i = domains.dominfo(ctx, args.domain)
    if args.json:
        emit_json(i.as_dict())
        return 0
    pairs: list[tuple[str, object]] = [
        ("Id", "-" if i.id is None else i.id),
        ("Name", i.name),
        ("UUID", i.uuid),
        ("OS Type", i.os_type),
        ("State", i.state),
        ("CPU(s)", i.cpus),
    ]
    if i.cpu_time is not None:
        pairs.append(("CPU time", f"{i.cpu_time:.1f}s"))
    pairs += [
        ("Max memory", f"{i.max_memory_kib} KiB"),
        ("Used memory", f"{i.used_memory_kib} KiB"),
        ("Persistent", "yes" if i.persistent else "no"),
        ("Autostart", "enable" if i.autostart else "disable"),
        ("Managed save", "yes" if i.managed_save else "no"),
        ("Security model", "none"),
        ("Security DOI", "0"),
    ]
    emit(fields(pairs) + "\n")
    return 0


def _domstate(ctx: Context, args: argparse.Namespace) -> int:
    entry = domains.lookup(ctx, args.domain)
    state, reason = domains.state_of(ctx, entry)
    if args.json:
        emit_json({"name": entry.name, "state": state, "reason": reason})
    else:
        emit(f"{state} ({reason})\n\n" if args.reason else f"{state}\n\n")
    return 0


def _domid(ctx: Context, args: argparse.Namespace) -> int:
    entry = domains.lookup(ctx, args.domain)
    did = entry.domain_id if is_active(entry) else None
    if args.json:
        emit_json({"name": entry.name, "id": did})
    else:
        emit(f"{'-' if did is None else did}\n\n")
    return 0


def _domuuid(ctx: Context, args: argparse.Namespace) -> int:
    entry = domains.lookup(ctx, args.domain)
    emit_json({"name": entry.name, "uuid": entry.uuid}) if args.json else emit(f"{entry.uuid}\n\n")
    return 0


def _domname(ctx: Context, args: argparse.Namespace) -> int:
    entry = domains.lookup(ctx, args.domain)
    emit_json({"name": entry.name, "uuid": entry.uuid}) if args.json else emit(f"{entry.name}\n\n")
    return 0


def _dumpxml(ctx: Context, args: argparse.Namespace) -> int:
    xml = domains.dumpxml(ctx, args.domain, inactive=args.inactive)
    emit_json({"xml": xml}) if args.json else emit(xml if xml.endswith("\n") else xml + "\n")
    return 0


def _edit(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.cli.editing import edit_in_editor

    entry = domains.lookup(ctx, args.domain)
    new_xml = edit_in_editor(entry.name, entry.definition.xml, prefix="vmkit-edit-")
    result = domains.edit_xml(ctx, entry.uuid, new_xml)
    if result is None:
        msg = f"Domain '{entry.name}' XML configuration not changed.\n\n"
    else:
        msg = f"Domain '{result.name}' XML configuration edited.\n\n"
    emit_json({"name": entry.name, "changed": result is not None}) if args.json else emit(msg)
    return 0


def _autostart(ctx: Context, args: argparse.Namespace) -> int:
    d = domains.set_autostart(ctx, args.domain, not args.disable)
    verb = "unmarked" if args.disable else "marked"
    if args.json:
        emit_json({"name": d.name, "autostart": d.autostart})
    else:
        emit(f"Domain '{d.name}' {verb} as autostarted\n\n")
    return 0


def _setmem(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.model.units import parse_size

    kib = parse_size(args.size, default_unit="KiB") // 1024
    d = domains.set_memory(ctx, args.domain, kib, maximum=args.command == "setmaxmem")
    if args.json:
        emit_json({"name": d.name, "memory_kib": kib, "applies": "next boot"})
    return 0


def _setvcpus(ctx: Context, args: argparse.Namespace) -> int:
    d = domains.set_vcpus(ctx, args.domain, args.count, maximum=args.maximum)
    if args.json:
        emit_json({"name": d.name, "vcpus": args.count, "applies": "next boot"})
    return 0


_HANDLERS = {
    "define": _define,
    "undefine": _undefine,
    "list": _list,
    "dominfo": _dominfo,
    "domstate": _domstate,
    "domid": _domid,
    "domuuid": _domuuid,
    "domname": _domname,
    "dumpxml": _dumpxml,
    "edit": _edit,
    "autostart": _autostart,
    "setmem": _setmem,
    "setmaxmem": _setmem,
    "setvcpus": _setvcpus,
}
