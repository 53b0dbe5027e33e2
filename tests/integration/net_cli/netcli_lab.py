"""A throwaway namespace lab for driving the real `vmkit` network commands.

    host      the namespace vmkit runs in (`ip netns exec HOST python -m vmkit ...`, or
              `nsenter --net=...` for commands that make namespaces); stands in for the machine
    upstream  the outside world: host up0 198.51.100.1/24 <-> upstream eth0 198.51.100.2/24, and
              host's default route points at it
    guests    namespaces whose eth0 is a veth plugged into a bridge of host

Each lab has its own VMKIT_ROOT. `close()` kills every process started under that root or by the
lab (by pid), deletes every namespace the lab made or recorded, and removes the root: also after
a failure. Nothing here touches the root namespace.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nslab import (
    TCP_SERVER,
    UDHCPC_SCRIPT,
    HostAndUpstream,
    delete_netns_quietly,
    mask_timers,
    new_netns,
    ns_exec,
    start_server,
    stop_processes,
)

UP_HOST = "198.51.100.1"
UP_PEER = "198.51.100.2"
CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
        print(s.makefile().readline().strip())
except OSError as e:
    print(f"failed: {e}")
"""


sh = ns_exec


@dataclass
class NetCli(HostAndUpstream):
    tag: str = field(default_factory=lambda: f"vkc-{secrets.token_hex(3)}")
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vk")))
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def ns(self, role: str) -> str:
        """A new namespace of this lab (loopback up), deleted by close()."""
        return new_netns(f"{self.tag}-{role}", self.namespaces)

    def setup(self) -> NetCli:
        host, up = self.ns("h"), self.ns("u")
        subprocess.run(
            ["ip", "-n", host, "link", "add", "up0", "type", "veth", "peer", "name", "eth0",
             "netns", up],
            check=True, timeout=30,
        )  # fmt: skip
        sh(host, "ip", "addr", "add", f"{UP_HOST}/24", "dev", "up0")
        sh(host, "ip", "link", "set", "up0", "up")
        sh(up, "ip", "addr", "add", f"{UP_PEER}/24", "dev", "eth0")
        sh(up, "ip", "link", "set", "eth0", "up")
        sh(host, "ip", "route", "add", "default", "via", UP_PEER)
        return self

    # -- vmkit --------------------------------------------------------------------------------

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ) | {"VMKIT_ROOT": str(self.root)} | (extra or {})
        env.pop("VMKIT_FAULT", None)
        return env

    def argv(self, *args: str, nsenter: bool = False) -> list[str]:
        vmkit = [sys.executable, "-m", "vmkit", *args]
        if nsenter:  # keeps the mount namespace: namespaces vmkit makes outlive the command
            return ["nsenter", f"--net=/run/netns/{self.host}", *vmkit]
        return ["ip", "netns", "exec", self.host, *vmkit]

    def run(
        self, *args: str, nsenter: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args, nsenter=nsenter),
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, **kw: Any) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"vmkit {' '.join(args)} -> {r.returncode}\n{r.stderr}{r.stdout}"
        return r.stdout

    def fails(self, code: int, *args: str, match: str = "", **kw: Any) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == code, f"vmkit {' '.join(args)} -> {r.returncode}, want {code}\n{r}"
        assert r.stderr.startswith("error: "), r.stderr
        if match:
            assert re.search(match, r.stderr), f"{match!r} not in {r.stderr!r}"
        return r.stderr

    def xml(self, name: str, text: str) -> str:
        path = self.root / f"{name}.xml"
        path.write_text(text)
        return str(path)

    # -- guests and probes --------------------------------------------------------------------

    def guest(self, role: str, bridge: str, mac: str) -> str:
        """A namespace whose eth0 is plugged into `bridge` of host."""
        g = self.ns(role)
        port = f"{role}p"[:15]
        subprocess.run(
            ["ip", "-n", self.host, "link", "add", port, "type", "veth", "peer", "name", "eth0",
             "netns", g],
            check=True, timeout=30,
        )  # fmt: skip
        sh(self.host, "ip", "link", "set", port, "master", bridge, "up")
        sh(g, "ip", "link", "set", "eth0", "address", mac, "up")
        return g

    def dhcp(self, guest: str) -> str | None:
        """The address busybox udhcpc gets in `guest` (None: no lease)."""
        script = self.root / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        r = sh(guest, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "6", "-T", "1",
               "-s", str(script), check=False)  # fmt: skip
        if r.returncode != 0:
            return None
        out = sh(guest, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout.split()
        return out[3].split("/")[0] if len(out) > 3 else None

    def serve(self, netns: str, port: int, tag: str) -> None:
        start_server(netns, TCP_SERVER, port, tag, self.processes)

    def connect(self, netns: str, ip: str, port: int) -> str:
        return sh(netns, sys.executable, "-c", CLIENT, ip, str(port)).stdout.strip()

    # -- state --------------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Live processes whose command line names this lab's root (dnsmasq, fakes, vmkit)."""
        found = []
        needle = str(self.root).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if ") Z " in (proc / "stat").read_text():
                    continue
                if needle in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
        return found

    def snapshot(self) -> dict[str, object]:
        """What must be exactly as before once the networks are destroyed."""
        net_dir = self.root / "run" / "net"
        return {
            "links": mask_timers(sh(self.host, "ip", "-d", "link", "show").stdout),
            "addresses": sh(self.host, "ip", "addr", "show").stdout,
            "routes": sh(self.host, "ip", "route", "show").stdout,
            "rules": sh(self.host, "ip", "rule", "show").stdout,
            "ruleset": sh(self.host, "nft", "list", "ruleset").stdout,
            "ip_forward": sh(self.host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout,
            "processes": sorted(self.pids()),
            "files": sorted(str(p) for p in net_dir.rglob("*")) if net_dir.exists() else [],
            "netns": sorted(n for n in os.listdir("/run/netns") if n.startswith(self.tag)),
        }

    def wait_for(self, what: str, check: Any, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    def close(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        stop_processes(self.processes)
        made = [n for n in os.listdir("/run/netns") if n.startswith(self.tag)]
        delete_netns_quietly([*reversed(self.namespaces), *made])
        shutil.rmtree(self.root, ignore_errors=True)
