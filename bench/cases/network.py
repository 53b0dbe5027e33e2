"""Network rows: TCP throughput (iperf3) between two namespaces, over a plain veth pair, a plain
bridge, and a vmkit network of each model.

Everything happens in throwaway namespaces named after this process: two "guests" (A, B) and,
for the bridge and vmkit rows, a "host" namespace H that holds the bridge (vmkit's network is
started with `ip netns exec H vmkit net-start`, so its bridge, nftables and dnsmasq live in H).
Links are created inside the namespaces (`ip -n NS link add ... peer ... netns OTHER`), never in
the root namespace, and the subnets are 10.250.x.0/24 (never 192.0.2.0/24, 203.0.113.0/24 or
10.255.255.0/24, PLATFORM.md). Deleting the namespaces removes every link at once.

libvirt is not compared here (the issue compares vmkit's networks with veth and a bridge).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping

from bench import procs
from bench.model import Status
from bench.rows import NET_MODELS
from bench.runner import Case
from bench.session import Session

NET_COMMANDS = ("net-define", "net-start", "net-destroy", "net-undefine")
PREFIX = f"vb{os.getpid() % 100000}"


def ns_argv(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def ip(ns: str, *args: str) -> None:
    procs.run(["ip", "-n", ns, *args])


def network_xml(model: str, index: int) -> tuple[str, str, str]:
    """(XML, bridge name, subnet prefix 'a.b.c.') of the vmkit network of `model`."""
    bridge = f"{PREFIX[:8]}{model[:3]}"[:15]
    net = f"10.250.{20 + index}."
    address = f"<ip address='{net}1' prefix='24'/>"
    inner = {
        "bridge": "<forward mode='bridge'/>",
        "hostonly": address,
        "route": f"<forward mode='route'/>{address}",
        "nat": f"<forward mode='nat'/>{address}",
        "isolated": "",
    }[model]
    xml = f"<network><name>bench-{model}</name><bridge name='{bridge}'/>{inner}</network>\n"
    return xml, bridge, net


class Namespaces:
    """The throwaway namespaces of one measurement; `close()` deletes them all."""

    def __init__(self, tag: str) -> None:
        self.names: list[str] = []
        self.tag = tag

    def add(self, role: str) -> str:
        name = f"{PREFIX}{self.tag}{role}"
        procs.run(["ip", "netns", "add", name])
        self.names.append(name)
        ip(name, "link", "set", "lo", "up")
        return name

    def close(self) -> None:
        for name in reversed(self.names):
            procs.run(["ip", "netns", "del", name], check=False)
        self.names.clear()


def add_guest_link(guest: str, host: str, peer: str, address: str, bridge: str) -> None:
    """A veth from namespace `guest` (eth0, `address`) to `host` (`peer`, port of `bridge`)."""
    ip(guest, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", host)
    ip(guest, "addr", "add", address, "dev", "eth0")
    ip(guest, "link", "set", "eth0", "up")
    ip(host, "link", "set", peer, "master", bridge, "up")


def iperf(client: str, server: str, server_ip: str, seconds: int) -> float:
    """TCP bits/s from `client` to `server` (iperf3, one test)."""
    srv = procs.spawn(ns_argv(server, "iperf3", "-s", "-1", "-B", server_ip))
    try:
        argv = ns_argv(client, "iperf3", "-c", server_ip, "-t", str(seconds), "-J")
        error = ""
        for _attempt in range(50):
            result = procs.run(argv, check=False, timeout=seconds + 30)
            try:
                data = json.loads(result.stdout)
                return float(data["end"]["sum_received"]["bits_per_second"])
            except (ValueError, KeyError, TypeError):
                error = f"{result.stdout[-300:]} {result.stderr[-300:]}"
            time.sleep(0.1)  # the server is not listening yet
        raise RuntimeError(f"iperf3 failed: {error}")
    finally:
        if srv.poll() is None:
            srv.kill()
        srv.communicate()
        procs.release(srv)


class NetworkCase(Case):
    name = "network"
    rows = ("net.veth_pair", "net.plain_bridge", *(f"net.vmkit_{m}" for m in NET_MODELS))

    def __init__(self, session: Session, seconds: int = 3) -> None:
        self.session = session
        self.seconds = seconds
        self.round = 0
        self.failed_models: dict[str, str] = {}

    def unavailable(self, system: str) -> tuple[Status, str] | None:
        if system == "libvirt":
            return (Status.SKIPPED, "libvirt networks are not compared")
        if shutil.which("iperf3") is None:
            return (Status.NOT_INSTALLED, "iperf3 not installed (apt-get install -y iperf3)")
        if system == "vmkit":
            problem = self.session.system_problem(system)
            if problem is not None:
                return problem
            vmkit = self.session.vmkit
            if vmkit is None or not all(vmkit.has(c) for c in NET_COMMANDS):
                return (
                    Status.NOT_AVAILABLE,
                    f"not available yet (needs {', '.join(NET_COMMANDS)})",
                )
        return None

    def row_status(self, system: str) -> dict[str, tuple[Status, str]]:
        if system == "vmkit":  # baselines only exist on the floor
            return {
                k: (Status.SKIPPED, "baseline row") for k in ("net.veth_pair", "net.plain_bridge")
            }
        return {}

    def run_once(self, system: str) -> Mapping[str, float]:
        self.round += 1
        if system == "floor":
            veth = self._veth()
            bridge = self._bridge()
            values = {"net.veth_pair": veth, "net.plain_bridge": bridge}
            values.update({f"net.vmkit_{m}": bridge for m in NET_MODELS})
            return values
        values = {}
        for index, model in enumerate(NET_MODELS):
            if model in self.failed_models:
                continue
            try:
                values[f"net.vmkit_{model}"] = self._vmkit_network(model, index)
            except Exception as exc:
                self.failed_models[model] = str(exc)[-300:]
                self.session.log(f"network: vmkit '{model}' failed: {exc}")
        if not values:
            raise RuntimeError(
                "no vmkit network model worked: " + "; ".join(self.failed_models.values())
            )
        return values

    def _veth(self) -> float:
        spaces = Namespaces(f"v{self.round % 10}")
        try:
            a, b = spaces.add("a"), spaces.add("b")
            ip(a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
            for ns, addr in ((a, "10.250.1.1/24"), (b, "10.250.1.2/24")):
                ip(ns, "addr", "add", addr, "dev", "eth0")
                ip(ns, "link", "set", "eth0", "up")
            return iperf(a, b, "10.250.1.2", self.seconds)
        finally:
            spaces.close()

    def _bridge(self) -> float:
        spaces = Namespaces(f"b{self.round % 10}")
        try:
            h, a, b = spaces.add("h"), spaces.add("a"), spaces.add("b")
            ip(h, "link", "add", "br0", "type", "bridge")
            ip(h, "link", "set", "br0", "up")
            add_guest_link(a, h, "pa", "10.250.2.11/24", "br0")
            add_guest_link(b, h, "pb", "10.250.2.12/24", "br0")
            return iperf(a, b, "10.250.2.12", self.seconds)
        finally:
            spaces.close()

    def _vmkit_network(self, model: str, index: int) -> float:
        vmkit = self.session.vmkit
        assert vmkit is not None
        spaces = Namespaces(f"k{index}")
        xml, bridge, net = network_xml(model, index)
        path = self.session.root / f"net-{model}.xml"
        path.write_text(xml)
        name = f"bench-{model}"
        h = spaces.add("h")
        try:
            a, b = spaces.add("a"), spaces.add("b")
            if model == "bridge":  # forward mode='bridge' uses a bridge that already exists
                ip(h, "link", "add", bridge, "type", "bridge")
                ip(h, "link", "set", bridge, "up")
            procs.run(ns_argv(h, *vmkit.argv("net-define", str(path))), env=vmkit.env)
            procs.run(ns_argv(h, *vmkit.argv("net-start", name)), env=vmkit.env)
            add_guest_link(a, h, "pa", f"{net}11/24", bridge)
            add_guest_link(b, h, "pb", f"{net}12/24", bridge)
            return iperf(a, b, f"{net}12", self.seconds)
        finally:
            procs.run(ns_argv(h, *vmkit.argv("net-destroy", name)), env=vmkit.env, check=False)
            procs.run(ns_argv(h, *vmkit.argv("net-undefine", name)), env=vmkit.env, check=False)
            spaces.close()
