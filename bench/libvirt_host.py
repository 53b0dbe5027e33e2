"""The private libvirt host: runs libvirtd + virtlogd with the system's paths swapped for ours.

Started by bench.libvirt as `unshare --mount --propagation private -- python -m
bench.libvirt_host DIR`. Inside that private mount namespace it bind-mounts folders of DIR over
/etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt, so the
daemons (root, qemu:///system) keep every file, socket and domain definition in DIR and never
see or change the system's. The client socket lives in DIR/sock (not covered by a bind mount),
so virsh reaches it from the normal namespace with `qemu:///system?socket=DIR/sock/libvirt-sock`.

This process is a child subreaper: libvirt daemonizes each QEMU, which is then adopted here and
reaped at once (PLATFORM.md: without it libvirt's destroy waits 1.6 s for PID 1). It prints one
JSON line {"libvirtd": pid, "virtlogd": pid} when the daemons answer, and on SIGTERM (or when
the bench dies: PR_SET_PDEATHSIG) stops them and kills every QEMU it adopted, by pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

# system path -> folder under DIR
BIND = {
    "/etc/libvirt": "etc",
    "/run/libvirt": "run",
    "/var/lib/libvirt": "lib",
    "/var/log/libvirt": "log",
    "/var/cache/libvirt": "cache",
}

LIBVIRTD_CONF = """\
unix_sock_dir = "{sock}"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:{log}/libvirtd.log"
"""

# cgroup_controllers = []: libvirt would otherwise create machine/ cgroups at the root of every
# v1 controller here (no systemd), outside the temporary folder; vmkit uses no cgroups either.
QEMU_CONF = """\
cgroup_controllers = [ ]
"""

VIRTLOGD_CONF = """\
log_outputs = "3:file:{log}/virtlogd.log"
"""


class Stop(Exception):
    """Raised by the SIGTERM handler to leave the reaping loop."""


def _on_term(signum: int, frame: object) -> None:
    raise Stop


def write_configs(base: Path) -> None:
    """Folders and configuration files of the private host under `base`."""
    for sub in [*BIND.values(), "sock"]:
        (base / sub).mkdir(mode=0o755, parents=True, exist_ok=True)
    (base / "etc" / "qemu").mkdir(exist_ok=True)
    log = base / "log"
    (base / "etc" / "libvirtd.conf").write_text(LIBVIRTD_CONF.format(sock=base / "sock", log=log))
    (base / "etc" / "qemu.conf").write_text(QEMU_CONF)
    (base / "etc" / "virtlogd.conf").write_text(VIRTLOGD_CONF.format(log=log))


def bind_mounts(base: Path) -> None:
    """Bind base/* over the system's libvirt folders (this mount namespace only)."""
    for target, sub in BIND.items():
        Path(target).mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(base / sub), target], check=True)


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear in {timeout} s")
        time.sleep(0.02)


def start_daemons(base: Path) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """virtlogd then libvirtd in the foreground, as children of this process."""
    log = base / "log"
    virtlogd = subprocess.Popen(
        [
            "virtlogd",
            "--config",
            str(base / "etc/virtlogd.conf"),
            "--pid-file",
            str(base / "vl.pid"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=(log / "virtlogd.out").open("wb"),
        stderr=subprocess.STDOUT,
    )
    _wait_socket(Path("/run/libvirt/virtlogd-sock"), virtlogd, 20)
    libvirtd = subprocess.Popen(
        [
            "libvirtd",
            "--config",
            str(base / "etc/libvirtd.conf"),
            "--pid-file",
            str(base / "lv.pid"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=(log / "libvirtd.out").open("wb"),
        stderr=subprocess.STDOUT,
    )
    _wait_socket(base / "sock" / "libvirt-sock", libvirtd, 30)
    return virtlogd, libvirtd


def _children() -> list[int]:
    pids: list[int] = []
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            pids += [int(p) for p in Path(f"/proc/self/task/{task}/children").read_text().split()]
    return pids


def shut_down(daemons: list[subprocess.Popen[bytes]]) -> None:
    """Stop the daemons (SIGTERM, then SIGKILL), then kill every adopted QEMU, all by pid."""
    for proc in reversed(daemons):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for pid in _children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break


def reap_until_exit(daemons: list[subprocess.Popen[bytes]]) -> None:
    """Reap every child the moment it exits (adopted QEMUs too) until a daemon exits."""
    watched = {proc.pid: proc for proc in daemons}
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.05)
            continue
        if pid in watched:
            watched[pid].returncode = os.waitstatus_to_exitcode(status)
            return


def main(argv: list[str]) -> int:
    base = Path(argv[0])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        write_configs(base)
        bind_mounts(base)
        daemons = list(start_daemons(base))
        print(json.dumps({"virtlogd": daemons[0].pid, "libvirtd": daemons[1].pid}), flush=True)
        reap_until_exit(daemons)
    except Stop:
        pass
    except Exception as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        shut_down(daemons)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
