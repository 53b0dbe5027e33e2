"""write_state against a recording fake of QEMU's QMP: the image is whole and named only when
QEMU finished; a failure removes the partial file and lets the guest run on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import pytest

from vmkit.engine.migration import FDNAME, MAX_BANDWIDTH
from vmkit.engine.savefile import read_header
from vmkit.engine.saves import write_state
from vmkit.errors import QemuError, StorageError
from vmkit.qemu.qmp import QmpSession

XML = "<domain type='qemu'>\n  <name>vm1</name>\n</domain>\n"


class FakeQemu:
    """Plays QEMU's side: writes a stream into the fd it is given, reports the migration."""

    def __init__(self, *, fail: str | None = None, stream: bytes = b"QEVM" + b"s" * 9000) -> None:
        self.calls: list[str] = []
        self.args: dict[str, Any] = {}
        self.fd_offset: int | None = None
        self.fail = fail
        self.stream = stream
        self.fd: int | None = None

    def execute(self, command: str, args: dict[str, Any] | None = None, **_: Any) -> Any:
        self.calls.append(command)
        self.args[command] = args
        if command == "migrate":
            assert self.fd is not None
            os.write(self.fd, self.stream[: len(self.stream) // 2 if self.fail else None])
            return {}
        if command == "qom-list":  # the peripherals: two root ports and a NIC
            return [
                {"name": "pci.1", "type": "child<pcie-root-port>"},
                {"name": "pci.2", "type": "child<pcie-root-port>"},
                {"name": "net0", "type": "child<virtio-net-pci>"},
            ]
        if command == "query-migrate":
            if self.fail:
                return {"status": "failed", "error-desc": self.fail}
            return {"status": "completed"}
        return {}

    def wait_event(self, name: str, timeout: float, match: Any = None) -> dict[str, Any]:
        self.calls.append(f"wait:{name}")
        event = {"event": name, "data": {"status": "failed" if self.fail else "completed"}}
        assert match is None or match(event)
        return event

    def send_fd(self, fd: int, fdname: str, **_: Any) -> None:
        self.calls.append(f"getfd:{fdname}")
        self.fd = fd
        self.fd_offset = os.lseek(fd, 0, os.SEEK_CUR)


def _qmp(fake: FakeQemu) -> QmpSession:
    return cast(QmpSession, fake)


def test_complete_image_is_written_and_named(tmp_path: Path) -> None:
    fake = FakeQemu()
    target = tmp_path / "vm1.save"
    write_state(_qmp(fake), target, XML, running=True, was_running=True, keep=False)
    assert fake.calls[:3] == ["qom-list", "stop", "migrate-set-parameters"]
    assert "cont" not in fake.calls  # the caller quits QEMU
    header = read_header(target)
    assert header.xml == XML and header.running
    assert header.stream_length == len(fake.stream)
    assert header.root_ports == 2  # a restore makes as many: the guest's PCI topology
    assert os.listdir(tmp_path) == ["vm1.save"]


def test_qemu_streams_unthrottled_into_the_passed_fd_after_the_header(tmp_path: Path) -> None:
    fake = FakeQemu()
    target = tmp_path / "vm1.save"
    write_state(_qmp(fake), target, XML, running=True, was_running=True, keep=False)
    # QEMU 7.2 caps migration at 128 MiB/s unless told otherwise
    assert fake.args["migrate-set-parameters"] == {"max-bandwidth": MAX_BANDWIDTH}
    assert MAX_BANDWIDTH >= 10 * 1024**3
    getfd = [c for c in fake.calls if c.startswith("getfd:")]
    assert getfd == [f"getfd:{FDNAME}"]
    assert fake.args["migrate"] == {"uri": f"fd:{FDNAME}"}  # fd: works under -sandbox on
    assert fake.fd_offset == read_header(target).stream_offset  # QEMU writes from there


def test_memory_snapshot_keeps_the_guest_running(tmp_path: Path) -> None:
    fake = FakeQemu()
    write_state(_qmp(fake), tmp_path / "m.mem", XML, running=True, was_running=True, keep=True)
    assert fake.calls[-1] == "cont"


def test_paused_guest_is_neither_stopped_nor_continued(tmp_path: Path) -> None:
    fake = FakeQemu()
    write_state(_qmp(fake), tmp_path / "s", XML, running=False, was_running=False, keep=True)
    assert "stop" not in fake.calls and "cont" not in fake.calls
    assert read_header(tmp_path / "s").running is False


def test_failed_migration_removes_the_partial_file_and_resumes(tmp_path: Path) -> None:
    fake = FakeQemu(fail="Unable to write to file: No space left on device")
    target = tmp_path / "vm1.save"
    with pytest.raises(QemuError, match="No space left on device"):
        write_state(_qmp(fake), target, XML, running=True, was_running=True, keep=False)
    assert fake.calls[-1] == "cont"
    assert os.listdir(tmp_path) == []


def test_an_existing_image_survives_a_failed_save(tmp_path: Path) -> None:
    target = tmp_path / "vm1.save"
    target.write_bytes(b"older image")
    with pytest.raises(QemuError):
        write_state(
            _qmp(FakeQemu(fail="boom")), target, XML, running=True, was_running=False, keep=False
        )
    assert target.read_bytes() == b"older image"


def test_unwritable_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot create save image"):
        write_state(
            _qmp(FakeQemu()),
            tmp_path / "no" / "such",
            XML,
            running=True,
            was_running=True,
            keep=False,
        )


def test_root_port_types_agree_with_hotplug() -> None:
    from vmkit.engine import hotplug, saves

    assert saves.ROOT_PORT_TYPES == hotplug.ROOT_PORT_TYPES
