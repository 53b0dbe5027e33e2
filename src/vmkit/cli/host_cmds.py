"""CLI for host facts: version, nodeinfo, capabilities, host-validate (virt-host-validate)."""

from __future__ import annotations

import argparse

from vmkit.cli.output import emit, emit_json
from vmkit.engine import host
from vmkit.engine.context import Context


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    return None


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        if name == "version":
            text = host.version(ctx)
            emit_json({"version": text}) if args.json else emit(text.rstrip("\n") + "\n\n")
        elif name == "nodeinfo":
            if args.json:
                emit_json(host.nodeinfo_data(ctx))
            else:
                emit(host.nodeinfo(ctx).rstrip("\n") + "\n\n")
        elif name == "capabilities":
            xml = host.capabilities(ctx)
            emit_json({"xml": xml}) if args.json else emit(xml.rstrip("\n") + "\n\n")
        else:
            if args.json:
                checks = host.host_checks(ctx)
                emit_json(checks)
                return 0 if all(c["result"] != "FAIL" for c in checks) else 1
            text, passed = host.host_validate(ctx)
            emit(text)
            return 0 if passed else 1
    return 0
