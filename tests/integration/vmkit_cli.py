"""Drive the real `vmkit` CLI in integration tests, each test with its own VMKIT_ROOT.

    with vmkit_env() as vk:                      # or the `vk` fixture in conftest.py
        vk.ok("define", str(vk.domain_xml("vm1", machine="q35")))
        vk.ok("start", "vm1")
        vk.wait_console("vm1", PROMPT)
        out = vk.guest("vm1", "echo $((6*7))")   # runs a command over the serial console
        r = vk.run("start", "vm1"); assert r.returncode == 5

Also: small_tmpfs (a tiny file system to fill up), store_rows (the store's rows, to compare) and
ext4_qcow2 (a data disk the guest mounts).

On exit every QEMU still recorded (or left in the run dir) is killed by pid, and the root is
removed. The console log of a domain is in <root>/lib/log/<uuid>/console.log.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmkit.guest import BOOT_MARKER, PROMPT, GuestImage


@dataclass
class VmkitEnv:
    root: Path
    image: GuestImage | None = None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["VMKIT_ROOT"] = str(self.root)
        env.pop("VMKIT_FAULT", None)
        return env

    def run(
        self,
        *args: str,
        input: str | bytes | None = None,
        timeout: float = 120,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = self.env | (extra_env or {})
        data = input.decode() if isinstance(input, bytes) else input
        return subprocess.run(
            [sys.executable, "-m", "vmkit", *args],
            input=data if data is not None else "",
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, **kw: Any) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"vmkit {' '.join(args)} -> {r.returncode}\n{r.stderr}{r.stdout}"
        return r.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, code: int, *args: str, match: str = "", **kw: Any) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == code, (
            f"vmkit {' '.join(args)} -> {r.returncode}, want {code}\n{r.stderr}"
        )
        assert r.stderr.startswith("error: "), r.stderr
        if match:
            assert re.search(match, r.stderr), f"{match!r} not in {r.stderr!r}"
        return r.stderr

    # -- guests -------------------------------------------------------------------------------

    def domain_xml(
        self,
        name: str,
        *,
        machine: str = "q35",
        memory_mib: int = 160,
        devices: str = "",
        extra: str = "",
        cmdline_extra: str = "",
        on_crash: str | None = None,
        on_poweroff: str | None = None,
        on_reboot: str | None = None,
    ) -> Path:
        """Write a domain XML booting the tiny guest; returns its path."""
        assert self.image is not None, "VmkitEnv(image=...) needed"
        g = self.image
        cmdline = f"{g.cmdline} {cmdline_extra}".strip()
        actions = ""
        if on_poweroff:
            actions += f"<on_poweroff>{on_poweroff}</on_poweroff>"
        if on_reboot:
            actions += f"<on_reboot>{on_reboot}</on_reboot>"
        if on_crash:
            actions += f"<on_crash>{on_crash}</on_crash>"
        xml = f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='{machine}'>hvm</type>
    <kernel>{g.kernel}</kernel>
    <initrd>{g.initramfs}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  {actions}
  {extra}
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    {devices}
  </devices>
</domain>
"""
        path = self.root / f"{name}.xml"
        path.write_text(xml)
        return path

    def uuid(self, name: str) -> str:
        return self.ok("domuuid", name).strip()

    def console_log(self, name: str) -> Path:
        return self.root / "lib" / "log" / self.uuid(name) / "console.log"

    def wait_console(self, name: str, pattern: str, *, timeout: float = 60, count: int = 1) -> str:
        """Wait until the console log holds `pattern` at least `count` times."""
        log = self.console_log(name)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if text.count(pattern) >= count:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} x{count} not on {name}'s console:\n{text[-2000:]}")

    def wait_booted(self, name: str, *, count: int = 1, timeout: float = 60) -> None:
        self.wait_console(name, BOOT_MARKER, count=count, timeout=timeout)
        self.wait_console(name, PROMPT, count=count, timeout=timeout)

    def guest(self, name: str, command: str, *, timeout: float = 30) -> str:
        """Run a shell command in the guest over `vmkit console` (no TTY) and return its output."""
        marker = f"__done_{time.monotonic_ns()}__"
        r = self.run("console", name, input=f"{command}; echo {marker}\n", timeout=timeout)
        assert r.returncode == 0, r.stderr
        out = r.stdout.replace("\r", "")
        assert marker in out.split(f"echo {marker}", 1)[-1], f"no answer from guest:\n{out}"
        body = out.split(f"echo {marker}", 1)[1].split(marker, 1)[0]
        return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", body).strip("\n")

    # -- cleanup ------------------------------------------------------------------------------

    def qemu_pids(self) -> list[int]:
        pids = []
        for pidfile in (self.root / "run" / "dom").glob("*/qemu.pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pidfile.read_text().strip()))
        return pids

    def kill_all(self) -> None:
        for pid in self.qemu_pids():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if str(self.root).encode() in cmdline:
                    os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def vmkit_env(guest: GuestImage | None = None) -> Iterator[VmkitEnv]:
    root = Path(tempfile.mkdtemp(prefix="vk"))
    env = VmkitEnv(root, guest)
    try:
        yield env
    finally:
        env.kill_all()
        shutil.rmtree(root, ignore_errors=True)


def all_pids_of(root: Path) -> Sequence[int]:
    """Every process whose command line names `root` (QEMUs started under that VMKIT_ROOT)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if str(root).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
    return found


@contextlib.contextmanager
def small_tmpfs(vk: VmkitEnv, mib: int) -> Iterator[Path]:
    """A tmpfs of `mib` MiB on the test's own directory; unmounted (after QEMU died) at the end."""
    mnt = vk.root / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "vktest", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        vk.kill_all()
        for _ in range(50):
            if subprocess.run(["umount", str(mnt)], check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def store_rows(vk: VmkitEnv) -> tuple[int, list[tuple[str, str]]]:
    """(number of events, definitions) straight from the store, to prove nothing changed."""
    with contextlib.closing(sqlite3.connect(vk.root / "lib" / "vmkit.db")) as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        defs = db.execute("SELECT kind, xml FROM definitions ORDER BY kind, name").fetchall()
    return int(events), [(str(k), str(x)) for k, x in defs]


def ext4_qcow2(path: Path, mib: int = 32) -> Path:
    """A new qcow2 image at `path` holding an ext4 file system of `mib` MiB (the tiny guest
    mounts an ext4 /dev/vda at /mnt)."""
    raw = path.with_suffix(".raw")
    subprocess.run(["truncate", "-s", f"{mib}M", str(raw)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(raw)], check=True)
    subprocess.run(
        ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)], check=True
    )
    raw.unlink()
    return path


def on_a_terminal(
    env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """Run the CLI with stderr on a pty (stdout piped); (result, what the terminal got)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vmkit", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            timeout=120,
            check=False,
        )
        os.close(slave)
        slave = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return proc, drawn


def image_info(path: Path | str) -> dict[str, Any]:
    """`qemu-img info -U --output=json` of an image (readable while a QEMU holds it)."""
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info: dict[str, Any] = json.loads(out)
    return info


def image_snapshots(path: Path | str) -> list[str]:
    """The internal snapshots an image holds, in the order they were made."""
    return [s["name"] for s in image_info(path).get("snapshots", [])]
