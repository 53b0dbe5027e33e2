"""libvirt scaled integers: memory and size units (b, KiB default, MiB, GiB, k, M, KB, ...).

Pure functions; the model stores memory in KiB as libvirt does.
"""

from __future__ import annotations

from vmkit.errors import InvalidConfig

_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def unit_factor(unit: str) -> int:
    """Bytes per `unit`; libvirt rules: 'KB' is 1000, 'KiB'/'k'/'K' are 1024, 'b'/'bytes' are 1."""
    u = unit.strip()
    if u in ("b", "B", "bytes"):
        return 1
    low = u.lower()
    if len(low) == 1 and low in _POWERS:
        return int(1024 ** _POWERS[low])
    if len(low) == 2 and low[0] in _POWERS and low[1] == "b":
        return int(1000 ** _POWERS[low[0]])
    if len(low) == 3 and low[0] in _POWERS and low[1:] == "ib":
        return int(1024 ** _POWERS[low[0]])
    raise InvalidConfig(f"unknown unit '{unit}'", value=unit)


def to_bytes(value: str | int, unit: str | None, *, default_unit: str = "KiB") -> int:
    """Turn a libvirt scaled integer into bytes."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):  # '²'.isdigit() is True, int('²') fails
        raise InvalidConfig(
            f"invalid value '{value}': expected a non-negative integer", value=value
        )
    return int(text) * unit_factor(unit or default_unit)


def to_kib(value: str | int, unit: str | None) -> int:
    """Turn a libvirt scaled integer into KiB, rounding up like libvirt."""
    n = to_bytes(value, unit)
    return (n + 1023) // 1024


def parse_size(text: str, *, default_unit: str = "b") -> int:
    """Parse a CLI size such as '10G', '512MiB', '1024' (bytes by default) into bytes."""
    s = text.strip()
    i = len(s)
    while i > 0 and not s[i - 1].isdigit():
        i -= 1
    number, unit = s[:i], s[i:]
    if not number:
        raise InvalidConfig(f"invalid size '{text}'", value=text)
    return to_bytes(number, unit or default_unit)


def format_kib(kib: int) -> str:
    """Human form of a KiB count: '256.0 MiB', '1.0 GiB'."""
    value = float(kib)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
