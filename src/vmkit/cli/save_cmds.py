"""CLI for save, restore, managedsave, managedsave-remove, save-image-dumpxml and clone.

Messages follow virsh's (and virt-clone's) words; `--json` prints the same facts as JSON.
"""

from __future__ import annotations

from contextlib import contextmanager

from vmkit.cli.output import emit, emit_json
from vmkit.cli.registry import FastSpec
from vmkit.engine.context import Context

TYPE_CHECKING = False  # argparse (with re, gettext, locale: ~4 ms) only for unusual lines
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

    from vmkit.engine.clone import Progress as DiskProgress
    from vmkit.storage.qemuimg import ProgressCallback

    Handler = Callable[[Context, argparse.Namespace], int]

_STATE: dict[str, object] = {"running": False, "paused": False}
_ACCEPTED = ("--bypass-cache", "--verbose")
# A plain line of these is parsed without argparse (cli.main); --running/--paused (mutually
# exclusive), --xml and anything else go through argparse.
FAST_ARGS: dict[str, FastSpec] = {
    "save": (_ACCEPTED, ("domain", "file"), _STATE),
    "restore": (_ACCEPTED, ("file",), {**_STATE, "xml": None}),
    "managedsave": (_ACCEPTED, ("domain",), _STATE),
    "managedsave-remove": ((), ("domain",), {}),
    "save-image-dumpxml": (("--security-info",), ("file",), {}),
}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "clone":
        _clone_arguments(p)
        return
    if name in ("save", "managedsave", "managedsave-remove"):
        p.add_argument("domain", help="domain name, id or uuid")
    if name in ("save", "restore", "save-image-dumpxml"):
        p.add_argument("file", help="the save image")
    if name in ("save", "restore", "managedsave"):
        state = p.add_mutually_exclusive_group()
        state.add_argument("--running", action="store_true", help="the guest runs after restore")
        state.add_argument("--paused", action="store_true", help="the guest stays paused")
        p.add_argument("--bypass-cache", action="store_true", help="accepted; ignored")
        p.add_argument("--verbose", action="store_true", help="accepted for virsh habits")
    if name == "restore":
        p.add_argument("--xml", metavar="FILE", help="domain XML to use instead of the saved one")
    if name == "save-image-dumpxml":
        p.add_argument("--security-info", action="store_true", help="accepted for virsh habits")


def _clone_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--original", required=True, help="name of the domain to clone")
    p.add_argument("-n", "--name", required=True, help="name of the new domain")
    p.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="PATH",
        help="new disk image, one per disk to clone, in the original's order",
    )
    p.add_argument(
        "--auto-clone", action="store_true", help="name new disk images after the new domain"
    )
    p.add_argument(
        "--linked",
        action="store_true",
        help="copy-on-write qcow2 overlays on the original's images instead of copies",
    )


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        return _HANDLERS[name](ctx, args)


def _wanted_state(args: argparse.Namespace) -> bool | None:
    if args.running:
        return True
    if args.paused:
        return False
    return None


def _say(args: argparse.Namespace, text: str, **facts: object) -> None:
    if args.json:
        emit_json(facts)
    else:
        emit(text + "\n\n")


def _save(ctx: Context, args: argparse.Namespace) -> int:
    from pathlib import Path

    from vmkit.engine import saves

    entry = saves.save(ctx, args.domain, args.file, running=_wanted_state(args))
    path = str(Path(args.file).absolute())
    _say(args, f"Domain '{entry.name}' saved to {args.file}", name=entry.name, file=path)
    return 0


def _restore(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.cli.domain_cmds import read_xml_arg
    from vmkit.engine import saves

    xml = read_xml_arg(args.xml)[0].decode() if args.xml else None
    entry = saves.restore(ctx, args.file, running=_wanted_state(args), xml=xml)
    state = entry.runtime.state if entry.runtime else ""
    _say(
        args, f"Domain restored from {args.file}", name=entry.name, id=entry.domain_id, state=state
    )
    return 0


def _managedsave(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import saves

    entry = saves.managed_save(ctx, args.domain, running=_wanted_state(args))
    path = str(saves.managed_save_file(ctx, entry.uuid))
    _say(args, f"Domain '{entry.name}' state saved by vmkit", name=entry.name, file=path)
    return 0


def _managedsave_remove(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import saves

    entry, removed = saves.managed_save_remove(ctx, args.domain)
    if removed:
        text = f"Removed managedsave image for domain '{entry.name}'"
    else:
        text = f"Domain '{entry.name}' has no manage save image; removal skipped"
    _say(args, text, name=entry.name, removed=removed)
    return 0


def _save_image_dumpxml(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import saves

    xml = saves.save_image_xml(args.file)
    emit_json({"xml": xml}) if args.json else emit(xml if xml.endswith("\n") else xml + "\n")
    return 0


def _clone(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.clone import clone_domain

    with _progress_bars(args) as progress:
        result = clone_domain(
            ctx,
            args.original,
            args.name,
            files=args.file,
            auto=args.auto_clone,
            linked=args.linked,
            progress=progress,
        )
    if args.json:
        emit_json(
            {
                "name": result.name,
                "uuid": result.uuid,
                "disks": [
                    {"target": d.target, "source": d.source, "file": d.file} for d in result.disks
                ],
                "linked": args.linked,
                "original_overlays": [
                    {"target": m.target, "base": m.source, "file": m.file}
                    for m in result.original_overlays
                ],
            }
        )
    else:
        for m in result.original_overlays:
            emit(
                f"Original '{args.original}' now writes disk {m.target} to {m.file}: "
                f"{m.source} is the linked clones' read-only base\n"
            )
        emit(f"\nClone '{result.name}' created successfully.\n")
    return 0


@contextmanager
def _progress_bars(args: argparse.Namespace) -> Iterator[DiskProgress | None]:
    """virt-clone's `Allocating 'FILE'` with a bar per new image, on stderr when it is a
    terminal (and the output is not JSON); nothing in scripts."""
    import sys

    if args.json or not sys.stderr.isatty():
        yield None
        return
    from vmkit.cli.vol_cmds import ProgressBar

    bars: list[ProgressBar] = []

    def start(file_name: str) -> ProgressCallback:
        if bars:
            bars[-1].close()
        bars.append(ProgressBar(f"Allocating '{file_name}'", sys.stderr))
        bars[-1](0.0)
        return bars[-1]

    try:
        yield start
    finally:
        if bars:
            bars[-1].close()


_HANDLERS: dict[str, Handler] = {
    "save": _save,
    "restore": _restore,
    "managedsave": _managedsave,
    "managedsave-remove": _managedsave_remove,
    "save-image-dumpxml": _save_image_dumpxml,
    "clone": _clone,
}
