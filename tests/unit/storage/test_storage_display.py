"""pool-list, pool-info, vol-list, vol-info text against virsh's own output (captured from
`virsh -c test:///default`, see tests/data/storage/virsh/README.md and shared/reference/virsh)."""

from __future__ import annotations

from pathlib import Path

from vmkit.model.storage import PoolState, Volume, VolumeType
from vmkit.storage.display import (
    PoolRow,
    format_pool_info,
    format_pool_list,
    format_table,
    format_vol_info,
    format_vol_list,
)

VIRSH = Path(__file__).parents[2] / "data" / "storage" / "virsh"
SHARED = Path(__file__).parents[4] / "shared" / "reference" / "virsh"
GiB = 1024**3

DEFAULT = PoolRow(
    name="default-pool",
    uuid="dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566",
    state=PoolState.RUNNING,
    autostart=False,
    capacity=100 * GiB,
    allocation=0,
    available=100 * GiB,
)
SECOND = PoolRow(
    name="second",
    uuid="11111111-2222-3333-4444-555555555555",
    state=PoolState.INACTIVE,
    autostart=False,
)


def _virsh(name: str) -> str:
    return (VIRSH / name).read_text()


def _vol(name: str, capacity: int, allocation: int) -> Volume:
    return Volume(
        name=name,
        type=VolumeType.FILE,
        capacity=capacity,
        allocation=allocation,
        target_path=f"/default-pool/{name}",
    )


VOLS = [
    _vol("small", 512, 512),
    _vol("mid", 1500000, 1500000),
    _vol("a-much-longer-volume-name.img", 1536 * 1024**2, 100 * 1024**2),
    _vol("kib", 3000, 3000),
]


def test_pool_list_all() -> None:
    assert format_pool_list([SECOND, DEFAULT]) == _virsh("pool-list-all-test.txt")


def test_pool_list_details_with_an_inactive_pool() -> None:
    autostarted = PoolRow(**{**DEFAULT.__dict__, "autostart": True})
    assert format_pool_list([SECOND, autostarted], details=True) == _virsh(
        "pool-list-details-test.txt"
    )


def test_pool_list_empty() -> None:
    assert format_pool_list([], details=True) == _virsh("pool-list-empty.txt")
    assert format_pool_list([]) == (" Name   State   Autostart\n---------------------------\n\n")


def test_pool_info() -> None:
    assert format_pool_info(DEFAULT) == _virsh("pool-info-default-pool-plain.txt")


def test_pool_info_bytes() -> None:
    assert format_pool_info(DEFAULT, in_bytes=True) == _virsh("pool-info-bytes.txt")


def test_pool_info_inactive_has_no_sizes() -> None:
    assert format_pool_info(SECOND) == _virsh("pool-info-inactive.txt")


def test_shared_reference_layouts() -> None:
    """The captures in shared/reference (with their '$ command' line and exit code)."""
    if not SHARED.exists():
        return
    ref = (SHARED / "pool-list-all.txt").read_text().split("\n", 1)[1]
    assert ref.startswith(format_pool_list([DEFAULT]))
    ref = (SHARED / "pool-info-default-pool.txt").read_text().split("\n", 1)[1]
    assert ref.startswith(format_pool_info(DEFAULT))
    ref = (SHARED / "vol-list-default-pool.txt").read_text().split("\n", 1)[1]
    assert ref.startswith(format_vol_list([]))


def test_vol_list() -> None:
    assert format_vol_list(VOLS[:1] + VOLS[2:3]) == _virsh("vol-list-test.txt")


def test_vol_list_details() -> None:
    assert format_vol_list(VOLS, details=True) == _virsh("vol-list-details-test.txt")


def test_vol_info() -> None:
    assert format_vol_info(VOLS[2]) == _virsh("vol-info-test.txt")


def test_vol_info_bytes() -> None:
    vol = _vol("vol1.qcow2", GiB, GiB)
    assert format_vol_info(vol, in_bytes=True) == _virsh("vol-info-bytes.txt")


def test_table_pads_wide_characters_by_display_width() -> None:
    out = format_table(["Name", "Path"], [["日本", "/p/日本"], ["ab", "/p/ab"]])
    assert out.splitlines() == [
        " Name   Path",
        "-----------------",
        " 日本   /p/日本",
        " ab     /p/ab",
        "",
    ]
