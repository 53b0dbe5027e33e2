"""Where vmkit keeps its files: state (database, definitions), runtime (sockets, pids, logs), cache.

System mode (root): /var/lib/vmkit, /run/vmkit, /var/cache/vmkit. Session mode (non-root): the XDG
directories. `VMKIT_ROOT` puts all three under one directory (tests use a short temporary one:
unix socket paths are limited to 107 bytes). This module only computes paths and makes folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from vmkit.state.frozen import Frozen


class Paths(Frozen):
    """The three roots and the well-known places under them."""

    _fields = ("data_dir", "run_dir", "cache_dir")
    __slots__ = _fields
    data_dir: Path
    run_dir: Path
    cache_dir: Path

    def __init__(self, data_dir: Path, run_dir: Path, cache_dir: Path) -> None:
        self._init(data_dir, run_dir, cache_dir)

    @property
    def db_file(self) -> Path:
        return self.data_dir / "vmkit.db"

    @property
    def locks_dir(self) -> Path:
        return self.run_dir / "locks"

    @property
    def guest_dir(self) -> Path:
        """Default output of `vmkit guest build`."""
        return self.cache_dir / "guest"

    def domain_run_dir(self, domain_id: int) -> Path:
        """Sockets and pidfile of a running domain, by id (short: unix paths max 107 bytes)."""
        return self.run_dir / "dom" / str(domain_id)

    def domain_log_dir(self, uuid: str) -> Path:
        """Logs of a domain that outlive its runs: console.log (all the guest printed), qemu.log."""
        return self.data_dir / "log" / uuid

    def console_log(self, uuid: str) -> Path:
        """All a domain's guest printed on its serial console, across its runs."""
        return self.domain_log_dir(uuid) / "console.log"

    def qemu_log(self, uuid: str) -> Path:
        """QEMU's own log of a domain's last run (with the trace of why it stopped)."""
        return self.domain_log_dir(uuid) / "qemu.log"

    def ensure(self) -> None:
        """Create the directories (mode 0700 for runtime state)."""
        for d in (self.data_dir, self.run_dir, self.cache_dir, self.locks_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)


def default_paths(environ: dict[str, str] | None = None) -> Paths:
    """Paths for this process: VMKIT_ROOT, else system mode for root, else XDG."""
    env = dict(os.environ) if environ is None else environ
    root = env.get("VMKIT_ROOT")
    if root:
        base = Path(root)
        return Paths(base / "lib", base / "run", base / "cache")
    if os.geteuid() == 0:
        return Paths(Path("/var/lib/vmkit"), Path("/run/vmkit"), Path("/var/cache/vmkit"))
    home = Path(env.get("HOME", "~")).expanduser()
    data = Path(env.get("XDG_DATA_HOME") or home / ".local/share") / "vmkit"
    runtime = env.get("XDG_RUNTIME_DIR")
    run = Path(runtime) / "vmkit" if runtime else Path(f"/tmp/vmkit-{os.getuid()}")
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "vmkit"
    return Paths(data, run, cache)
