"""Typed storage pools and volumes as libvirt's storage XML describes them, sizes and validation.

Plain data and pure checks; no I/O. Sizes are kept in bytes (libvirt's `unit='bytes'` form);
`scale_size` / `parse_size` turn libvirt's scaled integers (`<capacity unit='G'>10</capacity>`,
`vol-create-as ... 10G`) into bytes with libvirt's rules: `b`/`byte`/`bytes` are 1, a single
letter or `XiB` is a power of 1024, `XB` a power of 1000, case-insensitively.

Field names are libvirt's in snake_case; the trailing comment is the XPath relative to the
`<pool>` or `<volume>` element. Validation raises vmkit.errors.InvalidConfig naming the element
(xpath) and the value.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from enum import StrEnum

from vmkit.errors import InvalidConfig
from vmkit.model.validate import check_name, check_uuid

ULLONG_MAX = 2**64 - 1
NAME_MAX_BYTES = 255  # a volume is a file: its name must fit one path component
_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


class PoolType(StrEnum):
    DIR = "dir"
    FS = "fs"


class PoolState(StrEnum):
    """libvirt's pool states, as `pool-info` prints them."""

    INACTIVE = "inactive"
    BUILDING = "building"
    RUNNING = "running"
    DEGRADED = "degraded"
    INACCESSIBLE = "inaccessible"


class VolumeType(StrEnum):
    FILE = "file"
    BLOCK = "block"
    DIR = "dir"
    NETWORK = "network"
    NETDIR = "netdir"


# libvirt's file formats (storagecommon.rng storageFormat, plus 'unknown')
VOLUME_FORMATS = (
    "unknown",
    "raw",
    "dir",
    "bochs",
    "cloop",
    "dmg",
    "iso",
    "vpc",
    "vdi",
    "fat",
    "vhd",
    "ploop",
    "luks",
    "cow",
    "qcow",
    "qcow2",
    "qed",
    "vmdk",
)
# libvirt's file system formats of an fs pool source (storagepool.rng sourcefmtfs)
FS_FORMATS = (
    "auto",
    "ext2",
    "ext3",
    "ext4",
    "ufs",
    "iso9660",
    "udf",
    "gfs",
    "gfs2",
    "vfat",
    "hfs+",
    "xfs",
    "ocfs2",
    "vmfs",
)


# ---------------------------------------------------------------------------------------------
# sizes


def unit_scale(unit: str, *, xpath: str | None = None) -> int:
    """Bytes per `unit` by libvirt's rules ('KB' = 1000, 'KiB'/'k'/'K' = 1024, 'b' = 1, ...)."""
    low = unit.strip().lower()
    if low in ("b", "byte", "bytes"):
        return 1
    if low and low[0] in _POWERS:
        power = _POWERS[low[0]]
        if low[1:] in ("", "ib"):
            return int(1024**power)
        if low[1:] == "b":
            return int(1000**power)
    raise InvalidConfig(
        f"unknown size unit '{unit}' (use b, KB, KiB/K, MB, MiB/M, GB, GiB/G, TB, TiB/T, ...)",
        xpath=xpath,
        value=unit,
    )


def scale_size(value: str | int, unit: str | None, *, xpath: str | None = None) -> int:
    """A libvirt scaled integer (`<capacity unit=...>` text) in bytes; the unit defaults to b."""
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise InvalidConfig(
            f"invalid size '{value}': expected a non-negative integer", xpath=xpath, value=value
        )
    size = int(text) * unit_scale(unit or "b", xpath=xpath)
    if size > ULLONG_MAX:
        raise InvalidConfig(f"size '{value}{unit or ''}' is too large", xpath=xpath, value=value)
    return size


def parse_size(text: str, *, default_unit: str = "b", xpath: str | None = None) -> int:
    """A size as typed on a command line ('10G', '512MiB', '1 GB', '1024') in bytes."""
    s = text.strip()
    i = 0
    while i < len(s) and s[i].isascii() and s[i].isdigit():
        i += 1
    number, unit = s[:i], s[i:].strip()
    if not number:
        raise InvalidConfig(
            f"invalid size '{text}': expected a number with an optional unit such as 10G",
            xpath=xpath,
            value=text,
        )
    return scale_size(number, unit or default_unit, xpath=xpath)


def resize_capacity(text: str, current: int, *, delta: bool = False, shrink: bool = False) -> int:
    """The new capacity a vol-resize argument asks for: '10G' (absolute), '+1G' or `delta`
    (grow by), '-1G' (shrink by; needs `shrink`, as in virsh). libvirt reads '-1G --shrink'
    without --delta as the absolute size 1G; vmkit reads it as 'by 1G', what the sign says."""
    s = text.strip()
    sign = s[:1] if s[:1] in "+-" else ""
    if sign == "-" and not shrink:
        raise InvalidConfig(f"negative size '{text}' requires --shrink", value=text)
    amount = parse_size(s[1:] if sign else s)
    if sign == "-" or (delta and shrink):
        if amount > current:
            raise InvalidConfig(
                f"cannot shrink by {format_size(amount)}: the volume has only "
                f"{format_size(current)}",
                value=text,
            )
        return current - amount
    if sign == "+" or delta:
        return current + amount
    return amount


def format_size(size: int) -> str:
    """Human form of a byte count as virsh prints it: '512.00 B', '1.50 GiB', '100.00 MiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} EiB"


# ---------------------------------------------------------------------------------------------
# pools


@dataclass
class Permissions:
    """`<permissions>` of a pool target, a volume target or a backing store."""

    mode: int | None = None  # ./permissions/mode (octal text)
    owner: int | None = None  # ./permissions/owner (-1: unchanged)
    group: int | None = None  # ./permissions/group (-1: unchanged)
    label: str | None = None  # ./permissions/label


@dataclass
class PoolSource:
    """`<source>` of a pool: for an fs pool the block device (or image) and its file system."""

    device_path: str | None = None  # ./source/device/@path
    format_type: str | None = None  # ./source/format/@type (ext4, xfs, auto, ...)


@dataclass
class Pool:
    """`<pool>`: a storage pool. vmkit acts on `dir` pools; `fs` pools are described too."""

    name: str  # ./name
    target_path: str  # ./target/path
    type: PoolType = PoolType.DIR  # ./@type
    uuid: str | None = None  # ./uuid
    capacity: int | None = None  # ./capacity (bytes)
    allocation: int | None = None  # ./allocation (bytes)
    available: int | None = None  # ./available (bytes)
    features_cow: bool | None = None  # ./features/cow/@state
    source: PoolSource = field(default_factory=PoolSource)  # ./source
    target_permissions: Permissions | None = None  # ./target/permissions


# ---------------------------------------------------------------------------------------------
# volumes


@dataclass
class BackingStore:
    """`<backingStore>` of a volume: the image a copy-on-write overlay reads through to."""

    path: str  # ./backingStore/path
    format: str | None = None  # ./backingStore/format/@type
    permissions: Permissions | None = None  # ./backingStore/permissions


@dataclass
class Timestamps:
    """`<timestamps>` of a volume target (seconds since the epoch, with nanoseconds)."""

    atime: str | None = None  # ./target/timestamps/atime
    btime: str | None = None  # ./target/timestamps/btime
    ctime: str | None = None  # ./target/timestamps/ctime
    mtime: str | None = None  # ./target/timestamps/mtime


@dataclass
class Volume:
    """`<volume>`: a disk image (or other file) in a pool."""

    name: str  # ./name
    type: VolumeType | None = None  # ./@type
    key: str | None = None  # ./key
    capacity: int | None = None  # ./capacity (bytes)
    allocation: int | None = None  # ./allocation (bytes)
    physical: int | None = None  # ./physical (bytes)
    target_path: str | None = None  # ./target/path
    target_format: str | None = None  # ./target/format/@type (raw, qcow2, vmdk, vdi, ...)
    target_permissions: Permissions | None = None  # ./target/permissions
    target_timestamps: Timestamps | None = None  # ./target/timestamps
    target_compat: str | None = None  # ./target/compat (qcow2: 0.10 or 1.1)
    target_nocow: bool = False  # ./target/nocow
    target_cluster_size: int | None = None  # ./target/clusterSize (bytes)
    target_features_lazy_refcounts: bool = False  # ./target/features/lazy_refcounts
    target_features_extended_l2: bool = False  # ./target/features/extended_l2
    backing_store: BackingStore | None = None  # ./backingStore


# ---------------------------------------------------------------------------------------------
# validation


def check_volume_name(name: str, *, xpath: str = "/volume/name") -> None:
    """A volume name is one file name: not empty, no '/', not '.' or '..', no NUL/control chars."""
    if "\x00" in name:
        raise InvalidConfig(
            f"volume name {name!r} must not contain a NUL character", xpath=xpath, value=name
        )
    check_name(name, kind="volume", xpath=xpath)
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        raise InvalidConfig(
            f"volume name {name!r} is not valid UTF-8", xpath=xpath, value=name
        ) from None
    if size > NAME_MAX_BYTES:
        raise InvalidConfig(
            f"volume name is {size} bytes long; at most {NAME_MAX_BYTES} are allowed",
            xpath=xpath,
            value=name,
        )


def check_pool_name(name: str, *, xpath: str = "/pool/name") -> None:
    """A pool name: the same rules as a domain name (no '/', no control characters, ...)."""
    if "\x00" in name:
        raise InvalidConfig(
            f"pool name {name!r} must not contain a NUL character", xpath=xpath, value=name
        )
    check_name(name, kind="pool", xpath=xpath)


def check_abs_path(path: str, *, what: str, xpath: str) -> None:
    """An absolute path without NUL or other control characters (XML cannot carry them)."""
    if "\x00" in path:
        raise InvalidConfig(f"{what} {path!r} contains a NUL character", xpath=xpath, value=path)
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise InvalidConfig(
            f"{what} {path!r} contains a control character", xpath=xpath, value=path
        )
    if not path.startswith("/"):
        raise InvalidConfig(f"{what} '{path}' must be an absolute path", xpath=xpath, value=path)


def _check_permissions(perms: Permissions | None, xpath: str) -> None:
    if perms is None:
        return
    if perms.mode is not None and not 0 <= perms.mode <= 0o7777:
        raise InvalidConfig(
            f"permissions mode {perms.mode:o} is out of range (0 to 7777 octal)",
            xpath=xpath + "/mode",
            value=perms.mode,
        )
    for what, ident in (("owner", perms.owner), ("group", perms.group)):
        if ident is not None and not -1 <= ident < 2**32 - 1:
            raise InvalidConfig(
                f"permissions {what} {ident} must be a uid/gid or -1",
                xpath=f"{xpath}/{what}",
                value=ident,
            )


def _check_sizes(obj: Pool | Volume, names: tuple[str, ...], root: str) -> None:
    for name in names:
        size = getattr(obj, name)
        if size is not None and not 0 <= size <= ULLONG_MAX:
            raise InvalidConfig(
                f"{name} {size} is out of range", xpath=f"/{root}/{name}", value=size
            )


def validate_pool(pool: Pool) -> Pool:
    """Check a pool definition; returns it with its uuid in canonical form."""
    check_pool_name(pool.name)
    if pool.uuid is not None:
        pool.uuid = check_uuid(pool.uuid, xpath="/pool/uuid")
    check_abs_path(pool.target_path, what="pool target path", xpath="/pool/target/path")
    if not posixpath.normpath(pool.target_path).strip("/"):
        raise InvalidConfig(
            "pool target path must not be '/'", xpath="/pool/target/path", value="/"
        )
    _check_sizes(pool, ("capacity", "allocation", "available"), "pool")
    _check_permissions(pool.target_permissions, "/pool/target/permissions")
    src = pool.source
    if pool.type is PoolType.FS:
        if not src.device_path:
            raise InvalidConfig(
                "an fs pool needs a source device", xpath="/pool/source/device/@path"
            )
        check_abs_path(
            src.device_path, what="pool source device", xpath="/pool/source/device/@path"
        )
        if src.format_type is not None and src.format_type not in FS_FORMATS:
            raise InvalidConfig(
                f"unknown file system format '{src.format_type}' (one of {', '.join(FS_FORMATS)})",
                xpath="/pool/source/format/@type",
                value=src.format_type,
            )
    elif src.device_path is not None or src.format_type is not None:
        raise InvalidConfig(
            "a dir pool takes no source device or format", xpath="/pool/source", value=None
        )
    return pool


def validate_volume(vol: Volume) -> Volume:
    """Check a volume definition (name, sizes, paths, formats, backing store)."""
    check_volume_name(vol.name)
    _check_sizes(vol, ("capacity", "allocation", "physical"), "volume")
    if vol.target_path is not None:
        check_abs_path(vol.target_path, what="volume path", xpath="/volume/target/path")
    fmt = vol.target_format
    if fmt is not None and fmt not in VOLUME_FORMATS:
        raise InvalidConfig(
            f"unknown volume format '{fmt}' (one of {', '.join(VOLUME_FORMATS)})",
            xpath="/volume/target/format/@type",
            value=fmt,
        )
    _check_permissions(vol.target_permissions, "/volume/target/permissions")
    if vol.target_compat is not None and vol.target_compat not in ("0.10", "1.1"):
        raise InvalidConfig(
            f"qcow2 compat must be 0.10 or 1.1, not '{vol.target_compat}'",
            xpath="/volume/target/compat",
            value=vol.target_compat,
        )
    qcow2_only = vol.target_compat is not None or vol.target_features_lazy_refcounts
    if qcow2_only and fmt not in (None, "qcow2"):
        raise InvalidConfig(
            f"compat and lazy_refcounts apply to qcow2 volumes only, not to format '{fmt}'",
            xpath="/volume/target/format/@type",
            value=fmt,
        )
    if vol.target_features_lazy_refcounts and vol.target_compat == "0.10":
        raise InvalidConfig(
            "lazy_refcounts needs qcow2 compat 1.1",
            xpath="/volume/target/features/lazy_refcounts",
        )
    backing = vol.backing_store
    if backing is not None:
        check_abs_path(backing.path, what="backing store path", xpath="/volume/backingStore/path")
        if backing.format is not None and backing.format not in VOLUME_FORMATS:
            raise InvalidConfig(
                f"unknown backing store format '{backing.format}'",
                xpath="/volume/backingStore/format/@type",
                value=backing.format,
            )
        _check_permissions(backing.permissions, "/volume/backingStore/permissions")
    return vol
