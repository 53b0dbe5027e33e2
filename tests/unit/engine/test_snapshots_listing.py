"""snapshot-list's table and --tree, laid out exactly as virsh prints them (outputs recorded
from `virsh -c test:///default`), and the --diskspec / --memspec parsers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from vmkit.cli.snapshot_cmds import _diskspec, _memspec
from vmkit.cli.snapshot_listing import table, tree
from vmkit.errors import InvalidConfig
from vmkit.model.snapshot import DomainSnapshot, SnapshotLocation, SnapshotState


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _snap(name: str, parent: str | None = None) -> DomainSnapshot:
    return DomainSnapshot(
        name=name, parent=parent, state=SnapshotState.RUNNING, creation_time=1795621921
    )


def test_table_like_virsh() -> None:
    assert table([_snap("s1"), _snap("s2", "s1")], parent=False) == (
        " Name   Creation Time               State\n"
        "---------------------------------------------\n"
        " s1     2026-11-25 15:52:01 +0000   running\n"
        " s2     2026-11-25 15:52:01 +0000   running\n"
    )


def test_table_with_parent_keeps_virsh_trailing_spaces() -> None:
    assert table([_snap("s1"), _snap("s2", "s1")], parent=True) == (
        " Name   Creation Time               State     Parent\n"
        "------------------------------------------------------\n"
        " s1     2026-11-25 15:52:01 +0000   running   \n"
        " s2     2026-11-25 15:52:01 +0000   running   s1\n"
    )


def test_empty_table_like_virsh() -> None:
    assert table([], parent=False) == (
        " Name   Creation Time   State\n-------------------------------\n"
    )


def test_tree_like_virsh() -> None:
    snaps = [
        _snap("a"),
        _snap("b", "a"),
        _snap("c", "b"),
        _snap("d", "a"),
        _snap("e", "d"),
        _snap("f", "b"),
    ]
    assert tree(snaps, None) == (
        "a\n"
        "  |\n"
        "  +- b\n"
        "  |   |\n"
        "  |   +- c\n"
        "  |   +- f\n"
        "  |     \n"
        "  +- d\n"
        "      |\n"
        "      +- e\n"
        "        \n"
    )


def test_tree_with_several_roots_like_virsh() -> None:
    assert tree([_snap("b"), _snap("c", "b"), _snap("d")], None) == ("b\n  |\n  +- c\n    \nd\n\n")


def test_tree_from_a_snapshot_starts_there() -> None:
    assert tree([_snap("b", "a"), _snap("c", "b")], "b") == "b\n  |\n  +- c\n    \n"


def test_diskspec() -> None:
    d = _diskspec("vda,snapshot=external,driver=qcow2,file=/o/vda.s1")
    assert (d.name, d.snapshot, d.driver_type, d.source_file) == (
        "vda",
        SnapshotLocation.EXTERNAL,
        "qcow2",
        "/o/vda.s1",
    )
    assert _diskspec("vdb,snapshot=no").snapshot is SnapshotLocation.NO
    assert _diskspec("vdc,file=/o/x").snapshot is SnapshotLocation.EXTERNAL


@pytest.mark.parametrize(
    "spec", ["", "snapshot=no", "vda,driver=raw", "vda,file=rel", "vda,snapshot=bogus", "vda,x=y"]
)
def test_bad_diskspec(spec: str) -> None:
    with pytest.raises(InvalidConfig):
        _diskspec(spec)


def test_memspec() -> None:
    assert _memspec("/m/s1.mem") == (SnapshotLocation.EXTERNAL, "/m/s1.mem")
    assert _memspec("file=/m/s1.mem,snapshot=external") == (SnapshotLocation.EXTERNAL, "/m/s1.mem")
    assert _memspec("snapshot=no") == (SnapshotLocation.NO, None)
    with pytest.raises(InvalidConfig):
        _memspec("relative.mem")
