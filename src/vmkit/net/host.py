"""`SystemHost`: the real side effects of net.realise, in one namespace.

It composes the thin adapters (Links for netlink, Nft, dnsmasq, Forwarding for the sysctls) and
plain file operations under the run dir. It decides nothing; net.realise plans and orders.
"""

from __future__ import annotations

import errno
from pathlib import Path

from vmkit.errors import NetlinkFailed, NetworkError, NotFound
from vmkit.model.network import IPInterface
from vmkit.net import dnsmasq
from vmkit.net.dnsmasq import DnsmasqFiles, DnsmasqProcess
from vmkit.net.links import HostView, Links
from vmkit.net.nft import FirewallPlan, Nft
from vmkit.net.realise import AddBridge
from vmkit.net.sysctl import Forwarding


class SystemHost:
    """Host effects in `netns` (the current namespace when None); state under `run_dir`."""

    def __init__(self, run_dir: Path, netns: str | None = None) -> None:
        self.run_dir = run_dir
        self.netns = netns
        self.nft = Nft(netns)
        self.forwarding = Forwarding(run_dir, netns)

    def _links(self) -> Links:
        return Links(self.netns)

    def view(self) -> HostView:
        with self._links() as links:
            return links.view()

    def make_dir(self, path: Path) -> None:
        try:
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as e:
            raise NetworkError(f"cannot create {path}: {e.strerror or e}") from e

    def remove_dir(self, path: Path) -> None:
        try:
            path.rmdir()
        except FileNotFoundError:
            return
        except OSError as e:
            left = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
            raise NetworkError(f"cannot remove {path}: {e.strerror or e} {left}") from e

    def add_bridge(self, step: AddBridge) -> None:
        with self._links() as links:
            links.add_bridge(step.name, stp=step.stp, delay=step.delay, mac=step.mac, mtu=step.mtu)

    def delete_link(self, name: str) -> None:
        with self._links() as links:
            try:
                links.delete(name)
            except NotFound:
                return
            except NetlinkFailed as e:
                if e.errno != errno.ENODEV:
                    raise

    def link_exists(self, name: str) -> bool:
        with self._links() as links:
            return links.get(name) is not None

    def add_address(self, dev: str, address: IPInterface) -> None:
        with self._links() as links:
            links.add_address(dev, address)

    def set_up(self, dev: str) -> None:
        with self._links() as links:
            links.set_up(dev)

    def apply_firewall(self, plan: FirewallPlan) -> None:
        self.nft.apply(plan)

    def remove_firewall(self, table: str) -> None:
        self.nft.remove(table)

    def table_exists(self, table: str) -> bool:
        return self.nft.has_table(table)

    def acquire_forwarding(self, user: str, keys: tuple[str, ...]) -> None:
        self.forwarding.acquire(user, keys)

    def release_forwarding(self, user: str, keys: tuple[str, ...]) -> None:
        self.forwarding.release(user, keys)

    def write_file(self, path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(text)
            tmp.chmod(0o644)
            tmp.replace(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise NetworkError(f"cannot write {path}: {e.strerror or e}") from e

    def remove_file(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise NetworkError(f"cannot remove {path}: {e.strerror or e}") from e

    def start_dnsmasq(self, files: DnsmasqFiles) -> DnsmasqProcess:
        return dnsmasq.start_dnsmasq(files, self.netns)

    def stop_dnsmasq(self, proc: DnsmasqProcess, files: DnsmasqFiles) -> None:
        dnsmasq.stop_dnsmasq(proc, files)

    def dnsmasq_running(self, proc: DnsmasqProcess, files: DnsmasqFiles) -> bool:
        return dnsmasq.dnsmasq_running(proc, files)
