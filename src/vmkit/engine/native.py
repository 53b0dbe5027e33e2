"""XML checks and `domxml-to-native`: the argv a start would run, made runnable as printed.

Runtime paths it names (QMP and console sockets, logs) are placed in a fresh temporary
directory that exists; NICs that need a tap name the tap from `<target dev>` or `vnetN`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vmkit.engine.context import Context, host_tsc_khz
from vmkit.model.devices import InterfaceType


def validate_xml(ctx: Context, data: bytes | str, source: str) -> None:
    """Parse and check a domain XML file as define would; raises InvalidConfig."""
    from vmkit.model.validate import validate_domain
    from vmkit.xml.domain import parse_domain

    dom = parse_domain(data, source=source)
    validate_domain(dom, machines=ctx.qemu_info().machine_names())


def to_native_argv(ctx: Context, data: bytes | str, source: str) -> list[str]:
    from vmkit.engine.domains import parse_and_check
    from vmkit.qemu.argv import ArgvOptions, RuntimePaths, build_argv

    dom = parse_and_check(ctx, data, source)
    run_dir = Path(tempfile.mkdtemp(prefix="vmkit-native-"))
    taps = {}
    for i, nic in enumerate(dom.devices.interfaces):
        if nic.type != InterfaceType.USER:
            taps[i] = nic.target_dev or f"vnet{i}"
    opts = ArgvOptions(
        accel=ctx.accel().accel,
        binary=ctx.qemu_binary(),
        vhost_net=Path("/dev/vhost-net").exists(),
        tsc_khz=host_tsc_khz(),
        taps=taps,
    )
    paths = RuntimePaths(
        qmp_socket=run_dir / "qmp.sock",
        console_socket=run_dir / "console.sock",
        console_log=run_dir / "console.log",
        run_dir=run_dir,
    )
    return build_argv(dom, opts, paths)
