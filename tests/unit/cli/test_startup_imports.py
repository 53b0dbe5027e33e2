"""Start-up cost: the CLI and network engine modules must not import pyroute2 (0.15-0.4 s) until
a command talks netlink, so that net-list, net-dumpxml, list or dominfo stay quick."""

from __future__ import annotations

import subprocess
import sys

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
