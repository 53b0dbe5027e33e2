"""model.units: libvirt scaled integers (b, KiB default, MiB, GiB, k, M, KB, ...)."""

from __future__ import annotations

import pytest

from vmkit.errors import InvalidConfig
from vmkit.model.units import format_kib, parse_size, to_bytes, to_kib, unit_factor


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("b", 1),
        ("B", 1),
        ("bytes", 1),
        ("k", 1024),
        ("K", 1024),
        ("KiB", 1024),
        ("KB", 1000),
        ("kb", 1000),
        ("M", 1024**2),
        ("MiB", 1024**2),
        ("MB", 1000**2),
        ("G", 1024**3),
        ("GiB", 1024**3),
        ("GB", 1000**3),
        ("T", 1024**4),
        ("TiB", 1024**4),
        ("TB", 1000**4),
        ("PiB", 1024**5),
        ("EiB", 1024**6),
        (" MiB ", 1024**2),
    ],
)
def test_unit_factor(unit: str, factor: int) -> None:
    assert unit_factor(unit) == factor


@pytest.mark.parametrize("unit", ["", "XB", "KiBi", "kilobytes", "Mi", "iB", "bit", "Z"])
def test_unknown_units_are_refused(unit: str) -> None:
    with pytest.raises(InvalidConfig, match="unknown unit") as info:
        unit_factor(unit)
    assert info.value.value == unit


def test_to_bytes_defaults_to_kib() -> None:
    assert to_bytes("4", None) == 4096
    assert to_bytes(4, None, default_unit="b") == 4
    assert to_bytes(" 2 ", "MiB") == 2 * 1024**2


@pytest.mark.parametrize("value", ["", "-1", "1.5", "0x10", "1e3", "ten", "\u00b2", "\uff15"])
def test_to_bytes_refuses_what_is_not_a_plain_integer(value: str) -> None:
    with pytest.raises(InvalidConfig, match="expected a non-negative integer"):
        to_bytes(value, "KiB")


@pytest.mark.parametrize(
    ("value", "unit", "kib"),
    [
        ("1024", None, 1024),
        ("1024", "KiB", 1024),
        ("1", "GiB", 1048576),
        ("512", "M", 524288),
        ("1000", "MB", 976563),  # 10**9 bytes, rounded up
        ("1", "b", 1),  # rounded up like libvirt
        ("1024", "b", 1),
        ("1025", "bytes", 2),
        ("0", "GiB", 0),
    ],
)
def test_to_kib_rounds_up(value: str, unit: str | None, kib: int) -> None:
    assert to_kib(value, unit) == kib


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("10G", 10 * 1024**3),
        ("512MiB", 512 * 1024**2),
        ("1 GB", 10**9),
        ("3k", 3072),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_default_unit() -> None:
    assert parse_size("2", default_unit="MiB") == 2 * 1024**2


@pytest.mark.parametrize("text", ["", "G", "MiB", "1.5G", "ten"])
def test_parse_size_refuses_nonsense(text: str) -> None:
    with pytest.raises(InvalidConfig):
        parse_size(text)


@pytest.mark.parametrize(
    ("kib", "text"),
    [
        (0, "0.0 KiB"),
        (512, "512.0 KiB"),
        (1024, "1.0 MiB"),
        (1536, "1.5 MiB"),
        (1048576, "1.0 GiB"),
        (1024**3, "1.0 TiB"),
        (1024**4, "1024.0 TiB"),
    ],
)
def test_format_kib(kib: int, text: str) -> None:
    assert format_kib(kib) == text
