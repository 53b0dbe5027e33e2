"""How the engine keeps virtual networks in the store, and the seam to the host they run on.

A network's definition is a NETWORK definition (libvirt's network XML, defaults filled in). An
active network has a runtime record whose payload is

    {"state": "active", "runtime": NetworkRuntime.to_json(), "live_xml": "<network>...",
     "boot_id": "<the kernel's boot id>"}

`live_xml` is the definition it runs with (net-define of an active network changes only the next
start; `net-update --live` only the running one). While `net-start` is at work the record says
`"state": "starting"` and holds what it may be about to make (`presumed_runtime`), so that a
start killed half way can be taken back by the next command (net_lifecycle.settle). A record
of an earlier boot (the host rebooted: bridge, nft table and dnsmasq are gone) is settled the same
way, so that the network shows inactive and `net-start-autostart` starts it again.

`host_factory` makes the `net.realise.Host` every operation acts through (the namespace vmkit
runs in, files under `<run_dir>/net/`); unit tests replace it with a recording fake.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmkit.engine.context import Context
from vmkit.errors import NotFound
from vmkit.model.network import ForwardMode, Network
from vmkit.net.dnsmasq import DnsmasqFiles, DnsmasqProcess, dnsmasq_needed
from vmkit.net.nft import plan_firewall
from vmkit.net.realise import Host, NetworkRuntime, forwarding_keys
from vmkit.state.records import NETWORK, Definition, ObjectRuntime
from vmkit.xml.network import parse_network

ACTIVE = "active"
STARTING = "starting"


def _system_host(run_dir: Path) -> Host:
    from vmkit.net.host import SystemHost

    return SystemHost(run_dir)


host_factory: Callable[[Path], Host] = _system_host
"""Makes the Host networks are realised through; tests swap it for net.fake.RecordingHost."""


def net_run_dir(ctx: Context) -> Path:
    """`<run_dir>/net`: one folder per active network (dnsmasq conf, pid, leases)."""
    return ctx.paths.run_dir / "net"


def net_host(ctx: Context) -> Host:
    return host_factory(net_run_dir(ctx))


@dataclass(frozen=True)
class NetworkEntry:
    """A network as the store knows it: definition, model, and its run when it has one."""

    definition: Definition
    net: Network  # the persistent (or, for a transient network, the created) definition
    runtime: NetworkRuntime | None = None
    live: Network | None = None  # the definition the running network was started with
    starting: bool = False  # a start in progress, or a run that ended without vmkit (see above)

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def uuid(self) -> str:
        return self.definition.uuid

    @property
    def active(self) -> bool:
        return self.runtime is not None and not self.starting

    @property
    def current(self) -> Network:
        """What is in effect: the live definition when active, else the persistent one."""
        return self.live if self.active and self.live is not None else self.net


def entry_of(ctx: Context, d: Definition) -> NetworkEntry:
    net = parse_network(d.xml, strict=False)
    obj = ctx.store.get_object_runtime(NETWORK, d.uuid)
    if obj is None:
        return NetworkEntry(d, net)
    rt, live_xml, state = decode_payload(obj)
    live = parse_network(live_xml, strict=False) if live_xml else net
    earlier_boot = obj.payload.get("boot_id") not in (None, "", boot_id())
    return NetworkEntry(d, net, rt, live, starting=state != ACTIVE or earlier_boot)


def decode_payload(obj: ObjectRuntime) -> tuple[NetworkRuntime, str, str]:
    data = obj.payload
    return NetworkRuntime.from_json(data["runtime"]), str(data.get("live_xml", "")), data["state"]


def encode_payload(rt: NetworkRuntime, live_xml: str, state: str = ACTIVE) -> dict[str, Any]:
    return {"state": state, "runtime": rt.to_json(), "live_xml": live_xml, "boot_id": boot_id()}


def boot_id(path: Path = Path("/proc/sys/kernel/random/boot_id")) -> str:
    """This boot of the kernel ('' when unknown): a run recorded in another boot is over."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def not_found(key: str) -> NotFound:
    return NotFound(
        "network", key, f"failed to get network '{key}': no network with matching name or uuid"
    )


def find(ctx: Context, key: str) -> NetworkEntry | None:
    d = ctx.store.find(NETWORK, key)
    return None if d is None else entry_of(ctx, d)


def lookup(ctx: Context, key: str) -> NetworkEntry:
    """The network named by name or uuid; NotFound in virsh's words."""
    found = find(ctx, key)
    if found is None:
        raise not_found(key)
    return found


def all_networks(ctx: Context) -> list[NetworkEntry]:
    return [entry_of(ctx, d) for d in ctx.store.list(NETWORK)]


def presumed_runtime(net: Network, run_dir: Path) -> NetworkRuntime:
    """Everything a start of `net` may make, for taking back a start that was killed half way.

    The bridge is only deleted by `net_lifecycle.recover_start` when it carries the network's
    MAC, so a link somebody else made with that name is never touched."""
    files = DnsmasqFiles.in_dir(run_dir / net.name)
    made_bridge = net.mode is not ForwardMode.BRIDGE
    firewall = plan_firewall(net)
    return NetworkRuntime(
        name=net.name,
        netns=None,
        run_dir=run_dir,
        bridge=net.bridge_name,
        bridge_created=made_bridge,
        made_dir=made_bridge,
        table=firewall.table if firewall is not None else None,
        forwarding=forwarding_keys(net),
        files=(files.conf, files.pid, files.leases) if dnsmasq_needed(net) else (),
        dnsmasq=dnsmasq_of_pidfile(files) if dnsmasq_needed(net) else None,
    )


def dnsmasq_of_pidfile(files: DnsmasqFiles) -> DnsmasqProcess | None:
    """The dnsmasq its pid file names, if it runs (stop_dnsmasq checks it is ours)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(files.pid.read_text().strip())
        stat = Path(f"/proc/{pid}/stat").read_text()
        return DnsmasqProcess(pid, int(stat[stat.rindex(")") + 2 :].split()[19]))
    return None
