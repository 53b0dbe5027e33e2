"""Building the tiny test guest: a Debian cloud kernel + a busybox initramfs, cached in a folder.

The build downloads `linux-image-6.1.0-N-cloud-amd64` (the newest N apt offers) and
`busybox-static` with apt-get, unpacks them in a temporary folder beside the output folder,
packs the initramfs in Python and renames the result into place, so a killed build never
leaves a half guest. `manifest.json`, written last, marks a complete build; it records a digest
of the recipe (the files under guest/files, the module list, the command line), so a changed
recipe is rebuilt. What the guest does at boot lives in guest/files/init.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from vmkit.guest.apt import Apt, CommandRunner, KernelPackage, deb_version, run_command
from vmkit.guest.cpio import Archive
from vmkit.guest.errors import GuestBuildError
from vmkit.guest.modules import OPTIONAL_MODULES, REQUIRED_MODULES, GuestModule, ModuleTree

BOOT_MARKER = "VMKIT-GUEST-BOOTED"  # printed by guest/files/init on the console
PROMPT = "vmkit-guest# "  # PS1 of the guest's shells (guest/files/profile)
# Recommended kernel command line. "quiet" keeps the kernel to errors; the marker is printed by
# /init and stays visible. For microvm the caller adds tsc_early_khz=... tsc=reliable.
CMDLINE = "console=ttyS0 panic=-1 quiet"

KERNEL_FILE = "vmlinuz"
INITRAMFS_FILE = "initramfs.cpio.gz"
MANIFEST_FILE = "manifest.json"
FORMAT = 1
BUSYBOX_PACKAGE = "busybox-static"

# (file under guest/files, path in the guest, mode)
GUEST_FILES = (
    ("init", "init", 0o755),
    ("inittab", "etc/inittab", 0o644),
    ("profile", "etc/profile", 0o644),
    ("udhcpc.script", "etc/udhcpc.script", 0o755),
    ("acpi-power", "etc/acpi/PWRF/00000080", 0o755),
    ("passwd", "etc/passwd", 0o644),
    ("group", "etc/group", 0o644),
)
GUEST_DIRS = ("proc", "sys", "dev", "run", "mnt", "var/log")
# usrmerge-style: every applet lives in /bin; the other bin folders point there.
BIN_LINKS = (("sbin", "bin"), ("usr/bin", "../bin"), ("usr/sbin", "../bin"), ("var/run", "../run"))


@dataclass(frozen=True)
class GuestImage:
    """A built guest: what to pass to QEMU's -kernel, -initrd and -append."""

    kernel: Path
    initramfs: Path
    kernel_version: str  # uname -r inside the guest, e.g. 6.1.0-56-cloud-amd64
    cmdline: str


def recipe_digest() -> str:
    """sha256 over everything that decides the guest's contents besides the Debian packages."""
    digest = hashlib.sha256()
    recipe = [FORMAT, CMDLINE, REQUIRED_MODULES, OPTIONAL_MODULES, GUEST_FILES, GUEST_DIRS]
    digest.update(json.dumps([*recipe, BIN_LINKS]).encode())
    for name, _, _ in GUEST_FILES:
        digest.update(_guest_file(name))
    return digest.hexdigest()


def cached_guest(output_dir: Path) -> GuestImage | None:
    """The guest in `output_dir` if a complete build of the current recipe is there."""
    try:
        manifest = json.loads((output_dir / MANIFEST_FILE).read_text())
        if manifest.get("format") != FORMAT or manifest.get("recipe") != recipe_digest():
            return None
        image = GuestImage(
            kernel=output_dir / manifest["kernel"],
            initramfs=output_dir / manifest["initramfs"],
            kernel_version=str(manifest["kernel_version"]),
            cmdline=str(manifest["cmdline"]),
        )
        sizes = manifest["sizes"]
        if image.kernel.stat().st_size != sizes["kernel"]:
            return None
        if image.initramfs.stat().st_size != sizes["initramfs"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return image


def build_guest(
    output_dir: Path,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    run: CommandRunner = run_command,
) -> GuestImage:
    """Build the guest into `output_dir`, or return the cached one unless `force`."""
    output_dir = output_dir.absolute()
    say = progress or (lambda _message: None)
    if not force and (image := cached_guest(output_dir)) is not None:
        return image
    try:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        with _locked(output_dir.parent / f".{output_dir.name}.lock"):
            if not force and (image := cached_guest(output_dir)) is not None:
                return image  # another process built it while we waited
            _remove_leftovers(output_dir)
            staging = Path(
                tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent)
            )
            try:
                _build_into(staging, run, say)
                _replace_dir(staging, output_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise GuestBuildError(f"cannot build the guest in {output_dir}: {exc}") from exc
    image = cached_guest(output_dir)
    if image is None:
        raise GuestBuildError(f"the guest built in {output_dir} does not read back")
    say(f"guest ready in {output_dir}")
    return image


def _build_into(staging: Path, run: CommandRunner, say: Callable[[str], None]) -> None:
    """Download, unpack and pack into `staging`: kernel, initramfs, then the manifest."""
    staging.chmod(0o755)
    apt = Apt(run, say)
    work = staging / "work"
    (work / "debs").mkdir(parents=True)
    say("looking up the newest Debian cloud kernel")
    kernel = apt.find_kernel()
    kernel_deb = apt.download(kernel.name, work / "debs")
    busybox_deb = apt.download(BUSYBOX_PACKAGE, work / "debs")
    say(f"unpacking {kernel_deb.name}")
    apt.unpack(kernel_deb, work / "kernel")
    apt.unpack(busybox_deb, work / "busybox")
    vmlinuz = work / "kernel" / "boot" / f"vmlinuz-{kernel.release}"
    if not vmlinuz.is_file():
        raise GuestBuildError(f"{kernel_deb.name} holds no boot/vmlinuz-{kernel.release}")
    busybox = _find_busybox(work / "busybox")
    tree = ModuleTree(work / "kernel" / "lib" / "modules" / kernel.release)
    modules = tree.select(REQUIRED_MODULES, OPTIONAL_MODULES)
    say(f"packing the initramfs ({len(modules)} modules)")
    archive = _guest_archive(busybox, _applets(busybox, run), kernel.release, modules)
    archive.add_file(
        f"lib/modules/{kernel.release}/modules.dep", tree.modules_dep(modules).encode()
    )
    initramfs = gzip.compress(archive.to_bytes(), compresslevel=9, mtime=0)
    shutil.copyfile(vmlinuz, staging / KERNEL_FILE)
    (staging / INITRAMFS_FILE).write_bytes(initramfs)
    shutil.rmtree(work)
    manifest = _manifest(kernel, deb_version(busybox_deb), staging, modules)
    partial = staging / f"{MANIFEST_FILE}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    for path in staging.iterdir():
        path.chmod(0o644)
    os.replace(partial, staging / MANIFEST_FILE)


def _guest_archive(
    busybox: Path, applets: list[str], release: str, modules: list[GuestModule]
) -> Archive:
    archive = Archive()
    for path in GUEST_DIRS:
        archive.add_dir(path)
    archive.add_dir("root", 0o700)
    archive.add_dir("tmp", 0o1777)
    archive.add_char_device("dev/console", 5, 1)
    archive.add_char_device("dev/null", 1, 3, 0o666)
    archive.add_file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in applets:
        if f"bin/{applet}" not in archive:
            archive.add_symlink(f"bin/{applet}", "busybox")
    for path, target in BIN_LINKS:
        archive.add_symlink(path, target)
    for name, path, mode in GUEST_FILES:
        archive.add_file(path, _guest_file(name), mode)
    for module in modules:
        archive.add_file(f"lib/modules/{release}/{module.path}", module.data)
    archive.add_file("etc/modules", "".join(f"{m.path}\n" for m in modules).encode())
    return archive


def _applets(busybox: Path, run: CommandRunner) -> list[str]:
    """The applet names the busybox binary offers (`busybox --list`)."""
    result = run([str(busybox), "--list"])
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.rc != 0 or "sh" not in names or "init" not in names:
        raise GuestBuildError(f"{busybox} --list failed (exit code {result.rc}): {result.stderr}")
    return [name for name in names if "/" not in name and name != "busybox"]


def _find_busybox(root: Path) -> Path:
    for candidate in (root / "bin" / "busybox", root / "usr" / "bin" / "busybox"):
        if candidate.is_file():
            return candidate
    raise GuestBuildError(f"{BUSYBOX_PACKAGE} holds no bin/busybox")


def _manifest(
    kernel: KernelPackage, busybox_version: str, staging: Path, modules: list[GuestModule]
) -> dict[str, object]:
    return {
        "format": FORMAT,
        "recipe": recipe_digest(),
        "kernel": KERNEL_FILE,
        "initramfs": INITRAMFS_FILE,
        "kernel_version": kernel.release,
        "kernel_package": kernel.name,
        "kernel_package_version": kernel.version,
        "busybox_package_version": busybox_version,
        "cmdline": CMDLINE,
        "modules": [module.name for module in modules],
        "sizes": {
            "kernel": (staging / KERNEL_FILE).stat().st_size,
            "initramfs": (staging / INITRAMFS_FILE).stat().st_size,
        },
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _guest_file(name: str) -> bytes:
    return resources.files("vmkit.guest").joinpath("files", name).read_bytes()


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_file` (one build per output folder at a time)."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(output_dir: Path) -> None:
    """Staging and retired folders of builds that were killed (we hold the lock)."""
    for prefix in (f".{output_dir.name}.tmp-", f".{output_dir.name}.old-"):
        for path in output_dir.parent.glob(f"{prefix}*"):
            shutil.rmtree(path, ignore_errors=True)


def _replace_dir(staging: Path, output_dir: Path) -> None:
    """Rename `staging` to `output_dir`, moving an existing one out of the way first."""
    if output_dir.exists() or output_dir.is_symlink():
        retired = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
        os.replace(output_dir, retired / "guest")
        os.replace(staging, output_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, output_dir)
