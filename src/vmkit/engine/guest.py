"""The tiny guest as an engine operation: where it goes by default and how it is (re)built."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vmkit.engine.context import Context
from vmkit.guest import GuestImage, build_guest


def build_tiny_guest(
    ctx: Context,
    output: Path | None = None,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> GuestImage:
    """Build (or reuse the cached) kernel + initramfs under `output` or vmkit's cache dir."""
    ctx.paths.ensure()
    return build_guest(output or ctx.paths.guest_dir, force=force, progress=progress)
