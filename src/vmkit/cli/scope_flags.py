"""libvirt's scope options of the device commands (attach-disk, attach-interface, ...):
`--persistent`, `--config`, `--live`, `--current`, and the engine's `Flags` made from them.

Must not: decide what they mean (vmkit.engine.hotplug.resolve_scope does).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmkit.engine.hotplug import Flags


def add_scope_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--persistent", action="store_true", help="make live change persistent")
    p.add_argument("--config", action="store_true", help="affect next boot")
    p.add_argument("--live", action="store_true", help="affect running domain")
    p.add_argument("--current", action="store_true", help="affect current domain")


def scope_flags(args: argparse.Namespace) -> Flags:
    """The flags as given (a command without --persistent, such as change-media, gives False)."""
    from vmkit.engine.hotplug import Flags

    return Flags(
        live=args.live,
        config=args.config,
        persistent=getattr(args, "persistent", False),
        current=args.current,
    )
