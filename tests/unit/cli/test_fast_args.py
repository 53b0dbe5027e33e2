"""The argparse-free parse of list/dominfo/domstate/dumpxml gives exactly argparse's result,
and leaves everything else (help, unknown or abbreviated options, wrong counts) to argparse."""

from __future__ import annotations

import pytest

from vmkit.cli.main import _build_parser, _fast_args, _find_command

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
    ["start", "vm1"],  # not a fast command
]


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_anything_else_goes_to_argparse(argv: list[str]) -> None:
    assert _fast_args(_find_command(argv), argv) is None
