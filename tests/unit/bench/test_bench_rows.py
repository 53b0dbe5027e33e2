"""bench.rows: every row issue 6 asks for is there once, with the issue's targets."""

from __future__ import annotations

from bench.model import TargetKind
from bench.rows import ALL_ROWS, BY_KEY

ISSUE_ROWS = {
    "cli.list1",
    "cli.list200",
    "cli.dominfo",
    "cli.dumpxml",
    "cli.define_undefine",
    "life.boot",
    "life.start_destroy",
    "life.destroy",
    "life.shutdown",
    "life.suspend_resume",
    "life.save",
    "life.save_size",
    "life.restore",
    "scale.seq",
    "scale.par",
    "mem.idle",
    "mem.domain_qemu",
    "mem.domain_extra",
    "net.veth_pair",
    "net.plain_bridge",
    "net.vmkit_nat",
    "store.vol_clone",
    "store.snapshot_create",
    "store.snapshot_revert",
}


def test_row_keys_are_unique() -> None:
    keys = [row.key for row in ALL_ROWS]
    assert len(keys) == len(set(keys))
    assert len(BY_KEY) == len(ALL_ROWS)


def test_every_row_of_the_issue_is_listed() -> None:
    assert set(BY_KEY) >= ISSUE_ROWS


def test_targets_match_the_issue() -> None:
    def target(key: str) -> tuple[TargetKind, float, str]:
        t = BY_KEY[key].target
        assert t is not None, key
        return (t.kind, t.limit, t.against)

    assert target("life.boot") == (TargetKind.OVERHEAD, 0.050, "floor")
    assert target("life.destroy") == (TargetKind.RATIO, 0.5, "libvirt")
    assert target("life.shutdown") == (TargetKind.RATIO, 1.1, "libvirt")
    assert target("cli.list1") == (TargetKind.OVERHEAD, 0.025, "floor")
    assert target("cli.dominfo") == (TargetKind.OVERHEAD, 0.025, "floor")
    assert target("cli.list200") == (TargetKind.DELTA_ROW, 0.010, "cli.list1")
    assert target("life.save") == (TargetKind.RATIO, 1.1, "floor")
    assert target("life.restore") == (TargetKind.RATIO, 1.1, "floor")
    assert target("scale.par") == (TargetKind.RATIO, 1.0, "libvirt")
    assert target("mem.idle") == (TargetKind.MAXIMUM, 0.0, "")
    assert target("mem.domain_extra") == (TargetKind.MAXIMUM, 0.0, "")


def test_delta_targets_point_at_existing_rows() -> None:
    for row in ALL_ROWS:
        if row.target is not None and row.target.kind is TargetKind.DELTA_ROW:
            assert row.target.against in BY_KEY
