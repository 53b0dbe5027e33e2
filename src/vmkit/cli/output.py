"""Text output in virsh's layouts (tables, `Key:   value` blocks) and JSON for `--json`."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing and json are imported only when needed: start-up cost
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """virsh's table: one leading space, columns padded and 3 spaces apart, a dash rule."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [_line(headers, widths)]
    lines.append("-" * (sum(widths) + 3 * (len(widths) - 1) + 3))
    lines += [_line(row, widths) for row in cells]
    return "\n".join(lines) + "\n"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return (" " + "   ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()


def fields(pairs: Sequence[tuple[str, object]], width: int = 15) -> str:
    """virsh's `Key:    value` block (dominfo uses 15, nodeinfo 20)."""
    return "".join(f"{(k + ':').ljust(width)} {v}".rstrip() + "\n" for k, v in pairs)


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def emit_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
