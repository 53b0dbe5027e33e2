"""vmkit.model.storage: libvirt size units, size formatting, names and validation messages."""

from __future__ import annotations

import pytest

from vmkit.errors import InvalidConfig
from vmkit.model.storage import (
    BackingStore,
    Permissions,
    Pool,
    PoolSource,
    PoolType,
    Volume,
    check_volume_name,
    format_size,
    parse_size,
    resize_capacity,
    scale_size,
    unit_scale,
    validate_pool,
    validate_volume,
)

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("b", 1),
        ("B", 1),
        ("byte", 1),
        ("bytes", 1),
        ("BYTES", 1),
        ("KB", 1000),
        ("kb", 1000),
        ("KiB", KiB),
        ("k", KiB),
        ("K", KiB),
        ("MB", 1000**2),
        ("MiB", MiB),
        ("M", MiB),
        ("GB", 1000**3),
        ("GiB", GiB),
        ("G", GiB),
        ("TB", 1000**4),
        ("TiB", TiB),
        ("T", TiB),
        ("PB", 1000**5),
        ("P", 1024**5),
        ("EiB", 1024**6),
        ("E", 1024**6),
    ],
)
def test_unit_scale_follows_libvirt(unit: str, factor: int) -> None:
    assert unit_scale(unit) == factor


@pytest.mark.parametrize("unit", ["", "x", "KIBB", "Gi", "bits", "kB2"])
def test_unknown_unit_is_refused_naming_it(unit: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        unit_scale(unit, xpath="/volume/capacity/@unit")
    assert str(err.value) == (
        f"unknown size unit '{unit}' (use b, KB, KiB/K, MB, MiB/M, GB, GiB/G, TB, TiB/T, ...) "
        "(/volume/capacity/@unit)"
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("10G", 10 * GiB),
        ("10GB", 10 * 1000**3),
        ("512MiB", 512 * MiB),
        ("1 GiB", GiB),
        ("1536M", 1536 * MiB),
        (" 3k ", 3 * KiB),
        ("0", 0),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_default_unit() -> None:
    assert parse_size("2", default_unit="MiB") == 2 * MiB


@pytest.mark.parametrize("text", ["", "G", "-1G", "1.5G", "ten"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidConfig):
        parse_size(text)


def test_scale_size_overflow_is_refused() -> None:
    assert scale_size("15", "E") == 15 * 1024**6
    with pytest.raises(InvalidConfig, match="size '16E' is too large"):
        scale_size("16", "E")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0.00 B"),
        (512, "512.00 B"),
        (1023, "1023.00 B"),
        (1024, "1.00 KiB"),
        (3000, "2.93 KiB"),
        (1500000, "1.43 MiB"),
        (100 * MiB, "100.00 MiB"),
        (1536 * MiB, "1.50 GiB"),
        (100 * GiB, "100.00 GiB"),
        (3 * TiB, "3.00 TiB"),
        (2 * 1024**5, "2.00 PiB"),
        (2 * 1024**6, "2.00 EiB"),
    ],
)
def test_format_size_like_virsh(size: int, text: str) -> None:
    assert format_size(size) == text


NAME_ERRORS = {
    "": "volume name must not be empty (/volume/name)",
    "a/b": "volume name 'a/b' must not contain '/' (/volume/name)",
    "../etc/passwd": "volume name '../etc/passwd' must not contain '/' (/volume/name)",
    "..": "volume name '..' is not allowed (/volume/name)",
    ".": "volume name '.' is not allowed (/volume/name)",
    "a\x00b": "volume name 'a\\x00b' must not contain a NUL character (/volume/name)",
    "a\nb": "volume name 'a\\nb' must not contain control characters (/volume/name)",
    "-rf": "volume name '-rf' must not start with '-' (/volume/name)",
    "é" * 128: "volume name is 256 bytes long; at most 255 are allowed (/volume/name)",
}


@pytest.mark.parametrize(("name", "message"), list(NAME_ERRORS.items()))
def test_bad_volume_names(name: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        check_volume_name(name)
    assert str(err.value) == message
    assert err.value.value == name


@pytest.mark.parametrize("name", ["disk.qcow2", "a b", "ünï.img", "x" * 200, "..a", "a..b"])
def test_good_volume_names(name: str) -> None:
    check_volume_name(name)


def test_validate_pool_canonicalizes_uuid() -> None:
    pool = validate_pool(
        Pool(name="p", target_path="/srv/p", uuid="DFE224CB28FB8DD0C4B264EB3F0F4566")
    )
    assert pool.uuid == "dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566"


POOL_ERRORS = [
    (Pool(name="p", target_path="images"), "pool target path 'images' must be an absolute path"),
    (Pool(name="p", target_path="/a\x00b"), "pool target path '/a\\x00b' contains a NUL"),
    (Pool(name="p", target_path="/a\nb"), "pool target path '/a\\nb' contains a control"),
    (Pool(name="p", target_path="//"), "pool target path must not be '/'"),
    (Pool(name="", target_path="/a"), "pool name must not be empty"),
    (Pool(name="p", target_path="/a", capacity=-1), "capacity -1 is out of range"),
    (
        Pool(name="p", target_path="/a", target_permissions=Permissions(mode=0o17777)),
        "permissions mode 17777 is out of range",
    ),
    (
        Pool(name="p", target_path="/a", target_permissions=Permissions(owner=-2)),
        "permissions owner -2 must be a uid/gid or -1",
    ),
    (
        Pool(name="p", target_path="/a", type=PoolType.FS, source=PoolSource("vdb", "ext4")),
        "pool source device 'vdb' must be an absolute path",
    ),
    (
        Pool(name="p", target_path="/a", type=PoolType.FS, source=PoolSource("/dev/vdb", "ntfs")),
        "unknown file system format 'ntfs'",
    ),
]


@pytest.mark.parametrize(("pool", "message"), POOL_ERRORS)
def test_validate_pool_errors(pool: Pool, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message.replace("\\", "\\\\")):
        validate_pool(pool)


VOLUME_ERRORS = [
    (Volume(name="v", target_path="rel"), "volume path 'rel' must be an absolute path"),
    (Volume(name="v", capacity=2**64), "capacity 18446744073709551616 is out of range"),
    (
        Volume(name="v", backing_store=BackingStore("base.qcow2")),
        "backing store path 'base.qcow2' must be an absolute path",
    ),
    (
        Volume(name="v", backing_store=BackingStore("/b", "qcow9")),
        "unknown backing store format 'qcow9'",
    ),
    (
        Volume(name="v", target_format="raw", target_features_lazy_refcounts=True),
        "compat and lazy_refcounts apply to qcow2 volumes only, not to format 'raw'",
    ),
    (
        Volume(
            name="v",
            target_format="qcow2",
            target_compat="0.10",
            target_features_lazy_refcounts=True,
        ),
        "lazy_refcounts needs qcow2 compat 1.1",
    ),
]


@pytest.mark.parametrize(("vol", "message"), VOLUME_ERRORS)
def test_validate_volume_errors(vol: Volume, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        validate_volume(vol)


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("2G", {}, 2 * GiB),
        ("512M", {}, 512 * MiB),
        ("+1G", {}, 3 * GiB),
        ("1G", {"delta": True}, 3 * GiB),
        ("-1G", {"shrink": True}, GiB),
        ("1G", {"delta": True, "shrink": True}, GiB),
    ],
)
def test_resize_capacity(text: str, kwargs: dict[str, bool], expected: int) -> None:
    assert resize_capacity(text, 2 * GiB, **kwargs) == expected


def test_resize_capacity_refusals() -> None:
    with pytest.raises(InvalidConfig, match="negative size '-1G' requires --shrink"):
        resize_capacity("-1G", 2 * GiB)
    with pytest.raises(InvalidConfig, match=r"cannot shrink by 3\.00 GiB: the volume has only"):
        resize_capacity("-3G", 2 * GiB, shrink=True)
