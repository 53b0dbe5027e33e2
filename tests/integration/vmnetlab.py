"""A lab of throwaway network namespaces in which the real `vmkit` CLI runs real tiny guests.

    with NetLab(tiny_guest) as lab:             # makes the namespaces; close() undoes everything
        lab.vk.ok("net-define", ...)            # vmkit runs *inside* the host namespace
        lab.serve(lab.upstream, 7000, "upstream")
        lab.http_get(lab.upstream, "10.232.1.10", 80)   # -> "g1 172.31.99.2" or None
        probe_from_guest(lab.vk, "g1", {"up": "http://172.31.99.2:7000/"})  # -> {"up": ...}

Topology (nothing of it in the root namespace; names `vkn-<hex>-h` / `vkn-<hex>-u`):

    host      where vmkit runs (`ip netns exec HOST python -m vmkit ...`, its own VMKIT_ROOT):
              up0 172.31.99.1/30, default route via upstream
    upstream  the outside world: eth0 172.31.99.2/30, a route to 10.232.0.0/16 via host (so
              that only vmkit's firewall decides whether upstream reaches a guest), IP forwarding
              off; optionally a LAN: a bridge `lanbr` in host (no address), joined by the veth
              lan0 <-> upstream lan1 172.31.98.1/24, with a dnsmasq in upstream serving DHCP on
              it (for networks of forward mode 'bridge')

The servers that probes talk to answer any HTTP request with one line, "<tag> <peer address>":
`serve()` runs a Python one in a namespace, `httpd_command()` is the guest shell text for busybox
httpd with a CGI. Probes use busybox wget under `timeout` (busybox 1.35's `wget -T` segfaults).

`close()` (also after a failure): `vmkit destroy` / `net-destroy` of everything, then kills by
pid every QEMU (run/dom/*/qemu.pid) and dnsmasq (pid files under run/net) of the lab's
VMKIT_ROOT, every server the lab started and the LAN dnsmasq, deletes both namespaces and the
VMKIT_ROOT.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nslab import (
    HostAndUpstream,
    delete_netns_quietly,
    mask_timers,
    new_netns,
    ns_exec,
    start_server,
    stop_processes,
)
from vmkit_cli import VmkitEnv, all_pids_of

from vmkit.guest import GuestImage

HOST_UP = "172.31.99.1"
UPSTREAM_UP = "172.31.99.2"
LAN_UPSTREAM = "172.31.98.1"
LAN_SUBNET = "172.31.98.0/24"
GUEST_SUPERNET = "10.232.0.0/16"  # every network of the tests takes a /24 of it
LAN_BRIDGE = "lanbr"
PROBE_TIMEOUT = 4  # seconds a probe waits for an answer (generous: TCG guests on a busy host)

_REMOTE_RE = re.compile(r"\[(?:::ffff:)?([^\]]+)\]")

# An HTTP/1.0 server answering every request with "<tag> <peer>"; prints "ready" once listening.
SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    try:
        c.settimeout(2)
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        body = f"{sys.argv[2]} {peer[0]}\n".encode()
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    except OSError:
        pass
    finally:
        c.close()
"""


def ns_run(
    netns: str, *argv: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run argv inside `netns` (never in the root namespace)."""
    proc = ns_exec(netns, *argv, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"[{netns}] {' '.join(argv)} -> {proc.returncode}\n{proc.stderr}{proc.stdout}"
        )
    return proc


def _ip(*argv: str) -> None:
    """`ip` with -n or netns subcommands only (every call names a lab namespace)."""
    assert argv[0] in ("-n", "netns"), argv
    proc = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"ip {' '.join(argv)} -> {proc.returncode}: {proc.stderr}")


def normalize_answer(text: str) -> str:
    """'g1 [::ffff:10.232.1.5]' (busybox httpd's REMOTE_ADDR) -> 'g1 10.232.1.5'."""
    return _REMOTE_RE.sub(r"\1", text.strip())


@dataclass
class NsVmkit(VmkitEnv):
    """VmkitEnv whose every `vmkit` runs inside a network namespace."""

    netns: str = ""

    def run(
        self,
        *args: str,
        input: str | bytes | None = None,
        timeout: float = 120,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        assert self.netns, "NsVmkit needs a namespace"
        env = self.env | (extra_env or {})
        data = input.decode() if isinstance(input, bytes) else input
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, sys.executable, "-m", "vmkit", *args],
            input=data if data is not None else "",
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    def guest(self, name: str, command: str, *, timeout: float = 30) -> str:
        """Like VmkitEnv.guest, but stdin stays open until the answer is in: `vmkit console`
        detaches 1 s after its input ends and the guest falls silent, and a probe waiting 2 s
        for a dropped connection is silent that long."""
        marker = f"__done_{time.monotonic_ns()}__"
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-m", "vmkit", "console", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        out = b""
        try:
            proc.stdin.write(f"{command}; echo {marker}\n".encode())
            proc.stdin.flush()
            deadline = time.monotonic() + timeout
            fd = proc.stdout.fileno()
            while True:
                text = out.decode(errors="replace").replace("\r", "")
                tail = text.split(f"echo {marker}", 1)
                if len(tail) == 2 and marker in tail[1]:
                    break
                left = deadline - time.monotonic()
                assert left > 0, f"no answer from guest {name} in {timeout} s:\n{text}"
                ready, _, _ = select.select([fd], [], [], min(left, 0.5))
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        err = proc.stderr.read().decode() if proc.stderr else ""
                        raise AssertionError(f"console of {name} closed:\n{text}\n{err}")
                    out += chunk
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()
        body = text.split(f"echo {marker}", 1)[1].split(marker, 1)[0]
        return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", body).strip("\n")


# ---------------------------------------------------------------------------------------------
# the lab


@dataclass
class NetLab(HostAndUpstream):
    image: GuestImage
    tag: str = field(default_factory=lambda: f"vkn-{secrets.token_hex(3)}")
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vk")))
    namespaces: list[str] = field(default_factory=list)
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    lan_pidfile: Path | None = None
    domains: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    _vk: NsVmkit | None = None

    @property
    def vk(self) -> NsVmkit:
        if self._vk is None:
            self._vk = NsVmkit(self.root, self.image, netns=self.host)
        return self._vk

    @property
    def net_run_dir(self) -> Path:
        return self.root / "run" / "net"

    def __enter__(self) -> NetLab:
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building -----------------------------------------------------------------------------

    def _netns(self, name: str) -> None:
        new_netns(name, self.namespaces, create=lambda n: _ip("netns", "add", n), all_dad=True)

    def setup(self) -> None:
        h, u = self.host, self.upstream
        self._netns(h)
        self._netns(u)
        _ip("-n", h, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", u)
        _ip("-n", h, "addr", "add", f"{HOST_UP}/30", "dev", "up0")
        _ip("-n", h, "link", "set", "up0", "up")
        _ip("-n", u, "addr", "add", f"{UPSTREAM_UP}/30", "dev", "eth0")
        _ip("-n", u, "link", "set", "eth0", "up")
        _ip("-n", h, "route", "add", "default", "via", UPSTREAM_UP)
        _ip("-n", u, "route", "add", GUEST_SUPERNET, "via", HOST_UP)
        if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
            # PLATFORM.md's br_netfilter pitfall, on purpose (this namespace only)
            ns_run(h, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
        self.wait_carrier(h, "up0")

    def set_forwarding(self, on: bool) -> None:
        """net.ipv4.ip_forward of the host namespace (before a snapshot: part of the baseline)."""
        ns_run(self.host, "sysctl", "-qw", f"net.ipv4.ip_forward={int(on)}")

    def add_lan(self) -> None:
        """The LAN for mode 'bridge': host bridge lanbr (no address, STP off) <-> upstream lan1,
        with a dnsmasq in upstream handing out 172.31.98.100-199."""
        h, u = self.host, self.upstream
        _ip("-n", h, "link", "add", LAN_BRIDGE, "type", "bridge", "stp_state", "0",
            "forward_delay", "0")  # fmt: skip
        _ip("-n", h, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1", "netns", u)
        _ip("-n", h, "link", "set", "lan0", "master", LAN_BRIDGE)
        _ip("-n", h, "link", "set", "lan0", "up")
        _ip("-n", h, "link", "set", LAN_BRIDGE, "up")
        _ip("-n", u, "addr", "add", f"{LAN_UPSTREAM}/24", "dev", "lan1")
        _ip("-n", u, "link", "set", "lan1", "up")
        lan_dir = self.root / "lan"
        lan_dir.mkdir()
        self.lan_pidfile = lan_dir / "dnsmasq.pid"
        ns_run(
            u, "dnsmasq", "--conf-file=/dev/null", "--bind-interfaces", "--interface=lan1",
            "--except-interface=lo", "--port=0", "--no-ping", "--user=root",
            "--dhcp-range=172.31.98.100,172.31.98.199,255.255.255.0,1h",
            f"--pid-file={self.lan_pidfile}", f"--dhcp-leasefile={lan_dir / 'leases'}",
        )  # fmt: skip
        self.wait_carrier(h, LAN_BRIDGE)
        self.wait_carrier(u, "lan1")

    def wait_carrier(self, netns: str, dev: str, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while "LOWER_UP" not in ns_run(netns, "ip", "link", "show", dev).stdout:
            assert time.monotonic() < deadline, f"{dev} in {netns} never got a carrier"
            time.sleep(0.02)

    # -- servers and probes from namespaces ---------------------------------------------------

    def serve(self, netns: str, port: int, tag: str) -> subprocess.Popen[str]:
        """The '<tag> <peer>' HTTP server in a namespace, until close() (or stop_servers())."""
        return start_server(netns, SERVER, port, tag, self.servers)

    def stop_servers(self) -> None:
        stop_processes(self.servers)
        self.servers.clear()

    def http_get(self, netns: str, ip: str, port: int, path: str = "/") -> str | None:
        """The answer of a '<tag> <peer>' server, fetched from inside `netns` (None: no answer
        within PROBE_TIMEOUT)."""
        proc = ns_run(
            netns, "busybox", "timeout", str(PROBE_TIMEOUT), "busybox", "wget", "-q", "-O", "-",
            f"http://{ip}:{port}{path}", check=False,
        )  # fmt: skip
        answer = normalize_answer(proc.stdout)
        return answer if proc.returncode == 0 and answer else None

    def http_get_many(self, probes: Mapping[str, tuple[str, str, int, str]]) -> dict[str, Any]:
        """Several http_get at once: label -> (netns, ip, port, path)."""
        with ThreadPoolExecutor(max_workers=max(1, len(probes))) as pool:
            futures = {k: pool.submit(self.http_get, *v) for k, v in probes.items()}
            return {k: f.result() for k, f in futures.items()}

    # -- what the host namespace holds --------------------------------------------------------

    def host_pids(self) -> list[int]:
        """Every live process inside the host namespace."""
        want = f"net:[{os.stat(f'/run/netns/{self.host}').st_ino}]"
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(proc / "ns" / "net") != want:
                    continue
                if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
                found.append(int(proc.name))
        return found

    def describe_pids(self, pids: list[int]) -> list[str]:
        out = []
        for pid in pids:
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                out.append(f"{pid} {cmd.decode(errors='replace').strip()}")
        return out

    def snapshot(self) -> dict[str, str]:
        """What must be exactly as before once every domain and network is destroyed."""
        h = self.host
        net_files = (
            sorted(str(p.relative_to(self.net_run_dir)) for p in self.net_run_dir.rglob("*"))
            if self.net_run_dir.exists()
            else []
        )
        return {
            "ip -d link": mask_timers(ns_run(h, "ip", "-d", "link", "show").stdout),
            "ip addr": ns_run(h, "ip", "addr", "show").stdout,
            "ip route": ns_run(h, "ip", "route", "show").stdout,
            "ip -6 route": ns_run(h, "ip", "-6", "route", "show").stdout,
            "nft list ruleset": ns_run(h, "nft", "list", "ruleset").stdout,
            "ip_forward": ns_run(h, "sysctl", "net.ipv4.ip_forward").stdout,
            "processes": "\n".join(self.describe_pids(self.host_pids())),
            f"files in {self.net_run_dir}": "\n".join(net_files),
        }

    # -- teardown -----------------------------------------------------------------------------

    def destroy_all(self) -> list[str]:
        """`vmkit destroy` every domain and `net-destroy` every network the test made (also
        undefines them); returns the failures (empty when all went well)."""
        failures = []
        for dom in self.domains:
            r = self.vk.run("destroy", dom)
            if r.returncode != 0 and "not running" not in r.stderr:
                failures.append(f"vmkit destroy {dom} -> {r.returncode}: {r.stderr.strip()}")
        for net in self.networks:
            r = self.vk.run("net-destroy", net)
            if r.returncode != 0 and "not active" not in r.stderr:
                failures.append(f"vmkit net-destroy {net} -> {r.returncode}: {r.stderr.strip()}")
        return failures

    def _our_pids_from(self, pattern: str) -> list[int]:
        pids = []
        for pidfile in self.root.glob(pattern):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pidfile.read_text().split()[0]))
        return pids

    def lan_pids(self) -> list[int]:
        """The LAN's dnsmasq in upstream (the lab's, not vmkit's)."""
        return self._our_pids_from("lan/dnsmasq.pid") if self.lan_pidfile else []

    def _kill_ours(self, pid: int) -> None:
        """SIGKILL pid if its command line names our VMKIT_ROOT (so never someone else's)."""
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(self.root).encode() in cmdline:
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if (self.root / "lib").exists() and self.namespaces:
                self.destroy_all()
        for pid in self._our_pids_from("run/dom/*/qemu.pid"):
            self._kill_ours(pid)
        for pid in self._our_pids_from("run/net/**/*.pid"):
            self._kill_ours(pid)
        for pid in self.lan_pids():
            self._kill_ours(pid)
        for pid in all_pids_of(self.root):
            self._kill_ours(pid)
        self.stop_servers()
        delete_netns_quietly(reversed(self.namespaces))
        self.namespaces.clear()
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# guests, driven over `vmkit console`

PROBE_RE = re.compile(r"^R (\S+) (.*)$")


def nic_xml(network: str, mac: str) -> str:
    return (
        f"<interface type='network'><source network='{network}'/>"
        f"<mac address='{mac}'/><model type='virtio'/></interface>"
    )


def httpd_command(tag: str, port: int = 80) -> str:
    """Guest shell text starting busybox httpd on `port` with /cgi-bin/who, a CGI answering
    '<tag> <peer>' (REMOTE_ADDR comes as '[::ffff:a.b.c.d]': see normalize_answer)."""
    cgi = "/www/cgi-bin/who"
    return (
        f"mkdir -p /www/cgi-bin; echo '#!/bin/sh' >{cgi}; "
        f"""echo 'echo Content-Type: text/plain; echo; echo "{tag} $REMOTE_ADDR"' >>{cgi}; """
        f"chmod +x {cgi}; httpd -p {port} -h /www"
    )


def probe_from_guest(vk: VmkitEnv, name: str, urls: Mapping[str, str]) -> dict[str, str | None]:
    """Fetch every URL from inside the guest at once (PROBE_TIMEOUT each); label -> answer or
    None."""
    loop = " ".join(urls.values())
    cmd = (
        f"for u in {loop}; do "
        f'(r=$(timeout {PROBE_TIMEOUT} wget -q -O - "$u" 2>/dev/null); echo "R $u ${{r:-FAIL}}") & '
        "done; wait"
    )
    out = vk.guest(name, cmd, timeout=30)
    got: dict[str, str] = {}
    for line in out.splitlines():
        m = PROBE_RE.match(line.strip())
        if m:
            got[m.group(1)] = normalize_answer(m.group(2))
    missing = [u for u in urls.values() if u not in got]
    assert not missing, f"no probe result from {name} for {missing}:\n{out}"
    return {k: (None if got[u] == "FAIL" else got[u]) for k, u in urls.items()}
