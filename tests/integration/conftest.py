"""Fixtures shared by the integration tests: the tiny guest, built once and cached across runs.

    tiny_guest      (session) GuestImage in /var/cache/vmkit-test-guest
    booted_guest    a q35 QEMU on the tiny guest, at its shell prompt (guestboot.RunningGuest)

To boot it yourself: `from guestboot import boot_guest` (see guestboot.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from guestboot import RunningGuest, boot_guest
from vmkit_cli import VmkitEnv, vmkit_env

from vmkit.guest import GuestImage, build_guest

GUEST_CACHE = Path("/var/cache/vmkit-test-guest")


@pytest.fixture(scope="session")
def tiny_guest() -> GuestImage:
    """The tiny test guest; the first session builds it (about 5 s), later ones reuse it."""
    return build_guest(GUEST_CACHE, progress=lambda message: print(f"tiny guest: {message}"))


@pytest.fixture
def booted_guest(tiny_guest: GuestImage) -> Iterator[RunningGuest]:
    """A q35 guest (256 MiB, no NIC, no disk) booted to its prompt; killed afterwards."""
    with boot_guest(tiny_guest, machine="q35") as guest:
        guest.wait_booted()
        yield guest


@pytest.fixture
def vk(tiny_guest: GuestImage) -> Iterator[VmkitEnv]:
    """A private VMKIT_ROOT and a runner for the real CLI (see vmkit_cli.py); cleans up QEMUs."""
    with vmkit_env(tiny_guest) as env:
        yield env
