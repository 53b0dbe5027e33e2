"""Text of pool-list, pool-info, vol-list and vol-info in virsh's exact layout.

Each function returns what virsh writes to stdout, ending with virsh's blank line; tables are
laid out like virsh's vshTable (one leading space, columns padded to their widest cell and
three spaces apart, a dash rule as wide as the columns plus three per column). Rows are sorted
by name, case-insensitively, as virsh does. Pure; sizes come in as arguments.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from vmkit.model.storage import PoolState, Volume, format_size


@dataclass(frozen=True)
class PoolRow:
    """What pool-list and pool-info show of one pool besides its definition."""

    name: str
    state: PoolState
    autostart: bool
    persistent: bool = True
    uuid: str | None = None
    capacity: int | None = None
    allocation: int | None = None
    available: int | None = None

    @property
    def active(self) -> bool:
        return self.state is not PoolState.INACTIVE


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """virsh's table: header, dash rule, rows, then a blank line."""
    widths = [_width(h) for h in headers]
    for row in rows:
        widths = [max(w, _width(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (w - _width(c)) for c, w in zip(cells[:-1], widths, strict=False)]
        return " " + "   ".join([*padded, cells[-1]])

    out = [line(headers), "-" * (sum(widths) + 3 * len(widths))]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n\n"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _sorted(rows: Sequence[PoolRow]) -> list[PoolRow]:
    return sorted(rows, key=lambda r: r.name.lower())


def format_pool_list(rows: Sequence[PoolRow], *, details: bool = False) -> str:
    """pool-list (the caller picks the rows: active only, --all, --inactive); --details adds
    persistence and sizes ('-' for an inactive pool)."""
    if not details:
        return format_table(
            ["Name", "State", "Autostart"],
            [
                [r.name, "active" if r.active else "inactive", _yes_no(r.autostart)]
                for r in _sorted(rows)
            ],
        )
    table = []
    for r in _sorted(rows):
        sizes = [r.capacity, r.allocation, r.available]
        shown = [format_size(s) if r.active and s is not None else "-" for s in sizes]
        table.append([r.name, str(r.state), _yes_no(r.autostart), _yes_no(r.persistent), *shown])
    return format_table(
        ["Name", "State", "Autostart", "Persistent", "Capacity", "Allocation", "Available"], table
    )


def _info(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{k + ':':<16}{v}\n" for k, v in pairs) + "\n"


def format_pool_info(row: PoolRow, *, in_bytes: bool = False) -> str:
    """pool-info; sizes only for a running (or degraded) pool, as virsh prints them."""
    pairs = [("Name", row.name)]
    if row.uuid:
        pairs.append(("UUID", row.uuid))
    pairs += [
        ("State", str(row.state)),
        ("Persistent", _yes_no(row.persistent)),
        ("Autostart", _yes_no(row.autostart)),
    ]
    if row.state in (PoolState.RUNNING, PoolState.DEGRADED):
        for label, size in (
            ("Capacity", row.capacity),
            ("Allocation", row.allocation),
            ("Available", row.available),
        ):
            value = size or 0
            pairs.append((label, str(value) if in_bytes else format_size(value)))
    return _info(pairs)


def format_vol_list(vols: Sequence[Volume], *, details: bool = False) -> str:
    """vol-list of one pool; --details adds type, capacity and allocation."""
    ordered = sorted(vols, key=lambda v: v.name.lower())
    if not details:
        return format_table(["Name", "Path"], [[v.name, v.target_path or ""] for v in ordered])
    return format_table(
        ["Name", "Path", "Type", "Capacity", "Allocation"],
        [
            [
                v.name,
                v.target_path or "",
                str(v.type or "file"),
                format_size(v.capacity or 0),
                format_size(v.allocation or 0),
            ]
            for v in ordered
        ],
    )


def format_vol_info(vol: Volume, *, in_bytes: bool = False) -> str:
    """vol-info: name, type, capacity, allocation ('N bytes' with --bytes)."""

    def size(n: int | None) -> str:
        return f"{n or 0} bytes" if in_bytes else format_size(n or 0)

    return _info(
        [
            ("Name", vol.name),
            ("Type", str(vol.type or "file")),
            ("Capacity", size(vol.capacity)),
            ("Allocation", size(vol.allocation)),
        ]
    )
