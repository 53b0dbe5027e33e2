"""`fs` pools through the real CLI: a file system on a disk image (a loop device), made by
pool-build --no-overwrite / --overwrite, mounted by pool-start on the target, unmounted by
pool-destroy (refused while a running domain holds a volume), and the volumes living on it.

Mounts happen in the test's own temporary directory; every mount and loop device is released
at the end, also when a test fails."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmkit_cli import VmkitEnv

pytestmark = pytest.mark.integration


def _mounted(target: Path) -> str | None:
    """The source mounted on `target`, from /proc/self/mountinfo."""
    want = os.path.realpath(target)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if fields[4] == want:
            return fields[fields.index("-", 6) + 2]
    return None


def _loops_of(image: Path) -> list[str]:
    """Loop devices whose backing file is `image`."""
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(OSError):
            if os.path.realpath(backing.read_text().strip()) == os.path.realpath(image):
                found.append(backing.parents[1].name)
    return found


def _fs_type(image: Path) -> str:
    out = subprocess.run(
        ["blkid", "-p", "-o", "value", "-s", "TYPE", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


@contextlib.contextmanager
def fs_image(vk: VmkitEnv, mib: int = 64) -> Iterator[tuple[Path, Path]]:
    """(image, target): an empty image file and a target path, both under the test's root."""
    image, target = vk.root / "fs.img", vk.root / "mnt"
    with image.open("wb") as f:
        f.truncate(mib << 20)
    try:
        yield image, target
    finally:
        vk.kill_all()
        for _ in range(50):
            if _mounted(target) is None:
                break
            subprocess.run(["umount", str(target)], check=False, capture_output=True)
            time.sleep(0.1)
        assert _mounted(target) is None, f"{target} still mounted"
        for loop in _loops_of(image):
            subprocess.run(["losetup", "-d", f"/dev/{loop}"], check=False)


def test_fs_pool_life(vk: VmkitEnv) -> None:
    with fs_image(vk) as (image, target):
        vk.ok(
            "pool-define-as", "fp", "fs", "--source-dev", str(image),
            "--source-format", "ext4", "--target", str(target),
        )  # fmt: skip
        xml = vk.ok("pool-dumpxml", "fp")
        assert f"<device path='{image}'/>" in xml and "<format type='ext4'/>" in xml
        vk.fails(3, "pool-start", "fp", match="does not exist .pool-build creates it")
        vk.ok("pool-build", "fp")  # neither flag: only the directory, as virsh
        assert target.is_dir() and _fs_type(image) == ""
        vk.fails(1, "pool-start", "fp", match="holds no file system .* --no-overwrite")
        assert _mounted(target) is None
        vk.fails(2, "pool-build", "fp", "--overwrite", "--no-overwrite", match="exclusive")

        vk.ok("pool-build", "fp", "--no-overwrite")
        assert _fs_type(image) == "ext4"
        vk.fails(
            4, "pool-build", "fp", "--no-overwrite", match=r"already holds a file system \(ext4\)"
        )

        vk.ok("pool-start", "fp")
        assert _mounted(target) is not None and len(_loops_of(image)) == 1
        assert os.stat(target).st_dev != os.stat(vk.root).st_dev
        info = vk.json("pool-info", "fp")
        assert info["state"] == "running"
        assert 40 << 20 < info["capacity"] <= 64 << 20  # the image's file system, not the host's
        vk.ok("vol-create-as", "fp", "v1", "8M", "--format", "qcow2")
        assert (target / "v1").is_file()
        vk.fails(5, "pool-build", "fp", "--overwrite", match="already active")

        vk.ok("pool-destroy", "fp")
        assert _mounted(target) is None and _loops_of(image) == []
        assert not (target / "v1").exists()  # the volume lives in the image, not the directory
        vk.ok("pool-start", "fp")
        assert [v["name"] for v in vk.json("vol-list", "fp")] == ["v1"]
        vk.ok("pool-destroy", "fp")

        vk.ok("pool-build", "fp", "--overwrite")  # a new, empty file system
        vk.ok("pool-start", "fp")
        assert vk.json("vol-list", "fp") == []
        vk.ok("pool-destroy", "fp")
        vk.ok("pool-delete", "fp")
        assert not target.exists() and image.exists()
        vk.ok("pool-undefine", "fp")


def test_busy_fs_pool_stays_mounted(vk: VmkitEnv) -> None:
    with fs_image(vk) as (image, target):
        target.mkdir()
        vk.ok(
            "pool-create-as", "fp", "fs", "--source-dev", str(image), "--target", str(target),
            "--build", "--no-overwrite",
        )  # fmt: skip
        assert _mounted(target) is not None and _fs_type(image) == "ext4"
        vk.ok("vol-create-as", "fp", "data", "16M", "--format", "qcow2")
        disk = (
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{target / 'data'}'/><target dev='vdb' bus='virtio'/></disk>"
        )
        vk.ok("define", str(vk.domain_xml("vm", devices=disk)))
        vk.ok("start", "vm")
        vk.wait_booted("vm")
        vk.fails(1, "pool-destroy", "fp", match="busy .*in use by a running domain")
        assert _mounted(target) is not None
        assert vk.json("pool-info", "fp")["state"] == "running"
        vk.ok("destroy", "vm")
        vk.ok("pool-destroy", "fp")  # a transient pool: gone with its mount
        assert _mounted(target) is None and _loops_of(image) == []
        assert vk.run("pool-info", "fp").returncode == 3
