"""The save-image format: a complete image reads back; foreign, unfinished, truncated or
damaged files are refused with a message that says which."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmkit.engine.savefile import (
    ALIGN,
    HEADER_SIZE,
    build_header,
    length_field,
    parse_header,
    read_header,
    stream_offset_for,
)
from vmkit.errors import InvalidConfig

XML = "<domain type='qemu'>\n  <name>vm1</name>\n</domain>\n"
STREAM = b"QEVM\x00\x00\x00\x03" + b"x" * 5000


def _image(
    xml: str = XML, stream: bytes = STREAM, *, running: bool = True, ports: int | None = None
) -> bytes:
    header = build_header(xml, running=running, root_ports=ports)
    offset, tail = length_field(header, len(stream))
    data = bytearray(header + stream)
    data[offset : offset + len(tail)] = tail
    return bytes(data)


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "vm1.save"
    path.write_bytes(data)
    return path


def test_round_trip(tmp_path: Path) -> None:
    h = read_header(_write(tmp_path, _image(running=False)))
    assert h.xml == XML
    assert h.running is False
    assert h.stream_offset == ALIGN
    assert h.stream_length == len(STREAM)
    assert h.root_ports is None  # not recorded: a restore plans the ports as a start does


@pytest.mark.parametrize("ports", [0, 5, 254])
def test_root_ports_are_kept(tmp_path: Path, ports: int) -> None:
    h = read_header(_write(tmp_path, _image(ports=ports)))
    assert (h.root_ports, h.running) == (ports, True)


def test_stream_starts_aligned_after_large_xml() -> None:
    assert stream_offset_for(0) == ALIGN
    assert stream_offset_for(ALIGN - HEADER_SIZE) == ALIGN
    assert stream_offset_for(ALIGN - HEADER_SIZE + 1) == 2 * ALIGN
    big = "<domain>" + " " * 10000 + "</domain>"
    assert len(build_header(big, running=True)) == 3 * ALIGN


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"hello world" * 100, "not a vmkit save image"),
        (b"LibvirtQemudSave" + b"\0" * 200, "libvirt save image"),
        (b"", "not a vmkit save image"),
        (b"VMKITSAV\x01", "truncated"),
    ],
)
def test_foreign_files_are_refused(tmp_path: Path, data: bytes, why: str) -> None:
    with pytest.raises(InvalidConfig, match=why):
        read_header(_write(tmp_path, data))


def test_unfinished_save_is_refused(tmp_path: Path) -> None:
    data = build_header(XML, running=True) + STREAM  # stream length never written
    with pytest.raises(InvalidConfig, match="did not finish"):
        read_header(_write(tmp_path, data))


@pytest.mark.parametrize("cut", [1, 100, len(STREAM)])
def test_truncated_file_is_refused(tmp_path: Path, cut: int) -> None:
    with pytest.raises(InvalidConfig, match="truncated"):
        read_header(_write(tmp_path, _image()[:-cut]))


def test_extra_bytes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="unexpected extra bytes"):
        read_header(_write(tmp_path, _image() + b"junk"))


def test_damaged_header_is_refused(tmp_path: Path) -> None:
    data = bytearray(_image())
    data[12] ^= 1  # the flags
    with pytest.raises(InvalidConfig, match="checksum"):
        read_header(_write(tmp_path, bytes(data)))


def test_damaged_xml_is_refused(tmp_path: Path) -> None:
    data = bytearray(_image())
    data[HEADER_SIZE + 3] ^= 1
    with pytest.raises(InvalidConfig, match="XML in the header is corrupt"):
        read_header(_write(tmp_path, bytes(data)))


def test_missing_qemu_stream_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="stream is missing"):
        read_header(_write(tmp_path, _image(stream=b"NOPE" + b"\0" * 100)))


def test_directory_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="directory"):
        read_header(tmp_path)
    with pytest.raises(InvalidConfig, match="cannot read save image"):
        read_header(tmp_path / "nope")


def test_parse_header_names_the_source() -> None:
    with pytest.raises(InvalidConfig, match=r"'some\.file'"):
        parse_header(b"garbage", 7, "some.file")
