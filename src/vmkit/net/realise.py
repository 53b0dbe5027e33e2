"""Bringing a virtual network up and down on a host (or inside a namespace acting as one).

`plan_network(net, seen, run_dir)` is pure: from the definition and what the namespace holds it
returns the steps to take (`[MakeDir(..), AddBridge("vmkbr0", ..), AddAddress(..), SetUp(..),
ApplyFirewall(..), EnableForwarding(..), WriteFile(..), StartDnsmasq(..)]`), or refuses a bridge
name already in use, a forward dev or host bridge that does not exist, a subnet that overlaps a
route or address. `start_network` runs the steps through a `Host` (the seam: `SystemHost` does it
for real, tests pass a recording fake) and, when one fails, takes back every step already done,
in reverse. The `NetworkRuntime` it returns records what was made (JSON-able, for the state
store); `stop_network` takes all of it back, trying every step and raising the first failure,
so that nothing is left: no link, no table, no process, no file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from vmkit.errors import Conflict, InvalidConfig, NotFound
from vmkit.model.network import ForwardMode, IPInterface, Network, check_network_name
from vmkit.net.dnsmasq import (
    DnsmasqFiles,
    DnsmasqProcess,
    dnsmasq_needed,
    render_dnsmasq_conf,
)
from vmkit.net.links import HostView
from vmkit.net.nft import FirewallPlan, plan_firewall
from vmkit.net.subnet import find_overlaps
from vmkit.net.sysctl import IPV4_FORWARD, IPV6_FORWARD


@dataclass
class NetworkRuntime:
    """What a started network made, so that it can be taken back (by another process, too)."""

    name: str
    netns: str | None
    run_dir: Path  # shared by the networks of a host: <run_dir>/<name>/ holds this one's files
    bridge: str | None = None
    bridge_created: bool = False
    made_dir: bool = False
    table: str | None = None
    forwarding: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    dnsmasq: DnsmasqProcess | None = None

    @property
    def directory(self) -> Path:
        return self.run_dir / self.name

    @property
    def dnsmasq_files(self) -> DnsmasqFiles:
        return DnsmasqFiles.in_dir(self.directory)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "netns": self.netns,
            "run_dir": str(self.run_dir),
            "bridge": self.bridge,
            "bridge_created": self.bridge_created,
            "made_dir": self.made_dir,
            "table": self.table,
            "forwarding": list(self.forwarding),
            "files": [str(f) for f in self.files],
            "dnsmasq": None
            if self.dnsmasq is None
            else {"pid": self.dnsmasq.pid, "start_time": self.dnsmasq.start_time},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkRuntime:
        dm = data.get("dnsmasq")
        return cls(
            name=data["name"],
            netns=data.get("netns"),
            run_dir=Path(data["run_dir"]),
            bridge=data.get("bridge"),
            bridge_created=bool(data.get("bridge_created")),
            made_dir=bool(data.get("made_dir")),
            table=data.get("table"),
            forwarding=tuple(data.get("forwarding", ())),
            files=tuple(Path(f) for f in data.get("files", ())),
            dnsmasq=None if dm is None else DnsmasqProcess(int(dm["pid"]), int(dm["start_time"])),
        )


class Host(Protocol):
    """The side effects a network needs, in one namespace."""

    def view(self) -> HostView: ...
    def make_dir(self, path: Path) -> None: ...
    def remove_dir(self, path: Path) -> None: ...
    def add_bridge(self, step: AddBridge) -> None: ...
    def delete_link(self, name: str) -> None: ...
    def link_exists(self, name: str) -> bool: ...
    def add_address(self, dev: str, address: IPInterface) -> None: ...
    def set_up(self, dev: str) -> None: ...
    def apply_firewall(self, plan: FirewallPlan) -> None: ...
    def remove_firewall(self, table: str) -> None: ...
    def table_exists(self, table: str) -> bool: ...
    def acquire_forwarding(self, user: str, keys: tuple[str, ...]) -> None: ...
    def release_forwarding(self, user: str, keys: tuple[str, ...]) -> None: ...
    def write_file(self, path: Path, text: str) -> None: ...
    def remove_file(self, path: Path) -> None: ...
    def start_dnsmasq(self, files: DnsmasqFiles) -> DnsmasqProcess: ...
    def stop_dnsmasq(self, proc: DnsmasqProcess, files: DnsmasqFiles) -> None: ...
    def dnsmasq_running(self, proc: DnsmasqProcess, files: DnsmasqFiles) -> bool: ...


# ---------------------------------------------------------------------------------------------
# steps: each does one thing and records it in the runtime; `undo` names the steps taking it back


@dataclass(frozen=True)
class MakeDir:
    path: Path

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.make_dir(self.path)
        rt.made_dir = True

    def undo(self, rt: NetworkRuntime) -> list[Step]:
        return [RemoveDir(self.path)]


@dataclass(frozen=True)
class AddBridge:
    name: str
    stp: bool = True
    delay: int = 0
    mac: str | None = None
    mtu: int | None = None

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.add_bridge(self)
        rt.bridge_created = True

    def undo(self, rt: NetworkRuntime) -> list[Step]:
        return [DeleteLink(self.name)]


@dataclass(frozen=True)
class AddAddress:
    dev: str
    address: IPInterface

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.add_address(self.dev, self.address)

    def undo(self, rt: NetworkRuntime) -> list[Step]:
        return []  # goes with the bridge


@dataclass(frozen=True)
class SetUp:
    dev: str

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.set_up(self.dev)

    def undo(self, rt: NetworkRuntime) -> list[Step]:
        return []  # goes with the bridge


@dataclass(frozen=True)
class ApplyFirewall:
    plan: FirewallPlan

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        rt.table = self.plan.table  # recorded first: a failed apply may have left a half
        host.apply_firewall(self.plan)

    def undo(self, rt: NetworkRuntime) -> list[Step]:
        return [RemoveFirewall(self.plan.table)]


@dataclass(frozen=True)
class EnableForwarding:
    user: str
    keys: tuple[str, ...]

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.acquire_forwarding(self.user, self.keys)
        rt.forwarding = self.keys

    def undo(self, rt: NetworkRuntime) -> list[Step]:
        return [ReleaseForwarding(self.user, self.keys)]


@dataclass(frozen=True)
class WriteFile:
    path: Path
    text: str

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        rt.files = (*rt.files, self.path)
        host.write_file(self.path, self.text)

    def undo(self, rt: NetworkRuntime) -> list[Step]:
        return [RemoveFile(self.path)]


@dataclass(frozen=True)
class StartDnsmasq:
    files: DnsmasqFiles

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        rt.files = (*rt.files, self.files.pid, self.files.leases)
        rt.dnsmasq = host.start_dnsmasq(self.files)

    def undo(self, rt: NetworkRuntime) -> list[Step]:
        stop: list[Step] = [StopDnsmasq(rt.dnsmasq, self.files)] if rt.dnsmasq else []
        return [*stop, RemoveFile(self.files.pid), RemoveFile(self.files.leases)]


# teardown steps


@dataclass(frozen=True)
class StopDnsmasq:
    proc: DnsmasqProcess
    files: DnsmasqFiles

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.stop_dnsmasq(self.proc, self.files)
        rt.dnsmasq = None


@dataclass(frozen=True)
class RemoveFile:
    path: Path

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.remove_file(self.path)
        rt.files = tuple(f for f in rt.files if f != self.path)


@dataclass(frozen=True)
class RemoveFirewall:
    table: str

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.remove_firewall(self.table)
        rt.table = None


@dataclass(frozen=True)
class ReleaseForwarding:
    user: str
    keys: tuple[str, ...]

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.release_forwarding(self.user, self.keys)
        rt.forwarding = ()


@dataclass(frozen=True)
class DeleteLink:
    name: str

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        if host.link_exists(self.name):
            host.delete_link(self.name)
        rt.bridge_created = False


@dataclass(frozen=True)
class RemoveDir:
    path: Path

    def do(self, host: Host, rt: NetworkRuntime) -> None:
        host.remove_dir(self.path)
        rt.made_dir = False


StartStep = (
    MakeDir
    | AddBridge
    | AddAddress
    | SetUp
    | ApplyFirewall
    | EnableForwarding
    | WriteFile
    | StartDnsmasq
)
Step = (
    StartStep
    | StopDnsmasq
    | RemoveFile
    | RemoveFirewall
    | ReleaseForwarding
    | DeleteLink
    | RemoveDir
)


# ---------------------------------------------------------------------------------------------
# planning


def forwarding_keys(net: Network) -> tuple[str, ...]:
    """The sysctls a network needs on: routed, NAT'd and open networks forward."""
    if net.mode not in (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.OPEN):
        return ()
    versions = {ip.address.version for ip in net.ips}
    return tuple(k for v, k in ((4, IPV4_FORWARD), (6, IPV6_FORWARD)) if v in versions)


def _check_seen(net: Network, seen: HostView) -> None:
    name = net.bridge_name
    if net.mode is ForwardMode.BRIDGE:
        link = seen.links.get(name or "")
        if link is None:
            raise NotFound(
                "bridge", name or "", f"bridge '{name}' of network '{net.name}' does not exist"
            )
        if link.kind != "bridge":
            raise InvalidConfig(f"interface '{name}' of network '{net.name}' is not a bridge")
        return
    if not name:
        raise InvalidConfig(f"network '{net.name}' has no bridge name", xpath="/network/bridge")
    if name in seen.links:
        raise Conflict("network", net.name, f"bridge name '{name}' is already in use")
    uplink = net.forward.uplink if net.forward else None
    if uplink and uplink not in seen.links:
        raise NotFound(
            "interface", uplink, f"forward dev '{uplink}' of network '{net.name}' does not exist"
        )
    overlaps = find_overlaps(net, seen)
    if overlaps:
        raise Conflict("network", net.name, f"network '{net.name}': {'; '.join(overlaps)}")


def plan_network(net: Network, seen: HostView, run_dir: Path) -> list[StartStep]:
    """The steps that bring `net` up in a namespace that holds `seen`."""
    check_network_name(net.name)
    _check_seen(net, seen)
    if net.mode is ForwardMode.BRIDGE:
        return []  # the host bridge is not ours: nothing to make
    assert net.bridge is not None and net.bridge.name is not None
    br = net.bridge
    directory = run_dir / net.name
    stp = True if br.stp is None else br.stp
    steps: list[StartStep] = [
        MakeDir(directory),
        AddBridge(br.name or "", stp=stp, delay=br.delay or 0, mac=net.mac, mtu=net.mtu),
    ]
    steps += [AddAddress(br.name or "", ip.interface) for ip in net.ips]
    steps.append(SetUp(br.name or ""))
    firewall = plan_firewall(net)
    if firewall is not None:
        steps.append(ApplyFirewall(firewall))
    keys = forwarding_keys(net)
    if keys:
        steps.append(EnableForwarding(net.name, keys))
    if dnsmasq_needed(net):
        files = DnsmasqFiles.in_dir(directory)
        steps += [WriteFile(files.conf, render_dnsmasq_conf(net, files)), StartDnsmasq(files)]
    return steps


def plan_teardown(rt: NetworkRuntime) -> list[Step]:
    """The steps that take back everything `rt` records, last made first."""
    steps: list[Step] = []
    if rt.dnsmasq is not None:
        steps.append(StopDnsmasq(rt.dnsmasq, rt.dnsmasq_files))
    steps += [RemoveFile(f) for f in rt.files]
    if rt.table is not None:
        steps.append(RemoveFirewall(rt.table))
    if rt.forwarding:
        steps.append(ReleaseForwarding(rt.name, rt.forwarding))
    if rt.bridge_created and rt.bridge:
        steps.append(DeleteLink(rt.bridge))
    if rt.made_dir:
        steps.append(RemoveDir(rt.directory))
    return steps


# ---------------------------------------------------------------------------------------------
# running


def _run_all(steps: Sequence[Step], host: Host, rt: NetworkRuntime) -> list[Exception]:
    """Every step, even after a failure; returns the failures."""
    errors = []
    for step in steps:
        try:
            step.do(host, rt)
        except Exception as e:  # collected, the caller raises the first
            errors.append(e)
    return errors


def run_steps(steps: Sequence[StartStep], host: Host, rt: NetworkRuntime) -> NetworkRuntime:
    """Do `steps` in order; on a failure take back the ones done (in reverse) and re-raise."""
    done: list[StartStep] = []
    try:
        for step in steps:
            done.append(step)  # a step that failed half way is taken back too
            step.do(host, rt)
    except BaseException as err:
        undo = [u for s in reversed(done) for u in s.undo(rt)]
        for failure in _run_all(undo, host, rt):
            err.add_note(f"rollback step failed too: {failure}")
        raise
    return rt


def start_network(
    net: Network, run_dir: Path, netns: str | None = None, *, host: Host | None = None
) -> NetworkRuntime:
    """Bring `net` up in `netns` (the current namespace when None); all or nothing."""
    if host is None:
        from vmkit.net.host import SystemHost

        host = SystemHost(run_dir, netns)
    rt = NetworkRuntime(net.name, netns, run_dir, bridge=net.bridge_name)
    return run_steps(plan_network(net, host.view(), run_dir), host, rt)


def stop_network(rt: NetworkRuntime, *, host: Host | None = None) -> None:
    """Take back everything `rt` records; raises the first failure after trying every step."""
    if host is None:
        from vmkit.net.host import SystemHost

        host = SystemHost(rt.run_dir, rt.netns)
    errors = _run_all(plan_teardown(rt), host, rt)
    if errors:
        for extra in errors[1:]:
            errors[0].add_note(f"also failed: {extra}")
        raise errors[0]


def check_network(rt: NetworkRuntime, *, host: Host | None = None) -> list[str]:
    """What is missing from a running network (net-info): empty when all is well."""
    if host is None:
        from vmkit.net.host import SystemHost

        host = SystemHost(rt.run_dir, rt.netns)
    problems = []
    if rt.bridge and not host.link_exists(rt.bridge):
        problems.append(f"bridge {rt.bridge} is missing")
    if rt.table and not host.table_exists(rt.table):
        problems.append(f"nftables table inet {rt.table} is missing")
    if rt.dnsmasq and not host.dnsmasq_running(rt.dnsmasq, rt.dnsmasq_files):
        problems.append(f"dnsmasq (pid {rt.dnsmasq.pid}) is not running")
    return problems


def refresh_network(
    rt: NetworkRuntime, net: Network, *, host: Host | None = None
) -> NetworkRuntime:
    """Apply a changed definition (dhcp/dns hosts, port forwards) to a running network, or bring
    back a dnsmasq that died: the firewall table is replaced atomically, dnsmasq's conf rewritten
    and dnsmasq restarted. Returns the updated runtime."""
    if host is None:
        from vmkit.net.host import SystemHost

        host = SystemHost(rt.run_dir, rt.netns)
    if net.name != rt.name or net.bridge_name != rt.bridge:
        raise InvalidConfig(f"cannot change the name or bridge of running network '{rt.name}' live")
    rt = replace(rt)
    firewall = plan_firewall(net)
    if firewall is not None:
        ApplyFirewall(firewall).do(host, rt)
    elif rt.table is not None:
        RemoveFirewall(rt.table).do(host, rt)
    files = rt.dnsmasq_files
    if rt.dnsmasq is not None:
        StopDnsmasq(rt.dnsmasq, files).do(host, rt)
    if dnsmasq_needed(net):
        host.write_file(files.conf, render_dnsmasq_conf(net, files))
        rt.files = tuple(dict.fromkeys([*rt.files, files.conf, files.pid, files.leases]))
        rt.dnsmasq = host.start_dnsmasq(files)
    return rt
