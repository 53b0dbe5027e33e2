"""What every engine operation needs: paths, the store, and host facts, each opened lazily.

Keeps CLI start-up cheap: nothing here imports lxml, qemu.qmp or spawns QEMU until asked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from vmkit.state.locks import object_lock
from vmkit.state.paths import Paths, default_paths
from vmkit.state.store import Store

TYPE_CHECKING = False  # typing is not imported at run time: start-up cost
if TYPE_CHECKING:
    from collections.abc import Iterator

    from vmkit.host.kvm import AccelInfo
    from vmkit.host.qemu_info import QemuInfo

LOCK_TIMEOUT = 30.0


class Context:
    """One command's view of vmkit: open it, use it, close it.

    A plain class, not a dataclass: importing `dataclasses` costs `vmkit list` ~10 ms.
    """

    def __init__(
        self,
        paths: Paths,
        _store: Store | None = None,
        _accel: AccelInfo | None = None,
        _qemu_info: QemuInfo | None = None,
    ) -> None:
        self.paths = paths
        self._store = _store
        self._accel = _accel
        self._qemu_info = _qemu_info

    def __repr__(self) -> str:
        return f"Context(paths={self.paths!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Context)
        mine = (self.paths, self._store, self._accel, self._qemu_info)
        return mine == (other.paths, other._store, other._accel, other._qemu_info)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    @classmethod
    def open(cls, paths: Paths | None = None) -> Context:
        return cls(paths or default_paths())

    @property
    def store(self) -> Store:
        if self._store is None:
            self.paths.ensure()
            self._store = Store.open(self.paths)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def lock(self, kind: str, key: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Serialise commands on one object; other objects never wait."""
        self.paths.ensure()
        with object_lock(self.paths, kind, key, timeout=timeout):
            yield

    def accel(self) -> AccelInfo:
        """kvm when usable here, else tcg (cached on disk by the host layer)."""
        if self._accel is None:
            from vmkit.host.kvm import detect_accel

            forced = os.environ.get("VMKIT_ACCEL")
            self.paths.ensure()
            self._accel = detect_accel(self.paths.cache_dir / "accel.json", force=forced)
        return self._accel

    def qemu_info(self) -> QemuInfo:
        """Machine types, CPU models and version of the QEMU binary in use (cached on disk)."""
        if self._qemu_info is None:
            from vmkit.host.qemu_info import load_qemu_info

            self.paths.ensure()
            self._qemu_info = load_qemu_info(cache_dir=self.paths.cache_dir)
        return self._qemu_info

    def qemu_binary(self) -> str:
        return self.qemu_info().binary


def host_tsc_khz(cpuinfo: Path = Path("/proc/cpuinfo")) -> int | None:
    """The host's TSC in kHz from 'cpu MHz' (microvm needs it on the kernel command line)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("cpu MHz"):
                return int(float(line.split(":", 1)[1]) * 1000)
    except (OSError, ValueError):
        return None
    return None
