"""probe.py: the multiboot image and the probe's command line (no QEMU is run here)."""

from __future__ import annotations

import struct
from pathlib import Path

from vmkit.host.probe import (
    BASE,
    MSG_DONE,
    MSG_LONG,
    MSG_PROTECTED,
    build_probe_image,
    probe_argv,
    stage_reached,
)


def test_multiboot_header_is_valid() -> None:
    image = build_probe_image()
    magic, flags, checksum, header, load, load_end, bss_end, entry = struct.unpack_from(
        "<8I", image
    )
    assert magic == 0x1BADB002
    assert flags & 0x10000  # address fields valid (a.out kludge: not an ELF)
    assert (magic + flags + checksum) & 0xFFFFFFFF == 0
    assert header == load == BASE and load_end == 0 and bss_end == 0
    assert BASE < entry < BASE + len(image)
    assert image[entry - BASE] == 0xFA  # cli


def test_image_carries_the_markers_and_is_deterministic() -> None:
    image = build_probe_image()
    for marker in (MSG_PROTECTED, MSG_LONG, MSG_DONE):
        assert marker in image
    assert image == build_probe_image()
    assert len(image) < 512


def test_far_jump_lands_on_the_64_bit_code() -> None:
    image = build_probe_image()
    jump = image.index(b"\xea")  # the only far jump
    target = struct.unpack_from("<I", image, jump + 1)[0]
    assert image[jump + 5 : jump + 7] == b"\x08\x00"
    assert target - BASE == jump + 7  # right after the jump: mov dx, 0x402
    assert image[target - BASE : target - BASE + 2] == b"\x66\xba"


def test_argv_has_only_the_debug_console() -> None:
    argv = probe_argv(Path("/q"), "kvm", Path("/t/p.bin"), Path("/t,x/log"))
    assert argv[:3] == ["/q", "-accel", "kvm"]
    assert "-nodefaults" in argv and argv[9:11] == ["-display", "none"]
    assert "file,id=dbg,path=/t,,x/log" in argv  # commas doubled for QEMU's option parser
    assert "isa-debugcon,iobase=0x402,chardev=dbg" in argv


def test_stage_reached() -> None:
    assert stage_reached(b"") == "nothing"
    assert stage_reached(b"SeaBIOS (version 1.16.2)\n") == "firmware"
    assert stage_reached(b"SeaBIOS\n" + MSG_PROTECTED) == "protected mode"
    assert stage_reached(MSG_PROTECTED + MSG_LONG) == "long mode"
    assert stage_reached(MSG_PROTECTED + MSG_LONG + MSG_DONE) == "done"
