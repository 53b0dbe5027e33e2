"""CLI for XML checks and translation: `validate FILE` and `domxml-to-native qemu-argv FILE`."""

from __future__ import annotations

import argparse

from vmkit.cli.domain_cmds import read_xml_arg
from vmkit.cli.output import emit, emit_json
from vmkit.engine.context import Context


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "domxml-to-native":
        p.add_argument("format", choices=["qemu-argv"], help="target format")
        p.add_argument("file", help="domain XML file ('-' for stdin)")
    else:
        p.add_argument("file", help="domain XML file ('-' for stdin)")


def run(name: str, args: argparse.Namespace) -> int:
    from vmkit.engine import native

    data, source = read_xml_arg(args.file)
    with Context.open() as ctx:
        if name == "validate":
            native.validate_xml(ctx, data, source)
            emit_json({"file": source, "valid": True}) if args.json else emit(
                f"{source} validates\n"
            )
            return 0
        argv = native.to_native_argv(ctx, data, source)
    if args.json:
        emit_json({"argv": argv})
    else:
        import shlex

        emit(shlex.join(argv) + "\n")
    return 0
