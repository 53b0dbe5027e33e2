"""The file system of an `fs` pool: probe it (blkid), make it (mkfs.TYPE), mount it on the
pool's target (a regular file, a disk image, through a loop device) and unmount it.

Owns only these host commands and the reading of /proc/self/mountinfo; which pool is active
is the engine's business. Paths are absolute (checked by the model) and go to the commands as
separate arguments after `--` where the tool accepts it; never through a shell.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from vmkit.errors import CommandFailed, InvalidConfig, NotFound, StorageError

# mkfs of each format vmkit can build, and its "force, quiet" arguments
_MKFS: dict[str, list[str]] = {
    "ext2": ["mkfs.ext2", "-F", "-q"],
    "ext3": ["mkfs.ext3", "-F", "-q"],
    "ext4": ["mkfs.ext4", "-F", "-q"],
    "xfs": ["mkfs.xfs", "-f", "-q"],
    "vfat": ["mkfs.vfat"],
}
BUILD_DEFAULT = "ext4"  # what pool-build makes when the format is 'auto' or not given


def check_device(device: str, pool: str) -> None:
    """The source device exists and is a block device or a regular file (an image)."""
    try:
        mode = os.stat(device).st_mode
    except FileNotFoundError:
        raise NotFound(
            "pool source device", device, f"pool '{pool}': source device '{device}' does not exist"
        ) from None
    except OSError as exc:
        raise StorageError(f"pool '{pool}': cannot use '{device}': {exc.strerror}") from exc
    if not (stat.S_ISBLK(mode) or stat.S_ISREG(mode)):
        raise InvalidConfig(
            f"pool '{pool}': source device '{device}' is neither a block device nor an image file",
            xpath="/pool/source/device/@path",
            value=device,
        )


def probe(device: str) -> str | None:
    """The file system type on `device` (blkid's TYPE), or None when it holds none."""
    argv = ["blkid", "-p", "-o", "value", "-s", "TYPE", "--", device]
    proc = _run(argv, check=False)
    if proc.returncode == 2:  # blkid: nothing found
        return None
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr)
    return proc.stdout.strip() or None


def make(device: str, fmt: str | None) -> str:
    """Make a file system of `fmt` ('auto'/None: ext4) on `device`; returns the type made."""
    kind = BUILD_DEFAULT if fmt in (None, "auto") else fmt
    base = _MKFS.get(kind)
    if base is None:
        raise StorageError(
            f"cannot build a '{kind}' file system: vmkit builds {', '.join(sorted(_MKFS))}"
        )
    if shutil.which(base[0]) is None:
        raise NotFound("command", base[0], f"cannot build a '{kind}' file system: no {base[0]}")
    argv = [*base, device]
    proc = _run(argv, check=False)
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr or proc.stdout)
    return kind


def mounted_source(target: str) -> str | None:
    """What is mounted on `target` (the source as mountinfo names it), or None."""
    want = os.path.realpath(target)
    found = None
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 10 or _unescape(fields[4]) != want:
            continue
        sep = fields.index("-", 6)
        found = _unescape(fields[sep + 2])  # the last mount on top wins
    return found


def same_device(source: str, device: str) -> bool:
    """Whether mountinfo's `source` is `device` (directly, or the loop device over the image)."""
    if os.path.realpath(source) == os.path.realpath(device):
        return True
    name = os.path.basename(source)
    backing = Path("/sys/block") / name / "loop" / "backing_file"
    try:
        return os.path.realpath(backing.read_text().strip()) == os.path.realpath(device)
    except OSError:
        return False


def mount(device: str, target: str, fmt: str | None) -> None:
    """Mount `device` on `target` (an image file through a loop device, freed at unmount)."""
    argv = ["mount"]
    if fmt not in (None, "auto"):
        argv += ["-t", str(fmt)]
    if os.path.isfile(device):
        argv += ["-o", "loop"]
    argv += ["--", device, target]
    proc = _run(argv, check=False)
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr or proc.stdout)


def unmount(target: str) -> None:
    """Unmount `target`; a busy file system is an error that says so."""
    argv = ["umount", "--", target]
    proc = _run(argv, check=False)
    if proc.returncode != 0:
        why = (proc.stderr or proc.stdout).strip()
        if "busy" in why:
            raise StorageError(
                f"cannot unmount '{target}': it is busy (is a volume in use by a running "
                "domain, or a shell inside it?)"
            )
        raise CommandFailed(argv, proc.returncode, why)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _run(argv: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - argv list, no shell
            argv, capture_output=True, text=True, check=check, timeout=120
        )
    except FileNotFoundError as exc:
        raise NotFound("command", argv[0], f"{argv[0]} is not installed") from exc
