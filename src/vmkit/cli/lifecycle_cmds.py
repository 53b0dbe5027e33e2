"""CLI for running domains: create, start, shutdown, reboot, reset, destroy, suspend, resume,
console, start-autostart. Messages follow virsh's words."""

from __future__ import annotations

import sys

from vmkit.cli.domain_cmds import read_xml_arg
from vmkit.cli.output import emit, emit_json
from vmkit.cli.registry import FastSpec
from vmkit.engine import domains, lifecycle
from vmkit.engine.context import Context

TYPE_CHECKING = False  # argparse (with re, gettext, locale: ~4 ms) only for unusual lines
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    Handler = Callable[[Context, argparse.Namespace], int]
    Action = Callable[[Context, argparse.Namespace], object]

_TIMEOUT: dict[str, object] = {"timeout": 60.0, "mode": "acpi"}
# A plain line of these is parsed without argparse (cli.main); options with a value
# (--timeout, --mode) and anything else go through argparse.
FAST_ARGS: dict[str, FastSpec] = {
    "start": (("--paused", "--console"), ("domain",), {}),
    "shutdown": (("--wait",), ("domain",), _TIMEOUT),
    "reboot": ((), ("domain",), _TIMEOUT),
    "reset": ((), ("domain",), {}),
    "destroy": (("--graceful",), ("domain",), {}),
    "suspend": ((), ("domain",), {}),
    "resume": ((), ("domain",), {}),
}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "create":
        p.add_argument("file", help="domain XML file ('-' for stdin)")
        p.add_argument("--paused", action="store_true", help="leave the guest paused")
        p.add_argument("--console", action="store_true", help="attach to console after creation")
        p.add_argument("--validate", action="store_true", help="accepted; vmkit always validates")
        return
    if name == "start-autostart":
        return
    p.add_argument("domain", help="domain name, id or uuid")
    if name == "start":
        p.add_argument("--paused", action="store_true", help="leave the guest paused")
        p.add_argument("--console", action="store_true", help="attach to console after start")
    elif name == "shutdown":
        p.add_argument("--wait", action="store_true", help="wait until the domain is shut off")
        p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
        p.add_argument("--mode", choices=["acpi"], default="acpi", help="how to shut down")
    elif name == "reboot":
        p.add_argument("--timeout", type=float, default=60.0, help="seconds for the guest")
        p.add_argument("--mode", choices=["acpi"], default="acpi", help="how to reboot")
    elif name == "destroy":
        p.add_argument("--graceful", action="store_true", help="terminate gracefully (no SIGKILL)")
    elif name == "console":
        p.add_argument("--force", action="store_true", help="take over an attached console")
        p.add_argument("--history", action="store_true", help="print what the guest printed")
        p.add_argument("--safe", action="store_true", help="accepted for virsh habits")


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        return _HANDLERS[name](ctx, args)


def _say(args: argparse.Namespace, name: str, text: str, **extra: object) -> None:
    if args.json:
        emit_json({"name": name, **extra})
    else:
        emit(text + "\n\n")


def _create(ctx: Context, args: argparse.Namespace) -> int:
    data, source = read_xml_arg(args.file)
    entry = lifecycle.create(ctx, data, source, paused=args.paused)
    _say(args, entry.name, f"Domain '{entry.name}' created from {source}", id=entry.domain_id)
    return _console(ctx, entry.uuid, False) if args.console else 0


def _start(ctx: Context, args: argparse.Namespace) -> int:
    entry = lifecycle.start(ctx, args.domain, paused=args.paused)
    _say(args, entry.name, f"Domain '{entry.name}' started", id=entry.domain_id)
    return _console(ctx, entry.uuid, False) if args.console else 0


def _console(ctx: Context, key: str, force: bool) -> int:
    if sys.stdin.isatty():
        name = domains.lookup(ctx, key).name
        sys.stderr.write(f"Connected to domain '{name}'\nEscape character is ^] (Ctrl + ])\n")
        sys.stderr.flush()
    lifecycle.attach_console(ctx, key, force=force)
    if sys.stdin.isatty():
        sys.stderr.write("\n")
    return 0


def _console_cmd(ctx: Context, args: argparse.Namespace) -> int:
    if args.history:
        data = lifecycle.console_history(ctx, args.domain)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    return _console(ctx, args.domain, args.force)


def _shutdown(ctx: Context, args: argparse.Namespace) -> int:
    name = domains.locked_lookup(ctx, args.domain).name
    reason = lifecycle.shutdown(ctx, args.domain, wait=args.wait, timeout=args.timeout)
    if args.wait:
        _say(args, name, f"Domain '{name}' is shut off ({reason})", reason=reason)
    else:
        _say(args, name, f"Domain '{name}' is being shutdown")
    return 0


def _simple(action: Action, text: str) -> Handler:
    """A command that acts on one domain and says so in virsh's words."""

    def handler(ctx: Context, args: argparse.Namespace) -> int:
        name = domains.locked_lookup(ctx, args.domain).name  # no reconcile: the action does it
        action(ctx, args)
        _say(args, name, text.format(name=name))
        return 0

    return handler


def _start_autostart(ctx: Context, args: argparse.Namespace) -> int:
    results = lifecycle.start_autostart(ctx)
    if args.json:
        emit_json([{"name": n, "error": e} for n, e in results])
    else:
        for n, e in results:
            emit(f"Domain '{n}' started\n" if e is None else f"Domain '{n}' failed: {e}\n")
    return 1 if any(e for _, e in results) else 0


_HANDLERS: dict[str, Handler] = {
    "create": _create,
    "start": _start,
    "console": _console_cmd,
    "shutdown": _shutdown,
    "reboot": _simple(
        lambda ctx, a: lifecycle.reboot(ctx, a.domain, timeout=a.timeout),
        "Domain '{name}' is being rebooted",
    ),
    "reset": _simple(lambda ctx, a: lifecycle.reset(ctx, a.domain), "Domain '{name}' was reset"),
    "destroy": _simple(
        lambda ctx, a: lifecycle.destroy(ctx, a.domain, graceful=a.graceful),
        "Domain '{name}' destroyed",
    ),
    "suspend": _simple(
        lambda ctx, a: lifecycle.suspend(ctx, a.domain), "Domain '{name}' suspended"
    ),
    "resume": _simple(lambda ctx, a: lifecycle.resume(ctx, a.domain), "Domain '{name}' resumed"),
    "start-autostart": _start_autostart,
}
