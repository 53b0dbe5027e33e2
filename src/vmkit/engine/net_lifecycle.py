"""Virtual network lifecycle: define, create (transient), start (`--force` repairs a running one),
destroy, undefine, autostart, edit, and the `default` NAT network made on first use.

Every operation on a network holds its lock (keyed by name: networks are never renamed, and the
`default` network is locked before it exists). Definitions are checked against the other
networks (bridge names, subnets) inside the store transaction that writes them, so two defines
cannot race past each other; subnets are checked against the host's routes and addresses when the
network starts (net.realise.plan_network). A start that fails is rolled back by net.realise; a
start that was killed half way is taken back by the next command that locks the network
(`settle`). A network may be destroyed while domains use it (as libvirt allows); when it starts
again, their taps are put on the new bridge (engine.nics.replug_taps). Messages follow virsh
("network is already active").
"""

from __future__ import annotations

import contextlib
import uuid as uuid_mod
from dataclasses import replace
from pathlib import Path

from vmkit.engine.context import Context
from vmkit.engine.net_records import (
    ACTIVE,
    STARTING,
    NetworkEntry,
    all_networks,
    encode_payload,
    entry_of,
    find,
    lookup,
    net_host,
    net_run_dir,
    presumed_runtime,
)
from vmkit.engine.nics import replug_taps
from vmkit.errors import Conflict, InvalidConfig, NetworkError, VmkitError, WrongState
from vmkit.model.network import (
    Bridge,
    IPNetwork,
    Network,
    check_network_conflicts,
    validate_network,
    with_defaults,
)
from vmkit.net.realise import NetworkRuntime, check_network, refresh_network, start_network
from vmkit.net.realise import stop_network as realise_stop
from vmkit.state.records import NETWORK
from vmkit.xml.network import parse_network, render_network

DEFAULT = "default"


def parse_network_xml(data: str | bytes, source: str, *, verb: str = "define") -> Network:
    """A network from an XML file; errors say which file, as virsh's "Failed to define"."""
    try:
        return parse_network(data)
    except InvalidConfig as e:
        raise InvalidConfig(f"Failed to {verb} network from {source}: {e}", value=e.value) from e


# ---------------------------------------------------------------------------------------------
# define, create, undefine, edit, autostart


def _taken_bridges(ctx: Context, name: str) -> set[str]:
    """Bridge names in use: host links, and the bridges of the other networks."""
    taken = set(net_host(ctx).view().links)
    for e in all_networks(ctx):
        if e.name != name:
            taken |= {n.bridge_name for n in (e.net, e.live) if n and n.bridge_name}
    return taken


def complete(ctx: Context, net: Network, old: NetworkEntry | None) -> Network:
    """libvirt's define-time defaults; a redefinition keeps the uuid, bridge and MAC it had."""
    if old is not None:
        if net.uuid is None:
            net = replace(net, uuid=_uuid_of(old))
        if net.bridge_name is None and old.net.bridge_name and net.mode == old.net.mode:
            br = net.bridge or Bridge()
            net = replace(net, bridge=replace(br, name=old.net.bridge_name))
        if net.mac is None and old.net.mac and net.bridge_name == old.net.bridge_name:
            net = replace(net, mac=old.net.mac)
    net = with_defaults(net, _taken_bridges(ctx, net.name))
    validate_network(net)
    return net


def _uuid_of(entry: NetworkEntry) -> uuid_mod.UUID:
    return uuid_mod.UUID(entry.uuid)


def _others(ctx: Context, name: str) -> list[Network]:
    return [n for e in all_networks(ctx) if e.name != name for n in (e.net, e.live) if n]


def define_network(ctx: Context, net: Network) -> NetworkEntry:
    """net-define: add or update a persistent definition (a running network keeps its live one)."""
    with ctx.lock(NETWORK, net.name):
        net = complete(ctx, net, find(ctx, net.name))
        store = ctx.store
        with store.transaction():
            check_network_conflicts(net, _others(ctx, net.name))
            d = store.define(NETWORK, str(net.uuid), net.name, render_network(net))
            store.log_event(NETWORK, d.uuid, d.name, "defined")
        return entry_of(ctx, d)


def create_network(ctx: Context, net: Network) -> NetworkEntry:
    """net-create: a transient network, started; it is gone once destroyed."""
    with ctx.lock(NETWORK, net.name):
        store = ctx.store
        if find(ctx, net.name) is not None or (net.uuid and find(ctx, str(net.uuid))):
            raise Conflict(
                "network", net.name, f"operation failed: network '{net.name}' already exists"
            )
        net = complete(ctx, net, None)
        xml = render_network(net)
        with store.transaction():
            check_network_conflicts(net, _others(ctx, net.name))
            d = store.define(NETWORK, str(net.uuid), net.name, xml, persistent=False)
            payload = encode_payload(presumed_runtime(net, net_run_dir(ctx)), xml, STARTING)
            store.put_object_runtime(NETWORK, d.uuid, payload)
        return _start_locked(ctx, entry_of(ctx, d), net, created=True)


def undefine(ctx: Context, key: str) -> tuple[NetworkEntry, bool]:
    """net-undefine: an inactive network is gone (True); an active one becomes transient."""
    name = lookup(ctx, key).name
    with ctx.lock(NETWORK, name):
        entry = settle(ctx, lookup(ctx, name))
        store = ctx.store
        with store.transaction():
            gone = store.undefine(NETWORK, entry.uuid)
            store.log_event(NETWORK, entry.uuid, entry.name, "undefined")
        return entry, gone


def set_autostart(ctx: Context, key: str, enable: bool) -> NetworkEntry:
    entry = lookup(ctx, key)
    d = ctx.store.set_autostart(NETWORK, entry.uuid, enable)
    return entry_of(ctx, d)


def edit_xml(ctx: Context, key: str, new_xml: str) -> NetworkEntry | None:
    """net-edit: validate the edited XML, then save it; None when nothing changed."""
    entry = lookup(ctx, key)
    if new_xml.strip() == entry.definition.xml.strip():
        return None
    net = parse_network_xml(new_xml, "edited XML", verb="edit")
    if net.name != entry.name:
        raise InvalidConfig(
            f"the name of network '{entry.name}' cannot be changed by net-edit",
            xpath="/network/name",
            value=net.name,
        )
    if net.uuid is not None and str(net.uuid) != entry.uuid:
        raise InvalidConfig(
            f"the uuid of network '{entry.name}' cannot be changed by net-edit",
            xpath="/network/uuid",
            value=str(net.uuid),
        )
    if not entry.definition.persistent:
        raise WrongState(
            f"network '{entry.name}' is transient: it has no persistent definition to edit",
            state="transient",
            required="persistent",
        )
    return define_network(ctx, net)


# ---------------------------------------------------------------------------------------------
# start, destroy, repair


def start(ctx: Context, key: str, *, force: bool = False) -> tuple[NetworkEntry, str]:
    """net-start; returns the entry and what was done: 'started', 'created' (the default
    network, made on first use), 'repaired' (--force on an active network)."""
    if key == DEFAULT and find(ctx, DEFAULT) is None:
        made, created = make_default_network(ctx)
        if created:
            return made, "created"
    name = lookup(ctx, key).name
    with ctx.lock(NETWORK, name):
        entry = settle(ctx, lookup(ctx, name))
        if entry.active:
            if not force:
                raise WrongState(
                    f"Failed to start network '{name}': network is already active"
                    + _hint(ctx, entry),
                    state="active",
                    required="inactive",
                )
            return repair(ctx, entry), "repaired"
        return _start_locked(ctx, entry, entry.net), "started"


def _hint(ctx: Context, entry: NetworkEntry) -> str:
    problems = problems_of(ctx, entry)
    if not problems:
        return ""
    return f" but {'; '.join(problems)}: run 'vmkit net-start --force {entry.name}'"


def _start_locked(
    ctx: Context, entry: NetworkEntry, net: Network, *, created: bool = False
) -> NetworkEntry:
    """Bring `net` up for `entry` (under its lock); all or nothing, record included."""
    store, run_dir, uuid = ctx.store, net_run_dir(ctx), entry.uuid
    xml = render_network(net)
    if not created:
        store.put_object_runtime(
            NETWORK, uuid, encode_payload(presumed_runtime(net, run_dir), xml, STARTING)
        )
    host = net_host(ctx)
    try:
        rt = start_network(net, run_dir, None, host=host)
    except BaseException:
        store.clear_runtime(NETWORK, uuid)  # a transient network goes with it
        tidy_run_dir(run_dir)
        raise
    try:
        with store.transaction():
            store.put_object_runtime(NETWORK, uuid, encode_payload(rt, xml))
            store.log_event(NETWORK, uuid, entry.name, "started", "created" if created else "")
    except BaseException as err:
        try:
            realise_stop(rt, host=host)
        except Exception as undo:
            err.add_note(f"stopping network '{entry.name}' again failed too: {undo}")
        store.clear_runtime(NETWORK, uuid)
        raise
    _replug(ctx, entry, net)
    return entry_of(ctx, store.get(NETWORK, uuid))


def _replug(ctx: Context, entry: NetworkEntry, net: Network) -> None:
    """Running domains on the network keep their taps across a destroy and start (libvirt lets a
    network with domains on it be destroyed): put them on the new bridge. The network is up
    whatever happens here; a tap that could not be replugged is noted in the event log."""
    if not net.bridge_name:
        return
    try:
        failed = replug_taps(ctx, entry.name, net.bridge_name)
    except VmkitError as e:
        failed = [("*", str(e))]
    for tap, problem in failed:
        ctx.store.log_event(NETWORK, entry.uuid, entry.name, "replug-failed", f"{tap}: {problem}")


def destroy(ctx: Context, key: str) -> NetworkEntry:
    """net-destroy: take back everything the start made; a transient network is gone after."""
    name = lookup(ctx, key).name
    with ctx.lock(NETWORK, name):
        entry = settle(ctx, lookup(ctx, name))
        if not entry.active or entry.runtime is None:
            raise WrongState(
                f"Failed to destroy network '{name}': network is not active",
                state="inactive",
                required="active",
            )
        _stop(ctx, entry, entry.runtime, "destroyed")
        return entry


def _teardown(ctx: Context, entry: NetworkEntry, rt: NetworkRuntime) -> None:
    """Take back what `rt` records; on a failure record what is left, and raise."""
    try:
        realise_stop(rt, host=net_host(ctx))
    except BaseException:
        live = render_network(entry.live or entry.net)
        ctx.store.put_object_runtime(NETWORK, entry.uuid, encode_payload(rt, live))
        raise


def _stop(ctx: Context, entry: NetworkEntry, rt: NetworkRuntime, why: str) -> None:
    """Stop a run and clear its record (a transient network's definition goes too)."""
    store = ctx.store
    _teardown(ctx, entry, rt)
    with store.transaction():
        store.log_event(NETWORK, entry.uuid, entry.name, "stopped", why)
        store.clear_runtime(NETWORK, entry.uuid)
    tidy_run_dir(rt.run_dir)


def tidy_run_dir(run_dir: Path) -> None:
    """Remove `<run_dir>/net` once no network uses it (it is made on the first start)."""
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def settle(ctx: Context, entry: NetworkEntry) -> NetworkEntry:
    """Under the network's lock: take back a start that was killed half way (the record still
    says 'starting', but nobody holds the lock any more)."""
    if not entry.starting or entry.runtime is None:
        return entry
    rt = replace(entry.runtime)
    net = entry.live or entry.net
    if rt.bridge_created and rt.bridge:
        link = net_host(ctx).view().links.get(rt.bridge)
        rt.bridge_created = link is not None and (link.mac or "").lower() == (net.mac or "")
    _stop(ctx, entry, rt, "start interrupted")
    return lookup(ctx, entry.name)  # NotFound for a transient network: it is gone


def problems_of(ctx: Context, entry: NetworkEntry) -> list[str]:
    """What is missing from an active network (empty when all is well, or when inactive)."""
    if not entry.active or entry.runtime is None:
        return []
    return check_network(entry.runtime, host=net_host(ctx))


def repair(ctx: Context, entry: NetworkEntry) -> NetworkEntry:
    """Under the lock: bring back what died (dnsmasq, the firewall table), or, when the bridge is
    gone, restart the network from its live definition."""
    rt, net = entry.runtime, entry.live or entry.net
    assert rt is not None
    host = net_host(ctx)
    if rt.bridge and not host.link_exists(rt.bridge):
        if not rt.bridge_created:
            raise NetworkError(
                f"host bridge '{rt.bridge}' of network '{entry.name}' is gone; vmkit does not "
                "manage that bridge: create it again, then run net-start --force"
            )
        _teardown(ctx, entry, rt)
        return _start_locked(ctx, entry, net)
    fresh = refresh_network(rt, net, host=host)
    with ctx.store.transaction():
        ctx.store.put_object_runtime(
            NETWORK, entry.uuid, encode_payload(fresh, render_network(net), ACTIVE)
        )
        ctx.store.log_event(NETWORK, entry.uuid, entry.name, "repaired")
    return lookup(ctx, entry.uuid)


def ensure_network_active(ctx: Context, key: str) -> NetworkEntry:
    """The active network `key`, repaired if a part of it died (a killed dnsmasq comes back);
    WrongState naming it when it is not active."""
    name = lookup(ctx, key).name
    with ctx.lock(NETWORK, name):
        entry = settle(ctx, lookup(ctx, name))
        if not entry.active:
            raise WrongState(
                f"network '{name}' is not active: start it with 'vmkit net-start {name}'",
                state="inactive",
                required="active",
            )
        if problems_of(ctx, entry):
            entry = repair(ctx, entry)
        return entry


def start_autostart(ctx: Context) -> list[tuple[str, str | None]]:
    """Start every autostart network that is not active: (name, error or None) for each."""
    results: list[tuple[str, str | None]] = []
    for entry in all_networks(ctx):
        if not entry.definition.autostart or entry.active:
            continue
        try:
            start(ctx, entry.name)
            results.append((entry.name, None))
        except (VmkitError, OSError) as e:  # one network's failure must not stop the others
            results.append((entry.name, str(e)))
    return results


# ---------------------------------------------------------------------------------------------
# the default network


def ensure_default_network(ctx: Context) -> NetworkEntry:
    """The `default` network: made and started when it does not exist yet, else as it is."""
    return make_default_network(ctx)[0]


def make_default_network(ctx: Context) -> tuple[NetworkEntry, bool]:
    """Define (autostart) and start the `default` NAT network on a subnet that no route, address
    or other network uses, unless it exists; (entry, whether this call made it)."""
    from vmkit.net.subnet import default_network, used_subnets

    with ctx.lock(NETWORK, DEFAULT):
        found = find(ctx, DEFAULT)
        if found is not None:
            return found, False
        view = net_host(ctx).view()
        others = _others(ctx, DEFAULT)
        used: list[IPNetwork] = used_subnets(view) + [ip.subnet for n in others for ip in n.ips]
        taken = set(view.links) | {n.bridge_name for n in others if n.bridge_name}
        entry = define_network(ctx, default_network(used, taken))
        ctx.store.set_autostart(NETWORK, entry.uuid, True)
        try:
            return _start_locked(ctx, lookup(ctx, DEFAULT), entry.net), True
        except BaseException:
            ctx.store.undefine(NETWORK, entry.uuid)  # nothing half made: no default either
            raise
