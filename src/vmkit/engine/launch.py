"""The launch-time parts of a start: the full QEMU argv and the settings made over QMP.

Adds to the pure argv what only a real start knows: acceleration, the host TSC, the taps made
for NICs, lifecycle actions, and the trace that records why QEMU stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from vmkit.engine.context import Context
from vmkit.engine.runfiles import RunFiles
from vmkit.engine.states import TRACE_EVENTS
from vmkit.model.domain import Domain, LifecycleAction
from vmkit.qemu.argv import ArgvOptions, RuntimePaths, build_argv
from vmkit.qemu.argv_context import HOTPLUG_PORTS


def build_launch_argv(
    ctx: Context,
    dom: Domain,
    files: RunFiles,
    *,
    tsc_khz: int | None,
    taps: Mapping[int, str] | None = None,
    root_ports: int | None = None,
) -> list[str]:
    """The argv of a start; `root_ports` (restore) asks for exactly that many root ports."""
    opts = ArgvOptions(
        accel=ctx.accel().accel,
        binary=ctx.qemu_binary(),
        vhost_net=Path("/dev/vhost-net").exists(),
        tsc_khz=tsc_khz,
        taps=dict(taps or {}),
        hotplug_ports=HOTPLUG_PORTS if root_ports is None else 0,
        root_ports=root_ports or 0,
    )
    runtime = RuntimePaths(
        qmp_socket=files.qmp_socket,
        console_socket=files.console_socket,
        console_log=files.console_log,
        run_dir=files.run_dir,
    )
    if any(nic.script_path for nic in dom.devices.interfaces):
        import copy

        dom = copy.deepcopy(dom)  # vmkit ran the ifup scripts when it made the taps
        for nic in dom.devices.interfaces:
            nic.script_path = None
    argv = build_argv(dom, opts, runtime)
    for event in TRACE_EVENTS:
        argv += ["-trace", event]
    if dom.effective_on_poweroff == LifecycleAction.PRESERVE:
        argv.append("-no-shutdown")  # keep QEMU (status 'shutdown') for inspection
    return argv


def needs_qmp_setup(dom: Domain) -> bool:
    """Whether the start must stop at -S to set things QEMU's command line cannot."""
    if any(g.passwd for g in dom.devices.graphics):
        return True
    if _balloon_target(dom) is not None:
        return True
    return any(nic.link_state == "down" for nic in dom.devices.interfaces)


def _balloon_target(dom: Domain) -> int | None:
    """Bytes to balloon down to at start when currentMemory is below memory."""
    cur = dom.current_memory_kib
    balloon = dom.devices.memballoon
    if cur is None or cur >= dom.memory_kib or (balloon is not None and balloon.model == "none"):
        return None
    return cur * 1024


def setup_over_qmp(qmp_socket: Path, dom: Domain, *, resume: bool) -> None:
    """VNC password, links set down; then `cont` unless the domain starts paused."""
    from vmkit.qemu.qmp import QmpSession

    with QmpSession.connect(qmp_socket, timeout=10.0) as qmp:
        for g in dom.devices.graphics:
            if g.passwd:
                qmp.execute("set_password", {"protocol": "vnc", "password": g.passwd})
        for i, nic in enumerate(dom.devices.interfaces):
            if nic.link_state == "down":
                qmp.execute("set_link", {"name": f"net{i}", "up": False})
        target = _balloon_target(dom)
        if target is not None:
            import contextlib

            from vmkit.errors import QmpError

            with contextlib.suppress(QmpError):  # no balloon: the guest keeps its memory
                qmp.execute("balloon", {"value": target})
        if resume:
            qmp.execute("cont")
