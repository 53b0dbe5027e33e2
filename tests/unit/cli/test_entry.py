"""The console script's fast exit (cli.main.entry, os._exit): buffered output is never lost,
the exit code is main's, and a reader that went away is exit code 1 without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vmkit.cli.registry import GROUPS


def _vmkit(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "VMKIT_ROOT": str(kwargs.pop("root"))}
    return subprocess.run(
        [sys.executable, "-m", "vmkit", *args], env=env, timeout=60, check=False, **kwargs
    )


def test_output_to_a_pipe_is_flushed_whole(tmp_path: Path) -> None:
    r = _vmkit("help", root=tmp_path, capture_output=True)
    assert r.returncode == 0, r.stderr
    names = [line.split()[0] for line in r.stdout.decode().splitlines() if line.startswith("  ")]
    assert names == [name for group in GROUPS.values() for name in group]  # none cut off


def test_exit_code_is_mains(tmp_path: Path) -> None:
    r = _vmkit("dominfo", "no-such-domain", root=tmp_path, capture_output=True)
    assert r.returncode != 0
    assert b"no-such-domain" in r.stderr


def test_a_closed_reader_is_exit_code_1_without_traceback(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = _vmkit("help", root=tmp_path, stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    assert r.returncode == 1
    assert b"Traceback" not in r.stderr
