"""Start-up cost: the CLI and network engine modules must not import pyroute2 (0.15-0.4 s) until
a command talks netlink, so that net-list, net-dumpxml, list or dominfo stay quick."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK = (
    "import sys\n"
    "import vmkit.cli.main, vmkit.cli.net_cmds, vmkit.cli.netns_cmds, vmkit.cli.domain_cmds\n"
    "import vmkit.cli.lifecycle_cmds, vmkit.cli.iface_cmds\n"
    "import vmkit.engine.networks, vmkit.engine.net_lifecycle, vmkit.engine.nics\n"
    "import vmkit.net.links, vmkit.net.netns, vmkit.net.taps, vmkit.net.host\n"
    "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'pyroute2')\n"
    "assert not loaded, loaded\n"
)


def test_net_modules_do_not_import_pyroute2() -> None:
    r = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr


# `vmkit list --all` and `vmkit dominfo NAME` must stay within ~25 ms of `python -c pass`: their
# path may not import lxml, QEMU's QMP library, pyroute2, the domain model (about 90 dataclasses)
# or the modules that cost milliseconds each at start-up (typing, json, subprocess, ElementTree,
# dataclasses with inspect, argparse with gettext and locale, shutil). The check runs the real
# commands against a temporary VMKIT_ROOT.
LIST_PATH = (
    "import sys\n"
    "import vmkit.cli.main, vmkit.cli.domain_cmds\n"
    "from vmkit.cli.main import main\n"
    "assert main(['list', '--all']) == 0\n"
    "assert main(['list']) == 0\n"
    "assert main(['dominfo', 'tiny']) == 0\n"
    "assert main(['domstate', 'tiny']) == 0\n"
    "banned = ('lxml', 'qemu', 'pyroute2', 'vmkit.model.domain', 'vmkit.xml', 'vmkit.qemu',\n"
    "          'typing', 'json', 'subprocess', 'xml.etree', 'dataclasses', 'argparse',\n"
    "          'shutil', 'locale', 'threading', 'asyncio')\n"
    "loaded = sorted(m for m in sys.modules\n"
    "                if any(m == b or m.startswith(b + '.') for b in banned))\n"
    "assert not loaded, loaded\n"
)

TINY_XML = (
    "<domain type='qemu'><name>tiny</name><uuid>8f5e8a4c-3a63-4a4f-9d55-0d6f2b0b8a11</uuid>"
    "<title>t</title><memory unit='KiB'>65536</memory><vcpu>1</vcpu>"
    "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
)


def test_list_and_dominfo_path_stays_light(tmp_path: Path) -> None:
    from vmkit.engine.context import Context
    from vmkit.state.paths import default_paths
    from vmkit.state.records import DOMAIN

    env = {**os.environ, "VMKIT_ROOT": str(tmp_path / "r")}
    env.pop("VMKIT_FAULT", None)
    # Store the definition directly: `define` needs QEMU's machine list, this test does not.
    with Context.open(default_paths({"VMKIT_ROOT": env["VMKIT_ROOT"]})) as ctx:
        ctx.store.define(DOMAIN, "8f5e8a4c-3a63-4a4f-9d55-0d6f2b0b8a11", "tiny", TINY_XML)
    r = subprocess.run(
        [sys.executable, "-c", LIST_PATH],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "tiny" in r.stdout
    assert "shut off" in r.stdout
    assert "65536 KiB" in r.stdout
