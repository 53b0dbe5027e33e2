"""build_guest / cached_guest with a fake apt: the output folder, the cache, the guest files."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import pytest
from fakedeb import KERNEL, RELEASE, FakeDebian, read_newc

from vmkit.guest import BOOT_MARKER, CMDLINE, PROMPT, GuestBuildError, build_guest, cached_guest
from vmkit.guest.build import GUEST_FILES, MANIFEST_FILE


def _guest_file(name: str) -> str:
    return resources.files("vmkit.guest").joinpath("files", name).read_text()


def test_init_prints_the_marker_and_profile_sets_the_prompt() -> None:
    init = _guest_file("init")
    assert f'echo "{BOOT_MARKER}"' in init
    assert init.rstrip().endswith("exec /bin/init")
    assert f"export PS1='{PROMPT}'" in _guest_file("profile")
    assert "ttyS0::respawn:-/bin/sh" in _guest_file("inittab")
    assert "poweroff" in _guest_file("acpi-power")


def test_every_guest_file_is_shipped() -> None:
    shipped = {path.name for path in resources.files("vmkit.guest").joinpath("files").iterdir()}
    assert {name for name, _, _ in GUEST_FILES} <= shipped


def _members(initramfs: Path) -> dict[str, tuple[int, bytes]]:
    return {
        name: (mode, data)
        for name, mode, data, _ in read_newc(gzip.decompress(initramfs.read_bytes()))
    }


def test_build_writes_kernel_initramfs_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "guest"
    messages: list[str] = []
    image = build_guest(out, progress=messages.append, run=FakeDebian())
    assert image.kernel == out / "vmlinuz"
    assert image.kernel.read_bytes() == b"bzImage" * 100
    assert (image.kernel_version, image.cmdline) == (RELEASE, CMDLINE)
    assert sorted(p.name for p in out.iterdir()) == [
        "initramfs.cpio.gz",
        "manifest.json",
        "vmlinuz",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".guest.lock", "guest"]
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["kernel_package"] == KERNEL
    assert manifest["busybox_package_version"] == "1:1.35.0-4"
    assert any("downloading" in message for message in messages)

    members = _members(image.initramfs)
    assert members["init"][1] == _guest_file("init").encode()
    assert members["bin/sh"][1] == b"busybox"
    assert members["etc/acpi/PWRF/00000080"][0] & 0o111
    modules = members["etc/modules"][1].decode().split()
    assert modules[0] == "kernel/drivers/virtio/virtio_ring.ko"
    assert modules[-1] == "kernel/drivers/input/evdev.ko"
    assert f"lib/modules/{RELEASE}/kernel/drivers/net/virtio_net.ko" in members
    assert f"lib/modules/{RELEASE}/modules.dep" in members


def test_second_build_is_served_from_the_cache(tmp_path: Path) -> None:
    first = build_guest(tmp_path / "guest", run=FakeDebian())
    fake = FakeDebian()
    assert build_guest(tmp_path / "guest", run=fake) == first
    assert fake.calls == []
    assert cached_guest(tmp_path / "guest") == first


def test_force_rebuilds(tmp_path: Path) -> None:
    build_guest(tmp_path / "guest", run=FakeDebian())
    fake = FakeDebian()
    build_guest(tmp_path / "guest", force=True, run=fake)
    assert any("download" in call for call in fake.calls)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".guest.lock", "guest"]


def test_failed_build_leaves_the_old_guest_and_no_leftovers(tmp_path: Path) -> None:
    old = build_guest(tmp_path / "guest", run=FakeDebian())
    with pytest.raises(GuestBuildError, match="unexpected end of file"):
        build_guest(tmp_path / "guest", force=True, run=FakeDebian(fail_unpack=True))
    assert cached_guest(tmp_path / "guest") == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [".guest.lock", "guest"]


def test_leftovers_of_a_killed_build_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".guest.tmp-abc123" / "work").mkdir(parents=True)
    build_guest(tmp_path / "guest", run=FakeDebian())
    assert not (tmp_path / ".guest.tmp-abc123").exists()


@pytest.mark.parametrize(
    "damage", ["no manifest", "truncated initramfs", "other recipe", "bad json"]
)
def test_incomplete_or_stale_builds_are_not_served(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "guest"
    build_guest(out, run=FakeDebian())
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    if damage == "no manifest":
        (out / MANIFEST_FILE).unlink()
    elif damage == "truncated initramfs":
        (out / "initramfs.cpio.gz").write_bytes(b"\x1f\x8b")
    elif damage == "other recipe":
        manifest["recipe"] = "0" * 64
        (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    else:
        (out / MANIFEST_FILE).write_text("{")
    assert cached_guest(out) is None
    assert cached_guest(tmp_path / "nothing-here") is None
