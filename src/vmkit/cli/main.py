"""The `vmkit` entry point: finds the command, imports only its module, runs it, maps errors.

Start-up must stay fast (`vmkit list` within ~25 ms of `python -c pass`): this module imports
nothing heavy, each command module imports the engine, lxml and QMP inside its handlers, and
a plain command line of the commands a module lists in FAST_ARGS is parsed without argparse.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import SimpleNamespace

from vmkit.cli.registry import COMMANDS, GROUPS, Command

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence


def _formatter() -> type[argparse.HelpFormatter]:
    import argparse

    class Formatter(argparse.HelpFormatter):
        """argparse's help formatter, sized without `shutil` (with bz2/lzma: ~3 ms)."""

        def __init__(
            self,
            prog: str,
            indent_increment: int = 2,
            max_help_position: int = 24,
            width: int | None = None,
        ) -> None:
            if width is None:
                width = _columns() - 2  # as argparse does
            super().__init__(prog, indent_increment, max_help_position, width)

    return Formatter


def _columns() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return 80


def _build_parser(only: str | None) -> argparse.ArgumentParser:
    import argparse

    formatter = _formatter()
    parser = argparse.ArgumentParser(
        prog="vmkit",
        formatter_class=formatter,
        description="KVM/QEMU virtualization manager with virsh's commands.",
        epilog="Run 'vmkit help' for the list of commands, 'vmkit COMMAND --help' for one.",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--version", action="store_true", help="print vmkit's version")
    parser.add_argument(
        "-c", "--connect", metavar="URI", help="accepted for virsh habits; only the local host"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(cmd.module)
        p = sub.add_parser(name, help=cmd.help, description=cmd.help, formatter_class=formatter)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
        module.add_arguments(name, p)
    return parser


def _fast_args(name: str | None, argv: Sequence[str]) -> SimpleNamespace | None:
    """The parsed arguments of a plain command line of a command its module lists in
    FAST_ARGS (boolean flags and positionals; other options take their defaults), as argparse
    would give them; None for anything else, which argparse then parses (and explains)."""
    if name is None:
        return None
    module = importlib.import_module(COMMANDS[name].module)
    spec = getattr(module, "FAST_ARGS", {}).get(name)
    if spec is None:
        return None
    flags, positionals, defaults = spec
    values: dict[str, object] = {"json": False, "version": False, "connect": None}
    values["command"] = name
    values.update(defaults)
    values.update((flag[2:].replace("-", "_"), False) for flag in flags)
    rest: list[str] = []
    for arg in argv:
        if arg == "--json":
            values["json"] = True
        elif arg in flags:
            values[arg[2:].replace("-", "_")] = True
        elif arg.startswith("-"):
            return None
        else:
            rest.append(arg)
    if rest[:1] != [name] or len(rest) != len(positionals) + 1:
        return None
    values.update(zip(positionals, rest[1:], strict=True))
    return SimpleNamespace(**values)


def _find_command(argv: Sequence[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("-c", "--connect"):
            skip = True
            continue
        if not arg.startswith("-"):
            return arg
    return None


def print_help() -> None:
    """virsh-like grouped list of commands."""
    for group, names in GROUPS.items():
        print(f" {group}")
        for name in names:
            print(f"    {name:<22} {COMMANDS[name].help}")
        print()


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    name = _find_command(args_in)
    if name == "help" or (name is None and not {"-h", "--help", "--version"} & set(args_in)):
        print_help()
        return 0
    if name is not None and name not in COMMANDS:
        print(f"error: unknown command: '{name}'", file=sys.stderr)
        return 1
    args = _fast_args(name, args_in) or _build_parser(name).parse_args(args_in)
    if args.version and name is None:
        from vmkit import __version__

        print(__version__)
        return 0
    if args.connect and args.connect not in ("qemu:///system", "qemu:///session", "vmkit:///"):
        print(f"error: unsupported connection URI '{args.connect}'", file=sys.stderr)
        return 1
    cmd: Command = COMMANDS[args.command]
    module = importlib.import_module(cmd.module)
    from vmkit.errors import VmkitError

    try:
        rc: int = module.run(args.command, args)
        return rc
    except VmkitError as exc:
        if getattr(args, "json", False):
            import json

            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _stdout_to_devnull()
        return 1


def _stdout_to_devnull() -> None:
    """The reader of stdout went away: what is left to print (and flush) goes nowhere."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def entry() -> None:
    """The `vmkit` console script: `main`, then an exit without the interpreter's tear-down.

    Tearing down ~150 imported modules costs a command ~4 ms after its work is done. Nothing
    is left for it: commands close the store and their files and join their threads before
    `main` returns, and vmkit registers no atexit handler; the output is flushed here.
    """
    try:
        rc = main()
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`vmkit help | head -1`): quietly 1
        _stdout_to_devnull()
        rc = 1
    try:
        sys.stderr.flush()
    finally:
        os._exit(rc)
