"""RunFiles.remove_runtime: a finished run's directory goes, whatever is in it; logs stay."""

from __future__ import annotations

import socket
from pathlib import Path

from vmkit.engine.runfiles import RunFiles


def test_remove_runtime_removes_sockets_files_and_subdirs_but_not_logs(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "run" / "7", tmp_path / "log" / "uuid")
    files.create()
    files.pidfile.write_text("123\n")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(files.qmp_socket))
    (files.run_dir / "extra").mkdir()
    (files.run_dir / "extra" / "file").write_text("x")
    (files.run_dir / "link").symlink_to(files.log_dir)
    files.console_log.write_text("boot\n")

    files.remove_runtime()

    assert not files.run_dir.exists()
    assert files.console_log.read_text() == "boot\n"  # the symlink's target is untouched


def test_remove_runtime_of_a_missing_run_dir_is_quiet(tmp_path: Path) -> None:
    RunFiles(tmp_path / "gone", tmp_path / "log").remove_runtime()
    assert not (tmp_path / "gone").exists()
