"""The tiny test guest: a Debian cloud kernel + busybox initramfs that boots to a serial shell.

    build_guest(output_dir, *, force=False, progress=None) -> GuestImage   build or reuse
    cached_guest(output_dir) -> GuestImage | None                          reuse only
    GuestImage(kernel, initramfs, kernel_version, cmdline)                 -kernel/-initrd/-append
    BOOT_MARKER   the line /init prints on the console once modules, disk and DHCP are set up
    PROMPT        the shell prompt on ttyS0 (and hvc0); wait for it before typing

The guest loads the virtio (pci + mmio) block, net and console drivers, runs udhcpc on eth0,
mounts an ext4 /dev/vda at /mnt, powers off on the ACPI power button (QMP system_powerdown) and
runs busybox init, so `poweroff` and `reboot` inside it work. On microvm, add
`tsc_early_khz=<host kHz> tsc=reliable` to the command line. Errors are `GuestBuildError`
(`PackageFetchFailed` when apt-get download fails), both `VmkitError`s.
"""

from vmkit.guest.build import (
    BOOT_MARKER,
    CMDLINE,
    PROMPT,
    GuestImage,
    build_guest,
    cached_guest,
)
from vmkit.guest.errors import GuestBuildError, PackageFetchFailed

__all__ = [
    "BOOT_MARKER",
    "CMDLINE",
    "PROMPT",
    "GuestBuildError",
    "GuestImage",
    "PackageFetchFailed",
    "build_guest",
    "cached_guest",
]
