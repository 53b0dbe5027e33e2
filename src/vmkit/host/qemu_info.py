"""What this QEMU binary offers: version, machine types, CPU models, devices, accelerators.

`find_qemu` locates qemu-system-x86_64 (env VMKIT_QEMU wins, then PATH); `load_qemu_info` asks
the binary (`--version`, `-machine help`, `-cpu help`, `-device help`, `-accel help`, run in
parallel, ~60 ms) and caches the parsed answer in a JSON file keyed on the binary's path, mtime
and size, so repeated CLI calls never spawn QEMU. Parsing lives in qemu_help.py; this module
owns running the binary (behind the `HelpRunner` seam) and the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vmkit.errors import LaunchFailed, QemuError
from vmkit.host import cache
from vmkit.host.qemu_help import (
    CpuModel,
    DeviceType,
    MachineType,
    parse_accelerators,
    parse_cpu_help,
    parse_devices,
    parse_machines,
    parse_version,
    parse_version_text,
)

QEMU_BINARY = "qemu-system-x86_64"
FALLBACK_BINARIES = ("/usr/libexec/qemu-kvm", "/usr/bin/qemu-kvm")
HELP_ARGS = (("--version",), ("-machine", "help"), ("-cpu", "help"), ("-device", "help"))
ACCEL_ARGS = ("-accel", "help")
CACHE_NAME = "host.json"  # in the cache directory; shared with the KVM verdict

__all__ = ["CpuModel", "DeviceType", "MachineType", "QemuInfo", "find_qemu", "load_qemu_info"]


@dataclass(frozen=True)
class QemuInfo:
    """A parsed, cacheable description of one QEMU binary."""

    path: Path
    version: tuple[int, int, int]
    version_text: str  # "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
    machines: dict[str, MachineType]  # every name QEMU accepts, aliases (pc, q35) included
    cpu_models: dict[str, CpuModel]
    cpu_flags: tuple[str, ...] = ()
    devices: dict[str, DeviceType] = field(default_factory=dict)
    accelerators: tuple[str, ...] = ()

    def resolve_machine(self, name: str) -> str | None:
        """The canonical machine for `name` ("pc" -> "pc-i440fx-7.2"), None if QEMU lacks it."""
        machine = self.machines.get(name)
        if machine is None:
            return None
        return machine.canonical or machine.name

    def machine_names(self) -> set[str]:
        """Every machine name QEMU accepts, aliases included (for domain validation)."""
        return set(self.machines)

    @property
    def binary(self) -> str:
        """The binary's path as a string (argv[0] of a launch)."""
        return str(self.path)

    @property
    def default_machine(self) -> str | None:
        return next((m.name for m in self.machines.values() if m.is_default), None)

    def aliases_of(self, canonical: str) -> list[str]:
        """Alias names that stand for `canonical` ("pc-q35-7.2" -> ["q35"])."""
        return [m.name for m in self.machines.values() if m.canonical == canonical]

    def resolve_device(self, name: str) -> str | None:
        """The device name for `name` or one of its aliases ("virtio-net" -> "virtio-net-pci")."""
        if name in self.devices:
            return name
        return next((d.name for d in self.devices.values() if name in d.aliases), None)

    @property
    def version_string(self) -> str:
        return ".".join(str(v) for v in self.version)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QemuInfo:
        """Inverse of `to_json` (raises KeyError/TypeError/ValueError on a malformed dict)."""
        return cls(
            path=Path(data["path"]),
            version=(int(data["version"][0]), int(data["version"][1]), int(data["version"][2])),
            version_text=str(data["version_text"]),
            machines={k: MachineType(**v) for k, v in data["machines"].items()},
            cpu_models={k: CpuModel(**v) for k, v in data["cpu_models"].items()},
            cpu_flags=tuple(data["cpu_flags"]),
            devices={
                k: DeviceType(**{**v, "aliases": tuple(v["aliases"])})
                for k, v in data["devices"].items()
            },
            accelerators=tuple(data["accelerators"]),
        )


def find_qemu(environ: Mapping[str, str] | None = None) -> Path:
    """The qemu-system-x86_64 to use: $VMKIT_QEMU (a path or a name on PATH), else PATH."""
    env = os.environ if environ is None else environ
    override = env.get("VMKIT_QEMU", "").strip()
    search_path = env.get("PATH", os.defpath)
    if override:
        found = shutil.which(override, path=search_path)
        if found is None:
            raise QemuError(f"VMKIT_QEMU={override}: no such executable")
        return Path(found).absolute()
    found = shutil.which(QEMU_BINARY, path=search_path)
    if found is None:
        found = next((b for b in FALLBACK_BINARIES if os.access(b, os.X_OK)), None)
    if found is None:
        raise QemuError(
            f"{QEMU_BINARY} not found on PATH: install QEMU (Debian: apt-get install "
            "qemu-system-x86) or set VMKIT_QEMU to its path"
        )
    return Path(found).absolute()


class HelpRunner(Protocol):
    """Runs several QEMU argv lists, returns their stdout in order (the seam tests fake)."""

    def __call__(self, argvs: Sequence[Sequence[str]]) -> list[str]: ...


def run_help_commands(argvs: Sequence[Sequence[str]], timeout: float = 30.0) -> list[str]:
    """Run the commands in parallel; LaunchFailed if one cannot start or exits non-zero."""
    procs: list[tuple[list[str], subprocess.Popen[bytes]]] = []
    try:
        for argv in argvs:
            args = [str(a) for a in argv]
            try:
                proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
            except OSError as e:
                raise LaunchFailed(args, None, str(e)) from e
            procs.append((args, proc))
        outputs: list[str] = []
        for args, proc in procs:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired as e:
                raise LaunchFailed(args, None, f"no answer within {timeout:g} s") from e
            if proc.returncode != 0:
                raise LaunchFailed(args, proc.returncode, err.decode(errors="replace"))
            outputs.append(out.decode(errors="replace"))
        return outputs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def query_qemu(qemu: Path, runner: HelpRunner | None = None) -> QemuInfo:
    """Ask the binary itself (no cache)."""
    run = runner or run_help_commands
    argvs = [[str(qemu), *args] for args in (*HELP_ARGS, ACCEL_ARGS)]
    version, machines, cpus, devices, accels = run(argvs)
    models, flags = parse_cpu_help(cpus)
    return QemuInfo(
        path=qemu,
        version=parse_version(version),
        version_text=parse_version_text(version),
        machines=parse_machines(machines),
        cpu_models=models,
        cpu_flags=flags,
        devices=parse_devices(devices),
        accelerators=parse_accelerators(accels),
    )


def binary_key(qemu: Path) -> dict[str, Any]:
    """Path, mtime and size of the binary: a new QEMU package means a new key."""
    try:
        st = os.stat(qemu)
    except OSError as e:
        raise QemuError(f"cannot stat QEMU binary {qemu}: {e.strerror}") from e
    return {"path": str(qemu), "mtime_ns": st.st_mtime_ns, "size": st.st_size}


def load_qemu_info(
    qemu: Path | None = None,
    cache_file: Path | None = None,
    *,
    cache_dir: Path | None = None,
    runner: HelpRunner | None = None,
) -> QemuInfo:
    """QemuInfo for `qemu` (default `find_qemu()`), from the cache when it is current.

    The cache is `cache_file`, else `cache_dir`/host.json, else none.
    """
    if cache_file is None and cache_dir is not None:
        cache_file = cache_dir / CACHE_NAME
    qemu = qemu or find_qemu()
    key = binary_key(qemu)
    section = f"qemu:{qemu}"
    hit = cache.load_entry(cache_file, key, section)
    if hit is not None:
        try:
            return QemuInfo.from_json(hit)
        except (KeyError, TypeError, ValueError, IndexError):
            pass
    info = query_qemu(qemu, runner)
    cache.store_entry(cache_file, key, info.to_json(), section)
    return info
