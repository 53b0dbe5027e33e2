"""A domain's NICs seen from the host: domiflist, domifaddr, domifstat, domif-setlink/getlink.

Addresses come from the network's dnsmasq leases (`--source lease`) or the host's neighbour
table (`--source arp`); counters from the tap's statistics in sysfs, swapped to the guest's
point of view as libvirt does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmkit.engine.context import Context
from vmkit.engine.domains import lookup
from vmkit.engine.runtime import is_active
from vmkit.errors import InvalidConfig, NotFound
from vmkit.model.devices import InterfaceType
from vmkit.model.domain import Domain
from vmkit.state.records import DomainEntry


@dataclass(frozen=True)
class IfaceRow:
    """One line of `domiflist`."""

    index: int
    interface: str  # the tap on the host, '-' when none
    type: str
    source: str
    model: str
    mac: str


def _domain_and_taps(
    ctx: Context, entry: DomainEntry, *, inactive: bool
) -> tuple[Domain, dict[int, str]]:
    from vmkit.engine.nics import tap_names
    from vmkit.xml.domain import parse_domain

    rt = entry.runtime
    if not inactive and is_active(entry) and rt is not None and rt.live_xml:
        dom = parse_domain(rt.live_xml)
        return dom, tap_names(dom, rt.domain_id)
    return parse_domain(entry.definition.xml), {}


def list_ifaces(ctx: Context, key: str, *, inactive: bool = False) -> list[IfaceRow]:
    entry = lookup(ctx, key)
    dom, taps = _domain_and_taps(ctx, entry, inactive=inactive)
    rows = []
    for i, nic in enumerate(dom.devices.interfaces):
        source = nic.source_network or nic.source_bridge or ""
        rows.append(
            IfaceRow(
                i,
                taps.get(i, "-"),
                str(nic.type),
                source or "-",
                str(nic.model_type) if nic.model_type else "-",
                nic.mac_address or "-",
            )
        )
    return rows


@dataclass(frozen=True)
class IfaceAddr:
    name: str
    mac: str
    protocol: str
    address: str


def list_addresses(ctx: Context, key: str, *, source: str = "lease") -> list[IfaceAddr]:
    entry = lookup(ctx, key)
    if not is_active(entry):
        raise _not_running(entry)
    dom, taps = _domain_and_taps(ctx, entry, inactive=False)
    found: list[IfaceAddr] = []
    neigh = _neighbours() if source == "arp" else {}
    for i, nic in enumerate(dom.devices.interfaces):
        mac = (nic.mac_address or "").lower()
        name = taps.get(i, "-")
        if source == "arp":
            addrs = [f"{ip}/0" for ip in neigh.get(mac, [])]
        elif nic.type == InterfaceType.NETWORK and nic.source_network:
            from vmkit.engine.networks import lease_addresses

            addrs = lease_addresses(ctx, nic.source_network, mac)
        else:
            addrs = []
        found += [IfaceAddr(name, mac, "ipv6" if ":" in a else "ipv4", a) for a in addrs]
    return found


def _neighbours() -> dict[str, list[str]]:
    """MAC -> IPv4 addresses from the kernel's ARP table of this namespace."""
    table: dict[str, list[str]] = {}
    try:
        lines = Path("/proc/net/arp").read_text().splitlines()[1:]
    except OSError:
        return table
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[3] != "00:00:00:00:00:00":
            table.setdefault(parts[3].lower(), []).append(parts[0])
    return table


def _not_running(entry: DomainEntry) -> Exception:
    from vmkit.errors import WrongState

    return WrongState(
        f"Requested operation is not valid: domain '{entry.name}' is not running",
        state="shut off",
        required="running",
    )


def _find_nic(dom: Domain, taps: dict[int, str], which: str) -> int:
    for i, nic in enumerate(dom.devices.interfaces):
        if which in (taps.get(i), (nic.mac_address or "").lower(), nic.target_dev):
            return i
    raise NotFound("interface", which, f"domain '{dom.name}' has no interface '{which}'")


_STAT_NAMES = ("bytes", "packets", "errors", "dropped")
_VIRSH_NAMES = ("bytes", "packets", "errs", "drop")


def iface_stats(ctx: Context, key: str, which: str) -> list[tuple[str, int]]:
    """virsh domifstat: rx_* is what the guest received, i.e. what the tap sent."""
    entry = lookup(ctx, key)
    if not is_active(entry):
        raise _not_running(entry)
    dom, taps = _domain_and_taps(ctx, entry, inactive=False)
    i = _find_nic(dom, taps, which.lower())
    tap = taps.get(i)
    if tap is None:
        raise InvalidConfig(f"interface '{which}' has no host tap (type user): no statistics")
    stats = Path("/sys/class/net") / tap / "statistics"
    out: list[tuple[str, int]] = []
    for guest_dir, host_dir in (("rx", "tx"), ("tx", "rx")):
        for ours, theirs in zip(_VIRSH_NAMES, _STAT_NAMES, strict=True):
            try:
                value = int((stats / f"{host_dir}_{theirs}").read_text())
            except (OSError, ValueError):
                value = 0
            out.append((f"{guest_dir}_{ours}", value))
    return out


def get_link(ctx: Context, key: str, which: str, *, config: bool = False) -> tuple[str, str]:
    """(interface, 'up'|'down') from the live XML (or the definition with `config`)."""
    entry = lookup(ctx, key)
    dom, taps = _domain_and_taps(ctx, entry, inactive=config)
    i = _find_nic(dom, taps, which.lower())
    return which, dom.devices.interfaces[i].link_state or "up"


def set_link(ctx: Context, key: str, which: str, state: str, *, config: bool = False) -> None:
    """Set a NIC's link up or down: live over QMP set_link, or in the definition."""

    from vmkit.engine.domains import define
    from vmkit.xml.domain import parse_domain, render_domain

    if state not in ("up", "down"):
        raise InvalidConfig(f"invalid link state '{state}': use up or down", value=state)
    uuid = lookup(ctx, key).uuid
    with ctx.lock("domain", uuid):
        entry = lookup(ctx, uuid)
        if config or not is_active(entry):
            dom = parse_domain(entry.definition.xml)
            i = _find_nic(dom, {}, which.lower())
            dom.devices.interfaces[i].link_state = None if state == "up" else "down"
            define_text = render_domain(dom, inactive=True)
        else:
            define_text = None
        if not config and is_active(entry):
            rt = entry.runtime
            assert rt is not None and rt.qmp_socket is not None
            dom, taps = _domain_and_taps(ctx, entry, inactive=False)
            i = _find_nic(dom, taps, which.lower())
            from vmkit.engine.iface_hotplug import qemu_ids
            from vmkit.qemu.qmp import QmpSession

            device = qemu_ids(dom, rt)[i].device
            with QmpSession.connect(rt.qmp_socket) as qmp:
                qmp.execute("set_link", {"name": device, "up": state == "up"})
            dom.devices.interfaces[i].link_state = None if state == "up" else "down"
            ctx.store.put_runtime(rt.replace(live_xml=render_domain(dom)))
    if define_text is not None:
        define(ctx, define_text, "domif-setlink")
