"""Taps for domain NICs: created persistent and owned before QEMU starts, deleted after it stops.

QEMU may run as an unprivileged user (`-runas`), which cannot create taps, so vmkit creates each
one first (owned by that uid/gid), gives it the guest MAC with the first byte 0xfe (so the bridge
never adopts the guest's MAC, as libvirt does), the bridge's MTU, enslaves it and sets it up;
QEMU then opens it by name. A failure half way deletes the tap again.
"""

from __future__ import annotations

from collections.abc import Collection

from vmkit.errors import Conflict, InvalidConfig, NetlinkFailed, NotFound
from vmkit.model.network import check_ifname, check_mac
from vmkit.net.links import Links, is_missing


def tap_mac(guest_mac: str) -> str:
    """The MAC of the host side of a guest NIC: the guest's with the first byte 0xfe."""
    check_mac(guest_mac)
    return "fe" + guest_mac.lower()[2:]


def pick_tap_name(taken: Collection[str], prefix: str = "vnet") -> str:
    """The first `prefix<N>` not in `taken` (libvirt names its taps vnet0, vnet1, ...)."""
    n = 0
    while f"{prefix}{n}" in taken:
        n += 1
    check_ifname(f"{prefix}{n}", what="tap name")
    return f"{prefix}{n}"


def create_tap(
    name: str,
    bridge: str | None = None,
    *,
    mtu: int | None = None,
    owner: int | None = None,
    group: int | None = None,
    mac: str | None = None,
    netns: str | None = None,
) -> None:
    """A persistent tap `name`, owned by `owner`/`group`, enslaved to `bridge` and up."""
    check_ifname(name, what="tap name")
    with Links(netns) as links:
        if links.get(name) is not None:
            raise Conflict("interface", name, f"interface '{name}' already exists")
        br = None
        if bridge is not None:
            br = links.get(bridge)
            if br is None:
                raise NotFound("bridge", bridge, f"bridge not found: no bridge named '{bridge}'")
            if br.kind != "bridge":
                raise InvalidConfig(f"interface '{bridge}' is not a bridge", value=bridge)
        links.add_tap(name, uid=owner, gid=group)
        try:
            if mac is not None:
                links.set_mac(name, mac)
            want_mtu = mtu if mtu is not None else (br.mtu if br is not None else None)
            if want_mtu:
                links.set_mtu(name, want_mtu)
            if bridge is not None:
                links.set_master(name, bridge)
            links.set_up(name)
        except BaseException as err:
            try:
                links.delete(name)
            except Exception as undo:  # the first error is the one to report
                err.add_note(f"deleting tap {name} again failed too: {undo}")
            raise


def delete_tap(name: str, netns: str | None = None) -> bool:
    """Delete tap `name`; False when it was already gone."""
    check_ifname(name, what="tap name")
    with Links(netns) as links:
        try:
            links.delete(name)
        except NotFound:
            return False
        except NetlinkFailed as e:
            if is_missing(e):
                return False
            raise
    return True
