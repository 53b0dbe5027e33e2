"""The tiny test guest boots under bare QEMU (TCG) on pc, q35 and microvm and does its job:
shell on the serial console, DHCP on virtio-net, ext4 /dev/vda at /mnt, graceful ACPI powerdown.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from guestboot import RunningGuest, boot_guest

from vmkit.guest import BOOT_MARKER, GuestImage
from vmkit.qemu.qmp import QmpSession

pytestmark = pytest.mark.integration

MACHINES = ["pc", "q35", "microvm"]


def _nic_args(machine: str) -> list[str]:
    device = "virtio-net-device" if machine == "microvm" else "virtio-net-pci"
    return ["-netdev", "user,id=n0", "-device", f"{device},netdev=n0"]


def _disk_args(machine: str, image: Path, fmt: str) -> list[str]:
    device = "virtio-blk-device" if machine == "microvm" else "virtio-blk-pci"
    drive = f"file={image},format={fmt},if=none,id=d0"
    return ["-drive", drive, "-device", f"{device},drive=d0"]


def _ext4_qcow2(folder: Path) -> Path:
    """A 32 MiB ext4 disk holding hello.txt, converted to qcow2."""
    content = folder / "content"
    content.mkdir()
    (content / "hello.txt").write_text("hello from the host\n")
    raw, qcow2 = folder / "disk.raw", folder / "disk.qcow2"
    with raw.open("wb") as handle:
        handle.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(content), str(raw)], check=True)
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
        check=True,
    )
    return qcow2


def _qmp(socket_path: Path, command: str) -> None:
    with QmpSession.connect(socket_path) as qmp:
        qmp.execute(command)


@pytest.mark.parametrize("machine", MACHINES)
def test_boots_to_a_shell(tiny_guest: GuestImage, machine: str) -> None:
    with boot_guest(tiny_guest, machine=machine) as guest:
        seconds = guest.wait_booted(timeout=60)
        print(f"{machine}: marker and prompt after {seconds:.2f} s")
        assert guest.console.run("echo $((6*7))") == "42"
        assert guest.log_text().count(BOOT_MARKER) == 1


def test_kernel_keeps_quiet(tiny_guest: GuestImage, booted_guest: RunningGuest) -> None:
    """The guest runs the built kernel, and nothing comes before the marker (quiet boot)."""
    assert booted_guest.console.run("uname -r") == tiny_guest.kernel_version
    assert booted_guest.log_text().split(BOOT_MARKER)[0].strip() == ""


@pytest.mark.parametrize("machine", ["q35", "microvm"])
def test_dhcp_configures_eth0(tiny_guest: GuestImage, machine: str) -> None:
    with boot_guest(tiny_guest, machine=machine, extra_args=_nic_args(machine)) as guest:
        guest.wait_booted()
        for _ in range(40):  # resolv.conf is the udhcpc script's last step (address, route)
            if "nameserver 10.0.2.3" in guest.console.run("cat /etc/resolv.conf"):
                break
            guest.console.run("sleep 0.25")
        else:
            pytest.fail("the DHCP lease was never applied (no nameserver in /etc/resolv.conf)")
        assert "10.0.2.15/24" in guest.console.run("ip -4 addr show dev eth0")
        assert "default via 10.0.2.2 dev eth0" in guest.console.run("ip -4 route")


@pytest.mark.parametrize("machine", ["q35", "microvm"])
def test_ext4_disk_is_mounted(tiny_guest: GuestImage, machine: str, tmp_path: Path) -> None:
    disk = _ext4_qcow2(tmp_path)
    with boot_guest(
        tiny_guest, machine=machine, extra_args=_disk_args(machine, disk, "qcow2")
    ) as guest:
        guest.wait_booted()
        mounts = guest.console.run("grep ' /mnt ' /proc/mounts")
        assert mounts.startswith("/dev/vda /mnt ext4 rw")
        assert guest.console.run("cat /mnt/hello.txt") == "hello from the host"


def test_blank_disk_is_left_alone(tiny_guest: GuestImage, tmp_path: Path) -> None:
    blank = tmp_path / "blank.raw"
    with blank.open("wb") as handle:
        handle.truncate(8 << 20)
    with boot_guest(tiny_guest, extra_args=_disk_args("q35", blank, "raw")) as guest:
        guest.wait_booted()
        assert guest.console.run("ls /dev/vda") == "/dev/vda"
        assert guest.console.run("grep -c ' /mnt ' /proc/mounts") == "0"
        assert "EXT4-fs" not in guest.log_text()


@pytest.mark.parametrize("machine", MACHINES)
def test_system_powerdown_is_graceful(tiny_guest: GuestImage, machine: str) -> None:
    """Pressed right after the marker (acpid is listening by then), before the prompt."""
    with boot_guest(tiny_guest, machine=machine) as guest:
        guest.console.expect(re.escape(BOOT_MARKER), timeout=60)
        _qmp(guest.qmp_socket, "system_powerdown")
        assert guest.wait_exit(timeout=10) == 0
        assert "The system is going down" in guest.log_text()


def test_poweroff_inside_the_guest(booted_guest: RunningGuest) -> None:
    booted_guest.console.send("poweroff\n")
    assert booted_guest.wait_exit(timeout=10) == 0


def test_reboot_inside_the_guest(tiny_guest: GuestImage) -> None:
    with boot_guest(tiny_guest, extra_args=["-no-reboot"]) as guest:
        guest.wait_booted()
        guest.console.send("reboot\n")
        assert guest.wait_exit(timeout=10) == 0
