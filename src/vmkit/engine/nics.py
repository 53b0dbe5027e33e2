"""Host side of a domain's NICs: the taps vmkit makes before QEMU starts and removes after.

Types network and bridge get a tap enslaved to the network's (or the named) bridge; ethernet
gets a bare tap and, when `<script path>` is set, that script is run with the tap's name (the
seed's qemu-ifup habit); user needs nothing. Tap names come from `<target dev>` or are made from
the domain id (`vk<id>n<index>`), are recorded before any tap exists, and are deleted on stop,
on a failed start and by reconcile after a crash.

When a network is started again (net-destroy + net-start, or net-start --force after its bridge
vanished), the taps of running domains on it have lost their bridge: `replug_taps` enslaves them
to the new one and sets them up, as libvirt does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from vmkit.engine.context import Context
from vmkit.errors import Conflict, InvalidConfig, NetlinkFailed, NotFound, VmkitError
from vmkit.model.devices import Interface, InterfaceType
from vmkit.model.domain import Domain

_TAP_TYPES = (InterfaceType.NETWORK, InterfaceType.BRIDGE, InterfaceType.ETHERNET)
_RESERVED_PREFIXES = ("vnet", "vif", "macvtap", "macvlan")


@dataclass(frozen=True)
class TapPlan:
    index: int
    name: str
    bridge: str | None
    mtu: int | None
    mac: str | None
    script: str | None


def tap_names(dom: Domain, domain_id: int) -> dict[int, str]:
    """Interface index -> tap name for the NICs that need a tap."""
    names: dict[int, str] = {}
    for i, nic in enumerate(dom.devices.interfaces):
        if nic.type not in _TAP_TYPES:
            continue
        wanted = nic.target_dev
        if wanted and not wanted.startswith(_RESERVED_PREFIXES):
            names[i] = wanted
        else:
            names[i] = f"vk{domain_id}n{i}"
    return names


def plan_taps(ctx: Context, dom: Domain, names: dict[int, str]) -> list[TapPlan]:
    """Resolve networks and bridges (starting 'default' on first use); no host change yet."""
    plans: list[TapPlan] = []
    if not names:
        return plans
    from vmkit.net.links import Links

    with Links() as links:
        existing = {link.name for link in links.links()}
    for i, name in sorted(names.items()):
        nic = dom.devices.interfaces[i]
        if name in existing:
            raise Conflict(
                "interface", name, f"tap '{name}' of domain '{dom.name}' already exists on the host"
            )
        bridge, mtu = None, nic.mtu_size
        if nic.type == InterfaceType.NETWORK:
            bridge, mtu = _network_bridge(ctx, nic, mtu)
        elif nic.type == InterfaceType.BRIDGE:
            bridge = nic.source_bridge
            if not bridge or bridge not in existing:
                raise NotFound(
                    "bridge",
                    bridge or "",
                    f"interface {i + 1} of domain '{dom.name}': bridge '{bridge}' does not exist",
                )
        plans.append(TapPlan(i, name, bridge, mtu, nic.mac_address, nic.script_path))
    return plans


def _network_bridge(ctx: Context, nic: Interface, mtu: int | None) -> tuple[str, int | None]:
    from vmkit.engine.networks import attach_point

    if not nic.source_network:
        raise InvalidConfig(
            "interface of type 'network' needs <source network='...'/>",
            xpath="/domain/devices/interface/source/@network",
        )
    point = attach_point(ctx, nic.source_network)
    return point.bridge, mtu or point.mtu


def create_taps(plans: Iterable[TapPlan]) -> list[str]:
    """Create every planned tap; on any failure remove those made and re-raise."""
    todo = list(plans)
    if not todo:  # no NIC with a tap: netlink (pyroute2) is never imported
        return []
    from vmkit.net.taps import create_tap, tap_mac

    made: list[str] = []
    try:
        for p in todo:
            create_tap(p.name, p.bridge, mtu=p.mtu, mac=tap_mac(p.mac) if p.mac else None)
            made.append(p.name)
            if p.script:
                _run_ifup(p.script, p.name)
    except BaseException:
        delete_taps(made)
        raise
    return made


def _run_ifup(script: str, tap: str) -> None:
    try:
        r = subprocess.run(  # noqa: S603 - the domain's own ifup script, argv list
            [script, tap], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VmkitError(f"interface script '{script}' for tap '{tap}' failed: {exc}") from exc
    if r.returncode != 0:
        raise VmkitError(
            f"interface script '{script}' for tap '{tap}' exited with code {r.returncode}: "
            f"{(r.stderr or r.stdout).strip()}"
        )


def delete_taps(names: Iterable[str]) -> None:
    """Remove taps; ones already gone are fine."""
    from vmkit.net.taps import delete_tap

    for name in names:
        try:
            delete_tap(name)
        except VmkitError:
            continue


def network_taps(ctx: Context, network: str) -> list[str]:
    """The vmkit-made taps (extras["taps"]) of running domains' NICs of type network on
    `network`, read from the XML each domain runs with."""
    from vmkit.engine.runtime import is_active
    from vmkit.xml.domain import parse_domain

    found: list[str] = []
    for entry in ctx.store.domains():
        rt = entry.runtime
        if rt is None or not is_active(entry) or not rt.live_xml:
            continue
        made = {str(t) for t in rt.extras.get("taps") or []}
        try:
            dom = parse_domain(rt.live_xml)
        except VmkitError:
            continue
        names = tap_names(dom, rt.domain_id)
        for i, nic in enumerate(dom.devices.interfaces):
            tap = names.get(i)
            if nic.type != InterfaceType.NETWORK or nic.source_network != network:
                continue
            if tap is not None and tap in made:
                found.append(tap)
    return found


def replug_taps(ctx: Context, network: str, bridge: str) -> list[tuple[str, str]]:
    """Put the taps of running domains on `network` on its (new) `bridge` and set them up; a tap
    that is gone is skipped. Returns (tap, problem) for each tap that could not be replugged."""
    taps = network_taps(ctx, network)
    if not taps:
        return []
    from vmkit.net.links import Links, is_missing

    failed: list[tuple[str, str]] = []
    with Links() as links:
        for tap in taps:
            try:
                links.set_master(tap, bridge)
                links.set_up(tap)
            except NotFound as e:
                if e.name != tap:
                    failed.append((tap, str(e)))
            except NetlinkFailed as e:
                if not is_missing(e):
                    failed.append((tap, str(e)))
            except VmkitError as e:
                failed.append((tap, str(e)))
    return failed
