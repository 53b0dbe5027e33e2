"""Untimed set-up helper: define or undefine many vmkit domains in one process.

    python -m bench.vmkit_bulk define FILE...     (VMKIT_ROOT from the environment)
    python -m bench.vmkit_bulk undefine NAME...

Only the preparation of the "list --all with 200 domains" row uses it (200 CLI calls would cost
~40 s). It calls vmkit's engine directly; if that API changes, it exits 2 and the bench falls
back to the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    try:
        from vmkit.engine import domains
        from vmkit.engine.context import Context
    except ImportError as exc:
        print(f"vmkit engine not importable: {exc}", file=sys.stderr)
        return 2
    verb, items = argv[0], argv[1:]
    with Context.open() as ctx:
        for item in items:
            if verb == "define":
                domains.define(ctx, Path(item).read_bytes(), item)
            elif verb == "undefine":
                domains.undefine(ctx, item)
            else:
                print(f"unknown verb {verb}", file=sys.stderr)
                return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
