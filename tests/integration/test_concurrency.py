"""8 vmkit processes at a time doing random operations on 4 domains: every command ends in success
or a clear error, and afterwards the records match the QEMU processes.

It runs 60 s, as the issue asks (VMKIT_STRESS_SECONDS changes it for a quicker local run).
The random choices are seeded (VMKIT_STRESS_SEED) so a failure can be replayed.
"""

from __future__ import annotations

import collections
import os
import random
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from lifecycle_checks import assert_consistent
from vmkit_cli import VmkitEnv, all_pids_of

pytestmark = pytest.mark.integration

SECONDS = float(os.environ.get("VMKIT_STRESS_SECONDS", "60"))
SEED = int(os.environ.get("VMKIT_STRESS_SEED", "20261125"))
WORKERS = 8
DOMAINS = [f"cc{i}" for i in range(4)]
# (operation, weight): lifecycle changes and the queries that reconcile between them.
OPERATIONS = [
    (("start",), 4),
    (("destroy",), 3),
    (("suspend",), 2),
    (("resume",), 2),
    (("dominfo",), 2),
    (("domstate", "--reason"), 2),
    (("list", "--all"), 2),
]


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stderr: str


def worker(vk: VmkitEnv, rng: random.Random, deadline: float, out: list[Result]) -> None:
    ops = [op for op, _ in OPERATIONS]
    weights = [w for _, w in OPERATIONS]
    while time.monotonic() < deadline:
        op = rng.choices(ops, weights)[0]
        args = op if op[0] == "list" else (*op, rng.choice(DOMAINS))
        r = subprocess.run(
            [sys.executable, "-m", "vmkit", *args],
            env=vk.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        out.append(Result(args, r.returncode, r.stderr))


def is_clear(r: Result) -> bool:
    """Success, or `error: <one line>` with a documented exit code (never a traceback)."""
    if r.returncode == 0:
        return r.stderr == ""
    return (
        1 <= r.returncode <= 5
        and re.fullmatch(r"error: [^\n]+\n", r.stderr) is not None
        and "Traceback" not in r.stderr
    )


def test_random_operations_in_parallel(vk: VmkitEnv) -> None:
    for name in DOMAINS:
        vk.ok("define", str(vk.domain_xml(name, machine="microvm", memory_mib=128)))
    results: list[Result] = []
    deadline = time.monotonic() + SECONDS
    threads = [
        threading.Thread(target=worker, args=(vk, random.Random(SEED + i), deadline, results))
        for i in range(WORKERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    unclear = [r for r in results if not is_clear(r)]
    assert unclear == [], "\n".join(f"{r.argv} -> {r.returncode}: {r.stderr}" for r in unclear)
    tally = collections.Counter((r.argv[0], r.returncode) for r in results)
    print(f"{len(results)} commands in {SECONDS:g} s: {sorted(tally.items())}")
    assert len(results) >= WORKERS * 5, "the commands did run"
    assert tally["start", 0] > 0 and tally["destroy", 0] > 0, tally

    vk.ok("list", "--all")
    assert_consistent(vk)
    for name in DOMAINS:  # every domain is usable afterwards
        state = vk.ok("domstate", name).strip()
        if state == "paused":
            vk.ok("resume", name)
        elif state == "shut off":
            vk.ok("start", name)
        vk.ok("suspend", name)
        vk.ok("resume", name)
        vk.ok("destroy", name)
    assert_consistent(vk)
    assert all_pids_of(vk.root) == []
