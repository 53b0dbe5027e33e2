"""Fault injection: VMKIT_FAULT=<step> kills the process at that step, and every step exists."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import vmkit.engine
from vmkit.engine import faults

CODE = "from vmkit.engine.faults import fault_point; fault_point('start:after-launch'); print('ok')"


@pytest.mark.parametrize(
    ("value", "rc"), [("start:after-launch", -signal.SIGKILL), ("define:before-commit", 0), ("", 0)]
)
def test_fault_point_kills_only_at_its_step(value: str, rc: int) -> None:
    env = {"VMKIT_FAULT": value, "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, check=False)
    assert r.returncode == rc
    assert (r.stdout == b"ok\n") == (rc == 0)


def test_steps_are_the_fault_points_in_the_engine() -> None:
    """STEPS (what the crash tests walk) names exactly the fault points the engine has."""
    engine = Path(vmkit.engine.__file__).parent
    found = set()
    for path in engine.glob("*.py"):
        found |= set(re.findall(r"fault_point\(\"([^\"]+)\"\)", path.read_text()))
    assert found == set(faults.STEPS)
    assert len(faults.STEPS) == len(set(faults.STEPS))
    assert all(re.fullmatch(r"[a-z]+:[a-z-]+", step) for step in faults.STEPS)
