"""Fixtures of the net integration tests: a namespace lab, made and destroyed per test.

lab        netlab.Lab: host + upstream namespaces (see netlab.py), deleted afterwards
run_dir    an empty run dir for vmkit's network files, checked and removed afterwards
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from netlab import Lab

NEEDED = ["ip", "nft", "dnsmasq", "busybox"]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")
    lab = Lab()
    try:
        lab.setup(tmp_path)
        yield lab
    finally:
        lab.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "run"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
