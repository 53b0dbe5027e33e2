"""A cpio archive in the `newc` format the kernel unpacks as initramfs, built in memory.

Pure: entries are added by path and serialised sorted, owned by root, with a fixed mtime, so the
same inputs give the same bytes; device nodes need no mknod (and no root) on the host. It must
not know what the guest contains.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import PurePosixPath

_MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member: path without leading slash, full st_mode, contents, device numbers."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def encode_entry(entry: Entry, ino: int, mtime: int = 0) -> bytes:
    """One newc header + name + data, each padded to 4 bytes."""
    name = entry.path.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, mtime, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
    header = _MAGIC + b"".join(b"%08X" % value for value in fields)
    head = header + name
    return head + _pad(len(head)) + entry.data + _pad(len(entry.data))


class Archive:
    """Entries by path; parent folders are added on the way (mode 0755)."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        self._add(Entry(path, stat.S_IFDIR | mode))

    def add_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._add(Entry(path, stat.S_IFREG | mode, data))

    def add_symlink(self, path: str, target: str) -> None:
        self._add(Entry(path, stat.S_IFLNK | 0o777, target.encode()))

    def add_char_device(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._add(Entry(path, stat.S_IFCHR | mode, rdev=(major, minor)))

    def __contains__(self, path: str) -> bool:
        return _clean(path) in self._entries

    def _add(self, entry: Entry) -> None:
        path = _clean(entry.path)
        for parent in reversed(PurePosixPath(path).parents[:-1]):
            key = parent.as_posix()
            if key not in self._entries:
                self._entries[key] = Entry(key, stat.S_IFDIR | 0o755)
            elif not stat.S_ISDIR(self._entries[key].mode):
                raise ValueError(f"{key} is not a folder in the archive")
        self._entries[path] = Entry(path, entry.mode, entry.data, entry.rdev)

    def to_bytes(self) -> bytes:
        """The archive: members sorted by path (a folder before what it holds), then the trailer."""
        chunks = [
            encode_entry(entry, ino)
            for ino, entry in enumerate(
                (self._entries[path] for path in sorted(self._entries)), start=1
            )
        ]
        chunks.append(encode_entry(Entry(TRAILER, 0), 0))
        return b"".join(chunks)


def _clean(path: str) -> str:
    clean = PurePosixPath("/", path).as_posix().lstrip("/")
    if not clean or ".." in PurePosixPath(clean).parts:
        raise ValueError(f"bad archive path {path!r}")
    return clean
