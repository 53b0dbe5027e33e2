"""The pool-* and vol-* commands of the real CLI (`python -m vmkit` in a subprocess, a temporary
VMKIT_ROOT, real qemu-img): a pool's whole life, volumes of every kind, transfers, --json, the
progress bar on a terminal, and bad input giving a clear message, the right exit code and
nothing half-made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from vmkit_cli import on_a_terminal

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed"),
]
MiB = 1 << 20


@dataclass
class Result:
    rc: int
    out: str
    err: str


class Vmkit:
    """Runs `python -m vmkit ARGS` on one temporary vmkit root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "VMKIT_ROOT": str(root)}

    def __call__(self, *args: str, rc: int = 0) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "vmkit", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        result = Result(done.returncode, done.stdout, done.stderr)
        assert result.rc == rc, f"vmkit {' '.join(args)}: rc {result.rc}\n{done.stderr}"
        return result

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json").out)

    def fails(self, rc: int, *args: str) -> str:
        """The error message of a command that must fail with exit code `rc` and print nothing."""
        result = self(*args, rc=rc)
        assert result.out == ""
        assert result.err.startswith("error: "), result.err
        return result.err


@pytest.fixture
def vk() -> Iterator[Vmkit]:
    root = Path(tempfile.mkdtemp(prefix="vks-", dir="/tmp"))
    try:
        yield Vmkit(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pool(vk: Vmkit) -> Path:
    """Pool 'itest' defined, built and started at ROOT/pool."""
    target = vk.root / "pool"
    vk("pool-define-as", "itest", "dir", "--target", str(target))
    vk("pool-build", "itest")
    vk("pool-start", "itest")
    return target


def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def test_pool_life(vk: Vmkit) -> None:
    target = vk.root / "pool"
    assert vk("pool-define-as", "itest", "dir", "--target", str(target)).out == (
        "Pool itest defined\n\n"
    )
    assert vk("pool-build", "itest").out == "Pool itest built\n\n"
    assert target.is_dir()
    assert vk("pool-start", "itest").out == "Pool itest started\n\n"
    listing = vk("pool-list", "--all", "--details").out.splitlines()
    assert listing[0].split() == [
        "Name",
        "State",
        "Autostart",
        "Persistent",
        "Capacity",
        "Allocation",
        "Available",
    ]
    rows = {line.split()[0]: line.split() for line in listing[2:] if line}
    assert rows["itest"][1:4] == ["running", "no", "yes"]
    assert rows["default"][1:4] == ["running", "yes", "yes"]  # made on first use
    info = vk("pool-info", "itest").out
    assert "State:          running\n" in info and "Capacity:" in info
    uuid = vk("pool-uuid", "itest").out.strip()
    assert vk("pool-name", uuid).out == "itest\n\n"
    assert f"<path>{target}</path>" in vk("pool-dumpxml", uuid).out
    assert vk("pool-autostart", "itest").out == "Pool itest marked as autostarted\n\n"
    assert vk("pool-refresh", "itest").out == "Pool itest refreshed\n\n"
    assert vk("pool-destroy", "itest").out == "Pool itest destroyed\n\n"
    assert "itest" not in vk("pool-list").out
    assert " itest     inactive   yes" in vk("pool-list", "--all").out
    assert vk("pool-delete", "itest").out == "Pool itest deleted\n\n"
    assert not target.exists()
    assert vk("pool-undefine", "itest").out == "Pool itest has been undefined\n\n"
    assert "itest" not in vk("pool-list", "--all").out


def test_pool_from_xml_and_transient(vk: Vmkit) -> None:
    xml = vk.root / "p.xml"
    xml.write_text(
        f"<pool type='dir'><name>fromxml</name><target><path>{vk.root}/x</path></target></pool>"
    )
    assert vk("pool-define", str(xml)).out == f"Pool fromxml defined from {xml}\n\n"
    vk("pool-start", "fromxml", "--build")
    out = vk("pool-create-as", "tmp", "dir", "-", "-", "-", "-", f"{vk.root}/t", "--build").out
    assert out == "Pool tmp created\n\n"
    assert " tmp       active   no" in vk("pool-list").out
    assert "Persistent:     no" in vk("pool-info", "tmp").out
    vk("pool-destroy", "tmp")
    vk.fails(3, "pool-info", "tmp")


def test_volumes(vk: Vmkit, pool: Path) -> None:
    assert vk("vol-create-as", "itest", "a.qcow2", "64M", "--format", "qcow2").out == (
        "Vol a.qcow2 created\n\n"
    )
    vk("vol-create-as", "itest", "b.raw", "8MiB")
    vk("vol-create-as", "itest", "m.qcow2", "1G", "--format", "qcow2", "--prealloc-metadata")
    details = vk("vol-list", "itest", "--details").out
    assert f" a.qcow2   {pool}/a.qcow2   file   64.00 MiB" in details
    assert f" b.raw     {pool}/b.raw     file   8.00 MiB " in details
    info = vk("vol-info", "b.raw", "--pool", "itest").out
    assert info.splitlines()[:3] == [
        "Name:           b.raw",
        "Type:           file",
        "Capacity:       8.00 MiB",
    ]
    assert vk("vol-info", f"{pool}/b.raw", "--bytes").out.splitlines()[2] == (
        f"Capacity:       {8 * MiB} bytes"
    )
    assert vk("vol-path", "a.qcow2", "itest").out == f"{pool}/a.qcow2\n\n"
    # clones: a full copy and a linked overlay
    assert vk("vol-clone", "a.qcow2", "full.qcow2", "--pool", "itest").out == (
        "Vol full.qcow2 cloned from a.qcow2\n\n"
    )
    vk("vol-clone", "a.qcow2", "linked.qcow2", "--pool", "itest", "--linked")
    linked = vk("vol-dumpxml", "linked.qcow2", "--pool", "itest").out
    assert f"<backingStore>\n    <path>{pool}/a.qcow2</path>" in linked
    err = vk.fails(4, "vol-delete", "a.qcow2", "--pool", "itest")
    assert "volume 'linked.qcow2' (pool 'itest') uses it as backing file" in err
    # an overlay by --backing-vol
    vk("vol-create-as", "itest", "o.qcow2", "64M", "--format", "qcow2", "--backing-vol", "a.qcow2")
    assert "<backingStore>" in vk("vol-dumpxml", "o.qcow2", "--pool", "itest").out
    # resize: grow, shrink refused without --shrink, then allowed
    assert vk("vol-resize", "b.raw", "16M", "--pool", "itest").out == (
        "Size of volume 'b.raw' successfully changed to 16M\n\n"
    )
    err = vk.fails(2, "vol-resize", "b.raw", "4M", "--pool", "itest")
    assert "without --shrink" in err
    assert (pool / "b.raw").stat().st_size == 16 * MiB
    vk("vol-resize", "b.raw", "-8M", "--pool", "itest", "--shrink")
    assert (pool / "b.raw").stat().st_size == 8 * MiB
    # wipe and delete
    (pool / "b.raw").write_bytes(b"\xaa" * 4096 + bytes(8 * MiB - 4096))
    assert vk("vol-wipe", "b.raw", "--pool", "itest").out == "Vol b.raw wiped\n\n"
    assert (pool / "b.raw").read_bytes()[:4096] == bytes(4096)
    for name in ("o.qcow2", "linked.qcow2", "a.qcow2"):
        assert vk("vol-delete", name, "--pool", "itest").out == f"Vol {name} deleted\n\n"
    assert sorted(os.listdir(pool)) == ["b.raw", "full.qcow2", "m.qcow2"]


def test_upload_download_round_trip(vk: Vmkit, pool: Path) -> None:
    vk("vol-create-as", "itest", "data.raw", "4M")
    src = vk.root / "src.bin"
    src.write_bytes(os.urandom(3 * MiB + 123))
    r = vk("vol-upload", "data.raw", str(src), "--pool", "itest")
    assert (r.out, r.err) == ("", "")  # no TTY: quiet
    dst = vk.root / "dst.bin"
    vk("vol-download", "data.raw", str(dst), "--pool", "itest", "--length", str(3 * MiB + 123))
    assert dst.read_bytes() == src.read_bytes()
    part = vk.root / "part.bin"
    vk("vol-download", "data.raw", str(part), "itest", "--offset", "1000", "--length", "10")
    assert part.read_bytes() == src.read_bytes()[1000:1010]
    assert vk.json("vol-upload", "data.raw", str(src), "--pool", "itest", "--offset", "1000") == {
        "vol": "data.raw",
        "file": str(src),
        "bytes": 3 * MiB + 123,
    }


def test_import_vmdk(vk: Vmkit, pool: Path) -> None:
    vmdk = vk.root / "disk.vmdk"
    _qemu_img("create", "-q", "-f", "vmdk", str(vmdk), "32M")
    assert vk("vol-import", "itest", str(vmdk), "disk.qcow2").out == (
        f"Vol disk.qcow2 imported from {vmdk}\n\n"
    )
    data = vk.json("vol-info", "disk.qcow2", "--pool", "itest")
    assert isinstance(data, dict)
    assert (data["target_format"], data["capacity"]) == ("qcow2", 32 * MiB)


def test_progress_bar_on_a_terminal(vk: Vmkit, pool: Path) -> None:
    vk("vol-create-as", "itest", "big.raw", "64M")
    proc, drawn = on_a_terminal(vk.env, "vol-clone", "big.raw", "copy.raw", "--pool", "itest")
    assert proc.returncode == 0
    assert b"Cloning" in drawn and b"100%" in drawn
    assert proc.stdout == b"Vol copy.raw cloned from big.raw\n\n"


def test_json_outputs_parse(vk: Vmkit, pool: Path) -> None:
    vk("vol-create-as", "itest", "v.qcow2", "8M", "--format", "qcow2")
    pools = vk.json("pool-list", "--all")
    assert isinstance(pools, list)
    assert {p["name"] for p in pools} == {"default", "itest"}
    info = vk.json("pool-info", "itest")
    assert isinstance(info, dict) and info["state"] == "running" and info["capacity"] > 0
    vols = vk.json("vol-list", "itest")
    assert isinstance(vols, list) and [v["name"] for v in vols] == ["v.qcow2"]
    for args in (
        ("vol-info", "v.qcow2", "--pool", "itest"),
        ("vol-dumpxml", "v.qcow2", "--pool", "itest"),
        ("vol-path", "v.qcow2", "--pool", "itest"),
        ("pool-dumpxml", "itest"),
        ("vol-clone", "v.qcow2", "w.qcow2", "--pool", "itest"),
        ("vol-resize", "w.qcow2", "+1M", "--pool", "itest"),
        ("vol-wipe", "w.qcow2", "--pool", "itest"),
        ("vol-delete", "w.qcow2", "--pool", "itest"),
        ("pool-refresh", "itest"),
    ):
        assert isinstance(vk.json(*args), dict)
    r = vk("vol-info", "nosuch", "--pool", "itest", "--json", rc=3)
    assert json.loads(r.err)["error"] == "NotFound"


def test_bad_input_makes_nothing(vk: Vmkit, pool: Path) -> None:
    before_pools = vk("pool-list", "--all").out
    a_file = vk.root / "afile"
    a_file.write_text("x")
    cases = [
        (2, ("pool-define-as", "a/b", "dir", "--target", f"{vk.root}/ab"), "must not contain '/'"),
        (2, ("pool-define-as", "..", "dir", "--target", f"{vk.root}/dd"), "'..' is not allowed"),
        (2, ("pool-define-as", "pf", "dir", "--target", str(a_file)), "exists and is a file"),
        (2, ("pool-define-as", "px", "iscsi", "--target", f"{vk.root}/px"), "not supported"),
        (4, ("pool-define-as", "p2", "dir", "--target", str(pool)), "already uses target path"),
        (3, ("pool-start", "nosuch"), "failed to get pool 'nosuch'"),
        (3, ("vol-list", "nosuch"), "failed to get pool 'nosuch'"),
        (5, ("pool-start", "itest"), "storage pool 'itest' is already active"),
        (5, ("pool-delete", "itest"), "storage pool 'itest' is still active"),
    ]
    for rc, args, message in cases:
        assert message in vk.fails(rc, *args), args
    assert vk("pool-list", "--all").out == before_pools
    assert a_file.read_text() == "x"
    assert not (vk.root / "ab").exists() and not (vk.root / "px").exists()

    vol_cases = [
        (2, ("vol-create-as", "itest", "a/b", "1M"), "must not contain '/'"),
        (2, ("vol-create-as", "itest", "..", "1M"), "'..' is not allowed"),
        (2, ("vol-create-as", "itest", "v", "1Q"), "unknown size unit"),
        (
            3,
            ("vol-create-as", "itest", "o", "1M", "--format", "qcow2", "--backing-vol", "nosuch"),
            "backing volume 'nosuch' does not exist in pool 'itest'",
        ),
        (
            3,
            ("vol-create-as", "itest", "o", "1M", "--format", "qcow2", "--backing-vol", "/no/base"),
            "backing file '/no/base' of volume 'o' does not exist",
        ),
        (3, ("vol-create-as", "nosuch", "v", "1M"), "failed to get pool 'nosuch'"),
        (3, ("vol-info", "nosuch", "--pool", "itest"), "failed to get vol 'nosuch'"),
        (3, ("vol-delete", "nosuch", "--pool", "itest"), "failed to get vol 'nosuch'"),
        (3, ("vol-info", "/etc/passwd"), "no storage vol with matching path '/etc/passwd'"),
        (3, ("vol-info", "nosuch"), "specifying --pool might help"),
        (3, ("vol-import", "itest", f"{vk.root}/none.vmdk", "x"), "does not exist"),
        (3, ("vol-upload", "nosuch", str(a_file), "--pool", "itest"), "failed to get vol"),
    ]
    for rc, args, message in vol_cases:
        assert message in vk.fails(rc, *args), args
    assert os.listdir(pool) == []
    assert vk.json("vol-list", "itest") == []


def test_volume_used_by_a_domain(vk: Vmkit, pool: Path) -> None:
    vk("vol-create-as", "itest", "disk.qcow2", "16M", "--format", "qcow2")
    dom = vk.root / "dom.xml"
    dom.write_text(
        "<domain type='kvm'><name>vm1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{pool}/disk.qcow2'/><target dev='vda' bus='virtio'/></disk>"
        "</devices></domain>"
    )
    vk("define", str(dom))
    err = vk.fails(4, "vol-delete", "disk.qcow2", "--pool", "itest")
    assert "cannot delete volume 'disk.qcow2': it is in use by domain 'vm1'" in err
    assert "domain 'vm1'" in vk.fails(4, "vol-wipe", "disk.qcow2", "--pool", "itest")
    assert (pool / "disk.qcow2").exists()
    vk("undefine", "vm1")
    vk("vol-delete", "disk.qcow2", "--pool", "itest")
