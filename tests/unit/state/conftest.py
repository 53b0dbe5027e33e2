"""Fixtures for the state tests: a store under tmp_path and helper processes that use it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmkit.state.paths import Paths
from vmkit.state.store import Store

# What every helper process runs first: `paths` for the test's store, from argv.
PRELUDE = """
import os, sys, time
from pathlib import Path
from vmkit.state.paths import Paths
from vmkit.state.store import Store
from vmkit.state.records import DomainRuntime
from vmkit.state.locks import object_lock
paths = Paths(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
"""


class Procs:
    """Helper processes running `python -c PRELUDE + code` on one test's store."""

    def __init__(self, paths: Paths) -> None:
        self.argv_tail = [str(paths.data_dir), str(paths.run_dir), str(paths.cache_dir)]
        self.started: list[subprocess.Popen[str]] = []

    def start(self, code: str, *args: str) -> subprocess.Popen[str]:
        """Run `code` after PRELUDE; `args` follow the paths (sys.argv[4:])."""
        proc = subprocess.Popen(
            [sys.executable, "-c", PRELUDE + code, *self.argv_tail, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(proc)
        return proc

    @staticmethod
    def expect(proc: subprocess.Popen[str], want: str) -> None:
        """Read the helper's next stdout line; fail with its stderr unless it is `want`."""
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != want:
            os.kill(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            pytest.fail(f"helper said {line!r}, expected {want!r}; stderr:\n{err}")

    @staticmethod
    def say(proc: subprocess.Popen[str], line: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "lib", tmp_path / "run", tmp_path / "cache")


@pytest.fixture
def store(paths: Paths) -> Iterator[Store]:
    with Store.open(paths) as s:
        yield s


@pytest.fixture
def procs(paths: Paths) -> Iterator[Procs]:
    """Start helper processes; any still running at the end is killed by its pid."""
    helpers = Procs(paths)
    yield helpers
    helpers.kill_all()
