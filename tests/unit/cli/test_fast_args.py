"""The argparse-free parse of the commands listed in FAST_ARGS (list, dominfo, start, save,
restore, ...) gives exactly argparse's result, and leaves everything else (help, unknown or
abbreviated options, options with values, wrong counts) to argparse."""

from __future__ import annotations

import importlib

import pytest

from vmkit.cli.main import _build_parser, _fast_args, _find_command
from vmkit.cli.registry import COMMANDS


def _fast_specs() -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    specs = []
    for name, cmd in COMMANDS.items():
        spec = getattr(importlib.import_module(cmd.module), "FAST_ARGS", {}).get(name)
        if spec is not None:
            specs.append((name, spec[0], spec[1]))
    return specs


FAST = _fast_specs()


def test_the_common_commands_have_a_fast_parse() -> None:
    names = {name for name, _, _ in FAST}
    assert {"list", "dominfo", "start", "destroy", "save", "restore", "managedsave"} <= names


@pytest.mark.parametrize(("name", "flags", "positionals"), FAST, ids=[f[0] for f in FAST])
def test_every_fast_command_equals_argparse_bare_and_with_all_flags(
    name: str, flags: tuple[str, ...], positionals: tuple[str, ...]
) -> None:
    bare = [name, *(f"arg{i}" for i in range(len(positionals)))]
    for argv in (bare, [*bare, *flags], ["--json", name, *flags, *bare[1:]]):
        fast = _fast_args(name, argv)
        assert fast is not None, argv
        assert vars(fast) == vars(_build_parser(name).parse_args(argv)), argv


SAME = [
    ["list"],
    ["list", "--all"],
    ["list", "--all", "--name", "--json"],
    ["--json", "list", "--inactive", "--state-shutoff", "--no-autostart"],
    ["list", "--uuid", "--title", "--transient", "--persistent", "--autostart"],
    ["list", "--state-running", "--state-paused"],
    ["dominfo", "vm1"],
    ["dominfo", "--json", "vm1"],
    ["dominfo", "dominfo"],  # a domain named like the command
    ["domstate", "vm1", "--reason"],
    ["dumpxml", "--inactive", "vm1", "--security-info"],
    ["save", "vm1", "/tmp/vm1.save"],
    ["restore", "--bypass-cache", "/tmp/vm1.save"],
    ["shutdown", "vm1", "--wait"],
    ["start", "start", "--paused"],
]


@pytest.mark.parametrize("argv", SAME, ids=" ".join)
def test_fast_parse_equals_argparse(argv: list[str]) -> None:
    name = _find_command(argv)
    fast = _fast_args(name, argv)
    assert fast is not None
    assert vars(fast) == vars(_build_parser(name).parse_args(argv))


LEFT_TO_ARGPARSE = [
    ["list", "--al"],  # argparse accepts the abbreviation
    ["list", "-h"],
    ["list", "extra"],
    ["dominfo"],
    ["dominfo", "a", "b"],
    ["dominfo", "--", "-odd"],
    ["domstate", "vm1", "--reason=yes"],
    ["-c", "qemu:///system", "list"],
    ["create", "vm1.xml"],  # not a fast command
    ["save", "vm1", "f", "--running"],  # --running/--paused exclude each other: argparse
    ["save", "vm1", "f", "--running", "--paused"],
    ["restore", "f", "--xml", "other.xml"],
    ["shutdown", "vm1", "--timeout", "5"],
    ["shutdown", "vm1", "--mode=acpi"],
    ["save", "vm1"],
]


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_anything_else_goes_to_argparse(argv: list[str]) -> None:
    assert _fast_args(_find_command(argv), argv) is None
