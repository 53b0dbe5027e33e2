"""CLI for `vmkit guest build`: make the tiny test guest and print where it is."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vmkit.cli.output import emit, emit_json
from vmkit.engine.context import Context


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build"], help="what to do")
    p.add_argument("--output", type=Path, help="directory for kernel and initramfs")
    p.add_argument("--force", action="store_true", help="rebuild even when cached")


def run(name: str, args: argparse.Namespace) -> int:
    from vmkit.engine.guest import build_tiny_guest

    def progress(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    with Context.open() as ctx:
        image = build_tiny_guest(ctx, args.output, force=args.force, progress=progress)
    if args.json:
        emit_json(
            {
                "kernel": str(image.kernel),
                "initramfs": str(image.initramfs),
                "kernel_version": image.kernel_version,
                "cmdline": image.cmdline,
            }
        )
    else:
        emit(
            f"kernel:    {image.kernel}\ninitramfs: {image.initramfs}\ncmdline:   {image.cmdline}\n"
        )
    return 0
