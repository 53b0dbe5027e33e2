"""A network started again puts the taps of running domains on its new bridge: which taps
(engine.nics.network_taps) and that every start asks for it (net_lifecycle._replug)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vmkit.engine import net_lifecycle, net_records, networks, nics, states
from vmkit.engine.context import Context
from vmkit.net.fake import RecordingHost
from vmkit.net.links import HostView
from vmkit.state.paths import Paths
from vmkit.state.records import DOMAIN, DomainRuntime

NET_XML = (
    "<network><name>nat1</name><forward mode='nat'/><bridge name='vmkbr7'/>"
    "<ip address='10.231.7.1' prefix='24'/></network>"
)
UUIDS = ["11111111-1111-4111-8111-11111111111" + str(n) for n in range(4)]


def domain_xml(name: str, uuid: str, nics_xml: str) -> str:
    return (
        f"<domain type='kvm'><name>{name}</name><uuid>{uuid}</uuid><memory unit='MiB'>64</memory>"
        f"<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>{nics_xml}</devices>"
        "</domain>"
    )


def nic(network: str, target: str = "") -> str:
    dev = f"<target dev='{target}'/>" if target else ""
    return f"<interface type='network'><source network='{network}'/>{dev}</interface>"


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    fake = RecordingHost(seen=HostView())
    monkeypatch.setattr(net_records, "host_factory", lambda run_dir: fake)
    c = Context.open(Paths(tmp_path / "lib", tmp_path / "run", tmp_path / "cache"))
    yield c
    c.close()


def add_domain(
    ctx: Context, n: int, nics_xml: str, taps: list[str], state: str = states.DomainState.RUNNING
) -> None:
    xml = domain_xml(f"vm{n}", UUIDS[n], nics_xml)
    ctx.store.define(DOMAIN, UUIDS[n], f"vm{n}", xml)
    ctx.store.put_runtime(
        DomainRuntime(UUIDS[n], 10 + n, state, live_xml=xml, extras={"taps": taps})
    )


def test_network_taps_are_the_recorded_taps_of_running_nics_on_the_network(ctx: Context) -> None:
    add_domain(ctx, 0, nic("nat1") + nic("other") + nic("nat1", "mytap0"), ["vk10n0", "mytap0"])
    add_domain(ctx, 1, nic("nat1"), ["vk11n0"], state=states.STARTING)  # not running yet
    add_domain(ctx, 2, nic("nat1"), [])  # a tap vmkit did not record is not ours
    add_domain(ctx, 3, "<interface type='bridge'><source bridge='vmkbr7'/></interface>", ["x"])
    assert nics.network_taps(ctx, "nat1") == ["vk10n0", "mytap0"]
    assert nics.network_taps(ctx, "other") == []


def test_every_start_replugs_and_a_failure_is_logged(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []

    def fake_replug(c: Context, network: str, bridge: str) -> list[tuple[str, str]]:
        asked.append((network, bridge))
        return [("vk10n0", "netlink set master of vk10n0 failed (errno 1)")]

    monkeypatch.setattr(net_lifecycle, "replug_taps", fake_replug)
    networks.define_network(ctx, networks.parse_network_xml(NET_XML, "t.xml"))
    networks.start(ctx, "nat1")
    networks.destroy(ctx, "nat1")
    entry, done = networks.start(ctx, "nat1")
    assert done == "started" and entry.active  # the network is up whatever the taps do
    assert asked == [("nat1", "vmkbr7")] * 2
    events = [e for e in ctx.store.events() if e.event == "replug-failed"]
    assert len(events) == 2 and "vk10n0" in events[0].detail
