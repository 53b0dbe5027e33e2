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
from dataclasses import dataclass

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
        """Stop what still runs inside (a dnsmasq left behind), then delete, by pid and name."""
        for name in reversed(self.names):
            listed = procs.run(["ip", "netns", "pids", name], check=False).stdout.split()
            procs.stop_pids([procs.Pid.of(int(pid)) for pid in listed if pid.isdigit()], grace=2)
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


@dataclass
class Topology:
    """Namespaces built once per system; each iteration only runs iperf3 across them."""

    spaces: Namespaces
    client: str
    server: str
    server_ip: str
    network: str = ""  # the vmkit network to take down at the end, if any


class NetworkCase(Case):
    name = "network"
    rows = ("net.veth_pair", "net.plain_bridge", *(f"net.vmkit_{m}" for m in NET_MODELS))

    def __init__(self, session: Session, seconds: int = 3) -> None:
        self.session = session
        self.seconds = seconds
        self.topologies: dict[str, Topology] = {}  # row key -> topology
        self.failed: dict[str, str] = {}  # row key -> why its vmkit network did not come up

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
        if system != "vmkit":
            return {}
        status = {
            k: (Status.SKIPPED, "baseline row") for k in ("net.veth_pair", "net.plain_bridge")
        }
        for key, why in self.failed.items():
            status[key] = (Status.ERROR, f"network did not come up: {why}")
        return status

    def setup(self, system: str) -> None:
        if system == "floor":
            self.topologies["net.veth_pair"] = self._veth()
            self.topologies["net.plain_bridge"] = self._bridge()
            return
        for index, model in enumerate(NET_MODELS):
            key = f"net.vmkit_{model}"
            try:
                self.topologies[key] = self._vmkit_network(model, index)
            except Exception as exc:
                self.failed[key] = str(exc).strip()[-300:]
                self.session.log(f"network: vmkit '{model}' did not come up: {exc}")
        if len(self.failed) == len(NET_MODELS):
            raise RuntimeError("no vmkit network came up")

    def run_once(self, system: str) -> Mapping[str, float]:
        if system == "floor":
            veth = self._measure("net.veth_pair")
            bridge = self._measure("net.plain_bridge")
            values = {"net.veth_pair": veth, "net.plain_bridge": bridge}
            values.update({f"net.vmkit_{m}": bridge for m in NET_MODELS})
            return values
        keys = [f"net.vmkit_{m}" for m in NET_MODELS]
        return {k: self._measure(k) for k in keys if k in self.topologies}

    def _measure(self, key: str) -> float:
        topo = self.topologies[key]
        return iperf(topo.client, topo.server, topo.server_ip, self.seconds)

    def teardown(self, system: str) -> None:
        if system == "floor":
            keys = ["net.veth_pair", "net.plain_bridge"]
        else:
            keys = [f"net.vmkit_{m}" for m in NET_MODELS]
        for key in keys:
            self.teardown_one(key)

    def _veth(self) -> Topology:
        spaces = Namespaces("v")
        try:
            a, b = spaces.add("a"), spaces.add("b")
            ip(a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
            for ns, addr in ((a, "10.250.1.1/24"), (b, "10.250.1.2/24")):
                ip(ns, "addr", "add", addr, "dev", "eth0")
                ip(ns, "link", "set", "eth0", "up")
        except Exception:
            spaces.close()
            raise
        return Topology(spaces, a, b, "10.250.1.2")

    def _bridge(self) -> Topology:
        spaces = Namespaces("b")
        try:
            h, a, b = spaces.add("h"), spaces.add("a"), spaces.add("b")
            ip(h, "link", "add", "br0", "type", "bridge")
            ip(h, "link", "set", "br0", "up")
            add_guest_link(a, h, "pa", "10.250.2.11/24", "br0")
            add_guest_link(b, h, "pb", "10.250.2.12/24", "br0")
        except Exception:
            spaces.close()
            raise
        return Topology(spaces, a, b, "10.250.2.12")

    def _vmkit_network(self, model: str, index: int) -> Topology:
        """Namespace H holds vmkit's network (started inside H); A and B hang on its bridge."""
        vmkit = self.session.vmkit
        assert vmkit is not None
        xml, bridge, net = network_xml(model, index)
        path = self.session.root / f"net-{model}.xml"
        path.write_text(xml)
        name = f"bench-{model}"
        spaces = Namespaces(f"k{index}")
        topo = Topology(spaces, "", "", f"{net}12")
        try:
            h = spaces.add("h")
            if model == "bridge":  # forward mode='bridge' uses a bridge that already exists
                ip(h, "link", "add", bridge, "type", "bridge")
                ip(h, "link", "set", bridge, "up")
            procs.run(ns_argv(h, *vmkit.argv("net-define", str(path))), env=vmkit.env)
            topo.network = name
            procs.run(ns_argv(h, *vmkit.argv("net-start", name)), env=vmkit.env)
            topo.client, topo.server = spaces.add("a"), spaces.add("b")
            add_guest_link(topo.client, h, "pa", f"{net}11/24", bridge)
            add_guest_link(topo.server, h, "pb", f"{net}12/24", bridge)
        except Exception:
            self.topologies[f"net.vmkit_{model}"] = topo
            self.teardown_one(f"net.vmkit_{model}")
            raise
        return topo

    def teardown_one(self, key: str) -> None:
        topo = self.topologies.pop(key, None)
        vmkit = self.session.vmkit
        if topo is None:
            return
        if topo.network and vmkit is not None and topo.spaces.names:
            host = topo.spaces.names[0]
            for verb in ("net-destroy", "net-undefine"):
                procs.run(
                    ns_argv(host, *vmkit.argv(verb, topo.network)), env=vmkit.env, check=False
                )
        topo.spaces.close()
