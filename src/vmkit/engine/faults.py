"""Fault injection for crash-safety tests: `VMKIT_FAULT=<step>` kills this process at that step.

Steps are named `<operation>:<point>` (e.g. `start:after-launch`). Tests set the variable, run a
command, and check that the next command repairs whatever was left. Costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "VMKIT_FAULT"

STEPS: tuple[str, ...] = (
    "define:before-commit",
    "define:after-commit",
    "start:after-record",
    "start:after-launch",
    "start:after-commit",
    "destroy:before-kill",
    "destroy:after-kill",
    "destroy:after-cleanup",
    "undefine:before-commit",
    "undefine:after-commit",
)


def fault_point(step: str) -> None:
    """Die at once with SIGKILL if `VMKIT_FAULT` names this step."""
    if os.environ.get(ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
