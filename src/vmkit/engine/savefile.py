"""vmkit's save-image format: a small header, the domain XML, then QEMU's migration stream.

    offset 0    magic 'VMKITSAV' (8 bytes)
            8   format version (u32, little endian), 1
           12   flags (u32): bit 0 = start running on restore; bits 8-15: the number of
                pcie-root-ports QEMU had, plus 1 (0: not recorded)
           16   XML length in bytes (u32)
           20   stream offset (u32): where QEMU's stream starts (4 KiB aligned)
           24   stream length (u64): 0 while the save runs, written once QEMU finished
           32   CRC-32 of the XML (u32)
           36   CRC-32 of bytes 0..35 (u32)
           64   the domain XML (UTF-8), then zero padding up to the stream offset
    stream      QEMU's migration stream (starts with 'QEVM')

The stream length is written last, after QEMU reported the migration completed: a save that
died half-way keeps length 0, a copy cut short is shorter than offset + length, and both are
refused by `read_header` before anything is started. The stream itself carries no checksum:
hashing ~90 MiB would double the time of a save; QEMU checks the stream's structure as it loads.

Pure: builds and checks bytes; the engine does the file I/O.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from vmkit.errors import InvalidConfig
from vmkit.state.frozen import Frozen

MAGIC = b"VMKITSAV"
VERSION = 1
FLAG_RUNNING = 1
_PORTS_SHIFT = 8
HEADER_SIZE = 64
ALIGN = 4096
QEMU_MAGIC = b"QEVM"
LIBVIRT_MAGICS = (b"LibvirtQemudSave", b"LibvirtQemudPart")
_FIXED = struct.Struct("<8sIIIIQI")  # magic, version, flags, xml len, offset, length, xml crc
_LENGTH_AT = 24
MAX_XML = 16 * 1024 * 1024


class SaveHeader(Frozen):
    """What a save image says about itself (a Frozen record: no `dataclasses` on save)."""

    _fields = ("xml", "running", "stream_offset", "stream_length", "root_ports")
    __slots__ = _fields
    xml: str
    running: bool
    stream_offset: int
    stream_length: int
    root_ports: int | None  # pcie-root-ports of the saved QEMU (q35), when recorded

    def __init__(
        self,
        xml: str,
        running: bool,
        stream_offset: int,
        stream_length: int,
        root_ports: int | None = None,
    ) -> None:
        self._init(xml, running, stream_offset, stream_length, root_ports)


def stream_offset_for(xml_length: int) -> int:
    """Where the stream starts after a header holding `xml_length` bytes of XML."""
    return -(-(HEADER_SIZE + xml_length) // ALIGN) * ALIGN


def build_header(xml: str, *, running: bool, root_ports: int | None = None) -> bytes:
    """The bytes before QEMU's stream, with stream length 0 (not finished)."""
    data = xml.encode("utf-8")
    if len(data) > MAX_XML:
        raise InvalidConfig(f"domain XML too large for a save image ({len(data)} bytes)")
    offset = stream_offset_for(len(data))
    flags = FLAG_RUNNING if running else 0
    if root_ports is not None:
        flags |= (min(root_ports, 254) + 1) << _PORTS_SHIFT
    fixed = _FIXED.pack(MAGIC, VERSION, flags, len(data), offset, 0, zlib.crc32(data))
    head = fixed + struct.pack("<I", zlib.crc32(fixed))
    return head.ljust(HEADER_SIZE, b"\0") + data.ljust(offset - HEADER_SIZE, b"\0")


def length_field(header: bytes, stream_length: int) -> tuple[int, bytes]:
    """(file offset, bytes) to write once the stream is complete: its length and a new CRC."""
    fixed = bytearray(header[: _FIXED.size])
    struct.pack_into("<Q", fixed, _LENGTH_AT, stream_length)
    tail = bytes(fixed[_LENGTH_AT:]) + struct.pack("<I", zlib.crc32(bytes(fixed)))
    return _LENGTH_AT, tail


def parse_header(head: bytes, file_size: int, source: str) -> SaveHeader:
    """Check the first bytes of a save image (at least the header + XML + 4) and its size."""
    if any(head.startswith(m) for m in LIBVIRT_MAGICS):
        raise _bad(source, "it is a libvirt save image, not a vmkit one")
    if not head.startswith(MAGIC):
        raise _bad(source, "not a vmkit save image (wrong magic)")
    if len(head) < HEADER_SIZE:
        raise _bad(source, "the file is truncated (incomplete header)")
    _, version, flags, xml_len, offset, length, xml_crc = _FIXED.unpack_from(head)
    (head_crc,) = struct.unpack_from("<I", head, _FIXED.size)
    if head_crc != zlib.crc32(head[: _FIXED.size]):
        raise _bad(source, "the header is corrupt (checksum mismatch)")
    if version != VERSION:
        raise _bad(source, f"save image format version {version} is not supported")
    if length == 0:
        raise _bad(source, "the save did not finish (no stream length recorded)")
    if offset != stream_offset_for(xml_len) or offset + length != file_size:
        if offset + length > file_size:
            raise _bad(
                source,
                f"the file is truncated ({file_size} bytes, the image needs {offset + length})",
            )
        raise _bad(source, f"the file has {file_size - offset - length} unexpected extra bytes")
    data = head[HEADER_SIZE : HEADER_SIZE + xml_len]
    if len(data) != xml_len or zlib.crc32(data) != xml_crc:
        raise _bad(source, "the domain XML in the header is corrupt")
    if head[offset : offset + len(QEMU_MAGIC)] != QEMU_MAGIC:
        raise _bad(source, "QEMU's state stream is missing")
    ports = (flags >> _PORTS_SHIFT) & 0xFF
    return SaveHeader(
        data.decode("utf-8"),
        bool(flags & FLAG_RUNNING),
        offset,
        length,
        ports - 1 if ports else None,
    )


def read_header(path: str | Path) -> SaveHeader:
    """Open `path` and check it is a complete vmkit save image; InvalidConfig otherwise."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(HEADER_SIZE)
            if len(head) == HEADER_SIZE and head.startswith(MAGIC):
                xml_len = struct.unpack_from("<I", head, 16)[0]
                head += f.read(stream_offset_for(min(xml_len, MAX_XML)) - HEADER_SIZE + 4)
    except IsADirectoryError as exc:
        raise _bad(source, "it is a directory") from exc
    except OSError as exc:
        raise InvalidConfig(f"cannot read save image '{source}': {exc.strerror}") from exc
    return parse_header(head, size, source)


def _bad(source: str, why: str) -> InvalidConfig:
    return InvalidConfig(f"'{source}' is not a usable vmkit save image: {why}", value=source)
