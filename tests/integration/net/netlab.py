"""A throwaway lab of network namespaces for the net integration tests.

    host      the namespace vmkit's networks are started in (stands in for the machine)
    upstream  the outside world, joined to host by a veth: host up0 198.51.100.1/24 <->
              upstream eth0 198.51.100.2/24; host's default route points at upstream, and
              upstream has a route to each guest subnet through host (so that only the firewall
              decides whether upstream reaches a guest)
    guests    one namespace per guest, its eth0 a veth whose peer sits in host, enslaved to a
              bridge; DHCP with busybox udhcpc; probes with busybox ping and Python sockets

Every namespace has a unique `vkt-<hex>-<role>` name; `close()` kills every process the lab
started (by pid) and deletes every namespace it made, also after a failure. Nothing here touches
the root namespace.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, ip_interface
from pathlib import Path

from nslab import (
    TCP_SERVER,
    UDHCPC_SCRIPT,
    HostAndUpstream,
    mask_timers,
    new_netns,
    ns_exec,
    start_server,
    stop_processes,
)

from vmkit.model.network import Network
from vmkit.net.dnsmasq import DnsmasqFiles, DnsmasqProcess, stop_dnsmasq
from vmkit.net.links import Links
from vmkit.net.netns import create_netns, delete_netns, netns_exists, run_in_netns
from vmkit.net.realise import NetworkRuntime, start_network, stop_network

HOST_UP = ip_interface("198.51.100.1/24")
UPSTREAM_IP = ip_interface("198.51.100.2/24")


def run(netns: str | None, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return ns_exec(netns, *argv, check=check)


def tcp_get(netns: str, ip: str, port: int, timeout: float = 2.0) -> str | None:
    """The first line a TCP server at ip:port sends, connecting from inside `netns`."""

    def fetch() -> str | None:
        import socket

        try:
            with socket.create_connection((ip, port), timeout=timeout) as s:
                return s.makefile().readline().strip()
        except OSError:
            return None

    return run_in_netns(netns, fetch)


@dataclass
class Lab(HostAndUpstream):
    tag: str = field(default_factory=lambda: f"vkt-{secrets.token_hex(3)}")
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    script: Path | None = None
    runtimes: list[NetworkRuntime] = field(default_factory=list)
    daemons: list[tuple[DnsmasqProcess, DnsmasqFiles]] = field(default_factory=list)

    def _netns(self, role: str) -> str:
        return new_netns(f"{self.tag}-{role}", self.namespaces, create=create_netns)

    def setup(self, tmp: Path) -> None:
        self.script = tmp / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)
        host, up = self._netns("h"), self._netns("u")
        with Links(host) as links:
            links.add_veth("up0", "eth0", peer_netns=up)
            links.add_address("up0", HOST_UP)
            links.set_up("up0")
        with Links(up) as links:
            links.add_address("eth0", UPSTREAM_IP)
            links.set_up("eth0")
        run(host, "ip", "route", "add", "default", "via", str(UPSTREAM_IP.ip))
        if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
            # the br_netfilter pitfall of PLATFORM.md, on purpose (in our namespace only)
            run(host, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")

    def start(self, net: Network, run_dir: Path) -> NetworkRuntime:
        """start_network in the host namespace; close() stops it if the test did not."""
        rt = start_network(net, run_dir, self.host)
        self.runtimes.append(rt)
        return rt

    def route_upstream_to(self, subnet: str) -> None:
        run(self.upstream, "ip", "route", "replace", subnet, "via", str(HOST_UP.ip))

    def add_guest(self, name: str, bridge: str, mac: str, netns: str | None = None) -> str:
        """A guest namespace whose eth0 is plugged into `bridge` of `netns` (default host)."""
        where = netns or self.host
        guest = self._netns(name)
        with Links(where) as links:
            links.add_veth(name, "eth0", peer_netns=guest)
            links.set_master(name, bridge)
            links.set_up(name)
        with Links(guest) as links:
            links.set_mac("eth0", mac)
            links.set_up("eth0")
        return guest

    def unplug_guest(self, name: str, netns: str | None = None) -> None:
        with Links(netns or self.host) as links:
            links.delete(name)
        guest = f"{self.tag}-{name}"
        delete_netns(guest)
        self.namespaces.remove(guest)

    def dhcp(self, guest: str, tries: int = 6) -> IPv4Interface | None:
        """Run busybox udhcpc in the guest; the address it got (None: no lease)."""
        assert self.script is not None
        proc = run(
            guest, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", str(tries), "-T", "1",
            "-s", str(self.script), check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            return None
        with Links(guest) as links:
            found = [a for dev, a in links.addresses() if dev == "eth0" and a.version == 4]
        return found[0] if found else None  # type: ignore[return-value]

    def set_address(self, guest: str, address: str, *, default_dev: bool = False) -> None:
        run(guest, "ip", "addr", "add", address, "dev", "eth0")
        if default_dev:
            run(guest, "ip", "route", "add", "default", "dev", "eth0")

    def ping(self, src: str, ip: str) -> bool:
        proc = run(src, "busybox", "ping", "-c", "1", "-W", "1", ip, check=False)
        return proc.returncode == 0

    def serve(self, netns: str, port: int, tag: str) -> None:
        """Start the tag-and-peer TCP server in `netns` (killed by close())."""
        start_server(netns, TCP_SERVER, port, tag, self.processes)

    def wait_up(self, netns: str, name: str) -> None:
        """Until link `name` has carrier (its operstate no longer changes under a snapshot)."""
        deadline = time.monotonic() + 5
        while "state UP" not in run(netns, "ip", "link", "show", name).stdout:
            assert time.monotonic() < deadline, f"{name} in {netns} never came up"
            time.sleep(0.02)

    def snapshot(self, run_dir: Path) -> dict[str, object]:
        """What must be exactly as before after a network stops."""
        return {
            "links": mask_timers(run(self.host, "ip", "-d", "link", "show").stdout),
            "addresses": run(self.host, "ip", "addr", "show").stdout,
            "routes": run(self.host, "ip", "route", "show").stdout,
            "ruleset": run(self.host, "nft", "list", "ruleset").stdout,
            "ip_forward": run(self.host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout,
            "files": sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")),
        }

    def close(self) -> None:
        errors: list[Exception] = []
        for rt in self.runtimes:  # a no-op for a runtime the test stopped already
            try:
                stop_network(rt)
            except Exception as e:
                errors.append(e)
        for proc, files in self.daemons:
            stop_dnsmasq(proc, files)
        stop_processes(self.processes)
        for name in reversed(self.namespaces):
            try:
                if netns_exists(name):
                    delete_netns(name)
            except Exception as e:
                errors.append(e)
        self.namespaces.clear()
        if errors:
            raise errors[0]


def process_gone(pid: int) -> bool:
    """Dead, or a zombie waiting for PID 1 to reap it (PLATFORM.md: 1-2 s late)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if re.search(r"\) Z ", stat):
            return True
        time.sleep(0.05)
    return False
