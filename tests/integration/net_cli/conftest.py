"""Fixtures of the network CLI integration tests.

cli    netcli_lab.NetCli: host + upstream namespaces and a private VMKIT_ROOT, torn down after
       the test (processes by pid, namespaces, files), also when it fails
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from netcli_lab import NetCli

NEEDED = ["ip", "nft", "dnsmasq", "busybox", "nsenter"]


@pytest.fixture
def cli() -> Iterator[NetCli]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")
    lab = NetCli()
    try:
        lab.setup()
        yield lab
    finally:
        lab.close()
