"""Where the store, locks and runtime files go."""

from __future__ import annotations

import os
from pathlib import Path

from vmkit.state.paths import Paths, default_paths


def test_vmkit_root_puts_everything_under_one_directory(tmp_path: Path) -> None:
    paths = default_paths({"VMKIT_ROOT": str(tmp_path)})
    assert paths == Paths(tmp_path / "lib", tmp_path / "run", tmp_path / "cache")
    assert paths.db_file == tmp_path / "lib" / "vmkit.db"
    assert paths.locks_dir == tmp_path / "run" / "locks"
    paths.ensure()
    assert (tmp_path / "run" / "locks").is_dir()
    assert (tmp_path / "lib").stat().st_mode & 0o077 == 0


def test_session_mode_uses_xdg_directories(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_RUNTIME_DIR": str(tmp_path / "rt"),
    }
    paths = default_paths(env)
    if os.geteuid() == 0:
        assert paths.data_dir == Path("/var/lib/vmkit")
        return
    assert paths.data_dir == tmp_path / "data" / "vmkit"
    assert paths.run_dir == tmp_path / "rt" / "vmkit"
    assert paths.cache_dir == tmp_path / ".cache" / "vmkit"
