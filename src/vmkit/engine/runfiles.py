"""The files of one domain run: sockets and pidfile (removed at stop) and logs (kept).

Pure path arithmetic plus the removal of a finished run's runtime files.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from vmkit.state.frozen import Frozen
from vmkit.state.paths import Paths


class RunFiles(Frozen):
    """The run directory (sockets, pidfile) and the log directory of one domain run."""

    _fields = ("run_dir", "log_dir")
    __slots__ = _fields
    run_dir: Path
    log_dir: Path

    def __init__(self, run_dir: Path, log_dir: Path) -> None:
        self._init(run_dir, log_dir)

    @classmethod
    def for_domain(cls, paths: Paths, domain_id: int, uuid: str) -> RunFiles:
        return cls(paths.domain_run_dir(domain_id), paths.domain_log_dir(uuid))

    @classmethod
    def from_run_dir(cls, paths: Paths, run_dir: Path, uuid: str) -> RunFiles:
        return cls(run_dir, paths.domain_log_dir(uuid))

    @property
    def qmp_socket(self) -> Path:
        return self.run_dir / "qmp.sock"

    @property
    def console_socket(self) -> Path:
        return self.run_dir / "console.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "qemu.pid"

    @property
    def console_log(self) -> Path:
        return self.log_dir / "console.log"  # = Paths.console_log(uuid)

    @property
    def qemu_log(self) -> Path:
        return self.log_dir / "qemu.log"  # = Paths.qemu_log(uuid)

    def create(self) -> None:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def remove_runtime(self) -> None:
        """Remove sockets, pidfile and the run dir; logs stay for `console --history`.

        The run dir is flat; `shutil` (with bz2, lzma: ~3 ms a command) only for a dir in it.
        """
        try:
            entries = list(os.scandir(self.run_dir))
        except OSError:
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                import shutil

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        with contextlib.suppress(OSError):
            os.rmdir(self.run_dir)
