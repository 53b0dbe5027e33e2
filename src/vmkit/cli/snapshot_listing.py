"""snapshot-list's part of the CLI: which snapshots a set of options shows (virsh's filters
and its refusals of options that exclude each other), and virsh's table and --tree layouts."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from vmkit.errors import InvalidConfig
from vmkit.model.snapshot import DomainSnapshot

_LIST_EXCLUSIVE = [
    ("tree", "name"),
    ("parent", "roots"),
    ("parent", "tree"),
    ("roots", "tree"),
    ("roots", "from_"),
    ("roots", "current"),
]
_TREE_FILTERS = ("leaves", "no_leaves", "inactive", "active", "disk_only", "internal", "external")


def _flag(dest: str) -> str:
    return "--" + dest.rstrip("_").replace("_", "-")


def check_list_args(args: argparse.Namespace) -> None:
    """Refuse what virsh refuses: options that exclude each other, filters with --tree."""
    for one, other in _LIST_EXCLUSIVE:
        if getattr(args, one) and getattr(args, other):
            raise InvalidConfig(f"Options {_flag(one)} and {_flag(other)} are mutually exclusive")
    for dest in _TREE_FILTERS:
        if args.tree and getattr(args, dest):
            raise InvalidConfig(f"{_flag(dest)} and --tree are mutually exclusive")
    if args.descendants and not (args.from_ or args.current):
        raise InvalidConfig("--descendants requires either --from or --current")


def filtered(
    snaps: list[DomainSnapshot],
    by_name: dict[str, DomainSnapshot],
    args: argparse.Namespace,
    start: str | None,
) -> list[DomainSnapshot]:
    parents = {s.parent for s in snaps if s.parent in by_name}
    shown = list(snaps)
    if start is not None:
        wanted = _descendants(snaps, start) if args.descendants or args.tree else None
        shown = [
            s for s in shown if (s.name in wanted if wanted is not None else s.parent == start)
        ]
        if args.tree:
            shown = [by_name[start], *shown]
    if args.roots:
        shown = [s for s in shown if s.parent not in by_name]
    if args.leaves:
        shown = [s for s in shown if s.name not in parents]
    if args.no_leaves:
        shown = [s for s in shown if s.name in parents]
    if args.internal:
        shown = [s for s in shown if not s.is_external]
    if args.external:
        shown = [s for s in shown if s.is_external]
    if args.disk_only:
        shown = [s for s in shown if str(s.state) == "disk-snapshot"]
    if args.active:
        shown = [s for s in shown if str(s.state) in ("running", "paused", "blocked")]
    if args.inactive:
        shown = [s for s in shown if str(s.state) == "shutoff"]
    return shown


def _descendants(snaps: list[DomainSnapshot], name: str) -> set[str | None]:
    found: set[str | None] = set()
    frontier = {name}
    while frontier:
        kids = {s.name for s in snaps if s.parent in frontier and s.name not in found}
        found |= kids
        frontier = {k for k in kids if k is not None}
    return found


def table(snaps: Sequence[DomainSnapshot], *, parent: bool) -> str:
    """virsh's snapshot-list table: every column but the last padded, 3 spaces apart."""
    headers = ["Name", "Creation Time", "State"] + (["Parent"] if parent else [])
    rows = [
        [s.name or "", _when(s.creation_time), str(s.state or "")]
        + ([s.parent or ""] if parent else [])
        for s in snaps
    ]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)]
        return " " + "   ".join([*padded, cells[-1]])

    rule = "-" * (sum(widths) + 3 * (len(widths) - 1) + 3)
    return "\n".join([line(headers), rule] + [line(r) for r in rows]) + "\n"


def _when(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(seconds))


def tree(snaps: Sequence[DomainSnapshot], root: str | None) -> str:
    """virsh's --tree: '+- ' before each child, '|' while a parent has more children below."""
    names = {s.name for s in snaps}
    kids: dict[str | None, list[str]] = {}
    for s in sorted(snaps, key=lambda s: s.name or ""):
        up = s.parent if s.parent in names and s.name != root else None
        kids.setdefault(up, []).append(s.name or "")
    lines: list[str] = []
    for top in kids.get(None, []):
        _tree_node(kids, top, top, True, "", lines)
    return "".join(line + "\n" for line in lines)


def _tree_node(
    kids: dict[str | None, list[str]],
    name: str,
    last: str,
    root: bool,
    indent: str,
    lines: list[str],
) -> None:
    lines.append(f"{indent}{'' if root else '+- '}{name}")
    if not root:
        indent += (" " if name == last else "|") + " "
    children = kids.get(name, [])
    if children:
        lines.append(f"{indent}  |")
    for child in children:
        _tree_node(kids, child, children[-1], False, indent + "  ", lines)
    if not children and name == last:
        lines.append(indent)
