"""Network namespaces and veth pairs as managed commands (`vmkit netns ...`, `vmkit veth ...`):
what the seed builds by hand with `ip netns add` and `ip link add type veth`.

A namespace is a file under /run/netns, bind-mounted by the command that makes it; a command
that runs in a private mount namespace (under `ip netns exec`) makes one that vanishes with it,
so `add` refuses to work there and says what to use instead. Links are made in the namespace
vmkit runs in unless a namespace is named. Nothing here keeps state: the kernel is the record.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from vmkit.errors import Conflict, InvalidConfig, NotFound, VmkitError, WrongState
from vmkit.model.network import check_ifname
from vmkit.net.links import Links
from vmkit.net.netns import (
    check_netns_name,
    create_netns,
    delete_netns,
    list_netns,
    netns_argv,
    netns_exists,
)


def in_private_mount_namespace(mountinfo: Path = Path("/proc/self/mountinfo")) -> bool:
    """True under `ip netns exec` (or `unshare -m`): a namespace made here would not outlive us.

    Seen in how /run/netns is mounted here: a slave of another mount namespace's /run/netns
    (`master:N` without `shared:M`) takes new mounts from it but gives none back; else, when
    readable, a mount namespace other than PID 1's."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):  # the last mount on a point is the visible one
        fields = line.split(" - ", 1)[0].split()
        if len(fields) > 4 and fields[4] == "/run/netns":
            tags = fields[6:]
            master = any(t.startswith("master:") for t in tags)
            return master and not any(t.startswith("shared:") for t in tags)
    try:
        return os.readlink("/proc/self/ns/mnt") != os.readlink("/proc/1/ns/mnt")
    except OSError:
        return False  # cannot tell: let the kernel decide


def require_shared_mounts(what: str) -> None:
    if in_private_mount_namespace():
        raise WrongState(
            f"cannot {what} from a private mount namespace (as under 'ip netns exec'): the "
            "namespace would vanish when this command exits; run vmkit in the namespace with "
            "'nsenter --net=/run/netns/NAME vmkit ...' instead",
            state="private mount namespace",
            required="the host's mount namespace",
        )


def add_netns(name: str) -> None:
    """A new named namespace with its loopback up."""
    check_netns_name(name)
    require_shared_mounts(f"create namespace '{name}'")
    create_netns(name)
    try:
        with Links(name) as links:
            links.set_up("lo")
    except BaseException as err:
        try:
            delete_netns(name)
        except VmkitError as undo:
            err.add_note(f"deleting namespace '{name}' again failed too: {undo}")
        raise


def remove_netns(name: str, *, routers: Sequence[str] = ()) -> None:
    """Delete a namespace (its links go with it); a router's namespace goes with its router."""
    check_netns_name(name)
    if name in routers:
        raise Conflict(
            "netns",
            name,
            f"namespace '{name}' is router '{name}': use 'vmkit router delete {name}'",
        )
    delete_netns(name)


def namespaces() -> list[str]:
    return list_netns()


def exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs `argv` inside namespace `name`."""
    if not argv:
        raise InvalidConfig("netns exec needs a command to run (vmkit netns exec NAME -- CMD ...)")
    if not netns_exists(name):
        raise NotFound("netns", name, f"namespace not found: no namespace named '{name}'")
    return netns_argv(name, list(argv))


def add_veth(
    name: str, peer: str, *, netns: str | None = None, peer_netns: str | None = None
) -> None:
    """A veth pair `name` (in `netns`) <-> `peer` (in `peer_netns`, else beside it), both up."""
    check_ifname(name, what="veth name")
    check_ifname(peer, what="veth peer name")
    for ns in (netns, peer_netns):
        if ns is not None and not netns_exists(ns):
            raise NotFound("netns", ns, f"namespace not found: no namespace named '{ns}'")
    with Links(netns) as links:
        if links.get(name) is not None:
            raise Conflict("interface", name, f"interface '{name}' already exists")
        if peer_netns is None and links.get(peer) is not None:
            raise Conflict("interface", peer, f"interface '{peer}' already exists")
        links.add_veth(name, peer, peer_netns=peer_netns)
        try:
            links.set_up(name)
            if peer_netns is None:
                links.set_up(peer)
            else:
                with Links(peer_netns) as other:
                    other.set_up(peer)
        except BaseException as err:
            try:
                links.delete(name)
            except VmkitError as undo:
                err.add_note(f"deleting veth '{name}' again failed too: {undo}")
            raise


def delete_veth(name: str, *, netns: str | None = None) -> None:
    """Delete a veth pair by either end (the peer goes with it)."""
    check_ifname(name, what="veth name")
    with Links(netns) as links:
        link = links.get(name)
        if link is None:
            raise NotFound("interface", name, f"interface not found: no interface named '{name}'")
        if link.kind != "veth":
            raise InvalidConfig(
                f"interface '{name}' is a {link.kind or 'device'}, not a veth", value=name
            )
        links.delete(name)
