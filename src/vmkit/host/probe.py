"""The timed probe boot: does an accelerator really run guest code at hardware speed?

A 0.4 KiB multiboot image, built here byte by byte, is booted by QEMU (`-machine pc -kernel`)
through SeaBIOS. It prints a marker on the debug console (isa-debugcon, port 0x402) in 32-bit
protected mode, switches to 64-bit long mode, prints a second marker, spins 10 million
iterations and prints "vmkit-probe: done". Under TCG that takes ~0.15 s, under a working KVM
less. SeaBIOS output alone proves nothing: the PVM-only /dev/kvm of our CI machines runs SeaBIOS
and reaches long mode, but ~300 times slower than TCG (the loop alone takes 11 s), which is why
a normal guest there seems to hang at 100 % CPU. So the verdict is "done within the deadline".

This module owns the image, the QEMU command line and the watch loop; it never decides which
accelerator vmkit uses (kvm.py does).
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vmkit.errors import LaunchFailed

BASE = 0x100000  # load address of the image (1 MiB)
PAGE_TABLES = 0x300000  # PML4, PDPT, PD: three zeroed pages at 3 MiB, identity-map 2 MiB
LOOP_ITERATIONS = 10_000_000
DEBUGCON_PORT = 0x402
DEFAULT_TIMEOUT = 3.0
OUTPUT_KEEP = 8192  # bytes of debug console output kept in a ProbeResult

MSG_PROTECTED = b"\nvmkit-probe: protected mode\n"
MSG_LONG = b"vmkit-probe: long mode\n"
MSG_DONE = b"vmkit-probe: done\n"

_GDT_OFF = 0x20
_GDTR_OFF = 0x30
_MSG_OFF = 0x40
_CODE_OFF = 0x100


def _u32(value: int) -> bytes:
    return struct.pack("<I", value & 0xFFFFFFFF)


def _print_message(offset: int, message: bytes) -> bytes:
    """mov esi, BASE+offset; mov ecx, len; rep outsb (dx already holds the port)."""
    return b"\xbe" + _u32(BASE + offset) + b"\xb9" + _u32(len(message)) + b"\xf3\x6e"


def _code32(msg_offset: int, long_entry: int) -> bytes:
    pt = PAGE_TABLES
    return b"".join(
        [
            b"\xfa\xfc",  # cli; cld
            b"\x66\xba" + struct.pack("<H", DEBUGCON_PORT),  # mov dx, 0x402
            _print_message(msg_offset, MSG_PROTECTED),
            b"\xbf" + _u32(pt) + b"\x31\xc0",  # mov edi, PAGE_TABLES; xor eax, eax
            b"\xb9" + _u32(3 * 1024) + b"\xf3\xab",  # mov ecx, 3072; rep stosd (zero 3 pages)
            b"\xc7\x05" + _u32(pt) + _u32(pt + 0x1003),  # PML4[0] = PDPT | present | rw
            b"\xc7\x05" + _u32(pt + 0x1000) + _u32(pt + 0x2003),  # PDPT[0] = PD | present | rw
            b"\xc7\x05" + _u32(pt + 0x2000) + _u32(0x83),  # PD[0] = 0 | 2 MiB page | rw | present
            b"\x0f\x20\xe0\x83\xc8\x20\x0f\x22\xe0",  # mov eax, cr4; or eax, PAE; mov cr4, eax
            b"\xb8" + _u32(pt) + b"\x0f\x22\xd8",  # mov eax, PAGE_TABLES; mov cr3, eax
            b"\xb9" + _u32(0xC0000080) + b"\x0f\x32",  # mov ecx, EFER; rdmsr
            b"\x0d" + _u32(0x100) + b"\x0f\x30",  # or eax, LME; wrmsr
            b"\x0f\x20\xc0\x0d" + _u32(0x80000001) + b"\x0f\x22\xc0",  # cr0 |= PG | PE
            b"\x0f\x01\x15" + _u32(BASE + _GDTR_OFF),  # lgdt [gdtr]
            b"\xea" + _u32(long_entry) + b"\x08\x00",  # jmp far 0x08:long_entry
        ]
    )


def _code64(msg_long: int, msg_done: int) -> bytes:
    return b"".join(
        [
            b"\x66\xba" + struct.pack("<H", DEBUGCON_PORT),  # mov dx, 0x402
            _print_message(msg_long, MSG_LONG),
            b"\x48\xc7\xc1" + _u32(LOOP_ITERATIONS),  # mov rcx, LOOP_ITERATIONS
            b"\x48\xff\xc9\x75\xfb",  # 1: dec rcx; jnz 1b
            _print_message(msg_done, MSG_DONE),
            b"\xf4\xeb\xfd",  # 2: hlt; jmp 2b
        ]
    )


def build_probe_image() -> bytes:
    """The multiboot (a.out kludge) image: header, GDT, messages, 32-bit then 64-bit code."""
    magic, flags = 0x1BADB002, 0x00010000
    entry = BASE + _CODE_OFF
    header = struct.pack(
        "<8I", magic, flags, -(magic + flags) & 0xFFFFFFFF, BASE, BASE, 0, 0, entry
    )
    gdt = struct.pack("<QQ", 0, 0x00AF9A000000FFFF)  # null, 64-bit code segment (selector 8)
    gdtr = struct.pack("<HI", len(gdt) - 1, BASE + _GDT_OFF)
    msg_long = _MSG_OFF + len(MSG_PROTECTED)
    msg_done = msg_long + len(MSG_LONG)
    messages = MSG_PROTECTED + MSG_LONG + MSG_DONE
    code32_len = len(_code32(_MSG_OFF, 0))
    code = _code32(_MSG_OFF, entry + code32_len) + _code64(msg_long, msg_done)
    image = bytearray(_CODE_OFF)
    image[0 : len(header)] = header
    image[_GDT_OFF : _GDT_OFF + len(gdt)] = gdt
    image[_GDTR_OFF : _GDTR_OFF + len(gdtr)] = gdtr
    image[_MSG_OFF : _MSG_OFF + len(messages)] = messages
    return bytes(image) + code


@dataclass(frozen=True)
class ProbeResult:
    """How far the probe got under `accel` and whether it finished in time."""

    accel: str
    ok: bool
    elapsed: float  # seconds from spawn to the done marker (or to giving up)
    reached: str  # "nothing", "firmware", "protected mode", "long mode" or "done"
    detail: str
    output: bytes = b""  # the end of what the debug console printed (SeaBIOS, markers)
    pid: int = 0  # QEMU's pid (killed and reaped when the result is returned)


class Prober(Protocol):
    """Runs the probe boot under one accelerator (the seam unit tests fake)."""

    def __call__(self, accel: str) -> ProbeResult: ...


def probe_argv(qemu: Path, accel: str, image: Path, log: Path) -> list[str]:
    """QEMU's command line for the probe: no devices but the debug console, no display."""
    chardev_path = str(log).replace(",", ",,")
    return [
        str(qemu),
        "-accel",
        accel,
        "-machine",
        "pc",
        "-m",
        "32",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-kernel",
        str(image),
        "-chardev",
        f"file,id=dbg,path={chardev_path}",
        "-device",
        f"isa-debugcon,iobase={DEBUGCON_PORT:#x},chardev=dbg",
    ]


def stage_reached(output: bytes) -> str:
    """The furthest stage the debug console output shows."""
    for marker, stage in ((MSG_DONE, "done"), (MSG_LONG, "long mode")):
        if marker in output:
            return stage
    if MSG_PROTECTED.strip() in output:
        return "protected mode"
    return "firmware" if output else "nothing"


def _watch(proc: subprocess.Popen[bytes], log: Path, start: float, timeout: float) -> str:
    """Poll the log until the done marker, QEMU's exit or the deadline; return the stage."""
    while True:
        output = log.read_bytes() if log.exists() else b""
        stage = stage_reached(output)
        if stage == "done" or proc.poll() is not None or time.monotonic() - start > timeout:
            return stage
        time.sleep(0.01)


def run_probe(qemu: Path, accel: str, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Boot the probe image under `accel`; QEMU is killed (by pid) when this returns."""
    with tempfile.TemporaryDirectory(prefix="vmkit-probe-") as tmp:
        image, log, errfile = Path(tmp, "probe.bin"), Path(tmp, "debugcon.log"), Path(tmp, "err")
        image.write_bytes(build_probe_image())
        argv = probe_argv(qemu, accel, image, log)
        start = time.monotonic()
        with errfile.open("wb") as err:
            try:
                proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
                )
            except OSError as e:
                raise LaunchFailed(argv, None, str(e)) from e
            try:
                stage = _watch(proc, log, start, timeout)
            finally:
                rc = proc.poll()
                if rc is None:
                    proc.kill()
                proc.wait(timeout=10)
        elapsed = time.monotonic() - start
        stderr = errfile.read_text(errors="replace").strip()
        output = log.read_bytes()[-OUTPUT_KEEP:] if log.exists() else b""
    if stage == "done":
        detail = f"probe boot finished in {elapsed:.2f} s"
        return ProbeResult(accel, True, elapsed, stage, detail, output, proc.pid)
    if rc is not None:
        tail = " ".join(stderr.splitlines()[-3:]) or "no message"
        detail = f"QEMU exited with code {rc} during the probe boot: {tail}"
    else:
        detail = f"probe boot did not finish within {timeout:g} s (reached: {stage})"
    return ProbeResult(accel, False, elapsed, stage, detail, output, proc.pid)


@dataclass(frozen=True)
class QemuProber:
    """The real `Prober`: runs `run_probe` with this QEMU binary and deadline."""

    qemu: Path
    timeout: float = DEFAULT_TIMEOUT

    def __call__(self, accel: str) -> ProbeResult:
        return run_probe(self.qemu, accel, self.timeout)
