"""The tiny guest every system boots, the domain XML they share, and watching the console.

The guest (a Debian cloud kernel + busybox initramfs) is built by `vmkit guest build` into a cache
folder (default /var/cache/vmkit-test-guest, shared with the integration tests) and copied into
the run's folder, so that all three systems boot the very same files and libvirt's DAC
relabelling never touches the shared cache.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from bench.vmkit_side import Vmkit

DEFAULT_CACHE = Path("/var/cache/vmkit-test-guest")
FALLBACK_MARKER = "VMKIT-GUEST-BOOTED"
FALLBACK_PROMPT = "vmkit-guest# "


@dataclass(frozen=True)
class Guest:
    kernel: Path
    initramfs: Path
    cmdline: str
    marker: bytes
    prompt: bytes


def prepare_guest(vmkit: Vmkit, cache: Path, into: Path) -> Guest:
    """`vmkit guest build --json --output CACHE` (reused when cached), copied into `into`."""
    result = vmkit.run("guest", "build", "--json", "--output", str(cache), timeout=900)
    image = json.loads(result.stdout)
    try:
        from vmkit.guest import BOOT_MARKER as marker
        from vmkit.guest import PROMPT as prompt
    except ImportError:
        marker, prompt = FALLBACK_MARKER, FALLBACK_PROMPT
    into.mkdir(parents=True, exist_ok=True)
    into.chmod(0o755)
    kernel = into / "vmlinuz"
    initramfs = into / "initramfs.cpio.gz"
    shutil.copyfile(image["kernel"], kernel)
    shutil.copyfile(image["initramfs"], initramfs)
    kernel.chmod(0o644)
    initramfs.chmod(0o644)
    return Guest(kernel, initramfs, image["cmdline"], marker.encode(), prompt.encode())


def domain_uuid(system: str, name: str) -> str:
    """A stable uuid per (system, name): one system's QEMU is never mistaken for another's."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"vmkit-bench/{system}/{name}"))


def domain_xml(
    guest: Guest,
    name: str,
    uuid: str,
    *,
    memory_mib: int = 256,
    console_log: Path | None = None,
) -> str:
    """The domain of the lifecycle rows: q35, TCG, direct kernel boot, a pty serial console.

    USB and the balloon are turned off (libvirt adds both by default on q35, vmkit neither), so
    both managers run the same devices. `console_log` adds `<log file>` to the serial port:
    libvirt needs it to keep what the guest prints; vmkit keeps it in its own log folder.
    """
    log = ""
    if console_log is not None:
        path = escape(str(console_log), {"'": "&apos;"})
        log = f"<log file='{path}' append='off'/>"
    return f"""<domain type='qemu'>
  <name>{escape(name)}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{escape(str(guest.kernel))}</kernel>
    <initrd>{escape(str(guest.initramfs))}</initrd>
    <cmdline>{escape(guest.cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='pty'>{log}<target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def wait_for_text(
    logs: list[tuple[Path, int]], needle: bytes, timeout: float, interval: float = 0.002
) -> float:
    """Poll each (file, offset) until `needle` appears after the offset in all of them.

    Returns time.perf_counter() of the moment the last one was seen. A file that shrinks
    (truncated by a new run) is searched from its start.
    """
    pending = dict(enumerate(logs))
    deadline = time.monotonic() + timeout
    seen_at = time.perf_counter()
    while pending:
        for index, (path, offset) in list(pending.items()):
            try:
                with path.open("rb") as f:
                    size = f.seek(0, 2)
                    f.seek(offset if size >= offset else 0)
                    data = f.read()
            except FileNotFoundError:
                continue
            if needle in data:
                seen_at = time.perf_counter()
                del pending[index]
        if not pending:
            break
        if time.monotonic() > deadline:
            names = ", ".join(str(p) for p, _ in pending.values())
            raise TimeoutError(f"no {needle.decode()!r} in {timeout:.0f} s in {names}")
        time.sleep(interval)
    return seen_at
