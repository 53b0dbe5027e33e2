"""vmkit.storage.qemuimg without qemu-img: argv (golden, one argument a line), JSON parsing of
recorded outputs, progress parsing, error conversion and partial-output removal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from storage_fakes import FakeRunner

from vmkit.errors import CommandFailed, InvalidConfig
from vmkit.storage.qemuimg import (
    CheckResult,
    Completed,
    ImageInfo,
    ProgressParser,
    QemuImg,
    SubprocessRunner,
    check_argv,
    convert_argv,
    create_argv,
    info_argv,
    parse_info,
    resize_argv,
    snapshot_argv,
)

DATA = Path(__file__).parents[2] / "data" / "storage" / "qemuimg"


@pytest.fixture
def fake_runner() -> FakeRunner:
    return FakeRunner()


ARGV_CASES = {
    "create-raw": create_argv("/p/a.img", "raw", 1073741824),
    "create-qcow2-options": create_argv(
        "/p/a.qcow2",
        "qcow2",
        10737418240,
        options={"compat": "1.1", "lazy_refcounts": "on", "preallocation": "metadata"},
    ),
    "create-overlay": create_argv(
        "/p/ov.qcow2", "qcow2", None, backing="/p/base img.qcow2", backing_format="qcow2"
    ),
    "info": info_argv("/p/a.qcow2"),
    "info-chain-format": info_argv("/p/a.qcow2", fmt="qcow2", chain=True),
    "info-no-force-share": info_argv("/p/a.qcow2", force_share=False),
    "convert-progress": convert_argv(
        "/src/disk.vmdk", "/p/disk.qcow2", src_format="vmdk", dst_format="qcow2", progress=True
    ),
    "convert-quiet": convert_argv("/p/a.img", "/p/b.img", dst_format="raw"),
    "resize-grow": resize_argv("/p/a.qcow2", 2147483648, fmt="qcow2"),
    "resize-shrink": resize_argv("/p/a.img", 1048576, fmt="raw", shrink=True),
    "check": check_argv("/p/a.qcow2", fmt="qcow2"),
    "snapshot-create": snapshot_argv("/p/a.qcow2", "c", "before upgrade", fmt="qcow2"),
    "snapshot-apply": snapshot_argv("/p/a.qcow2", "a", "-tricky"),
    "snapshot-delete": snapshot_argv("/p/a.qcow2", "d", "s1"),
}


@pytest.mark.parametrize("case", sorted(ARGV_CASES))
def test_argv_golden(case: str, request: pytest.FixtureRequest) -> None:
    golden = DATA / "argv" / f"{case}.args"
    text = "\n".join(ARGV_CASES[case]) + "\n"
    if request.config.getoption("--regen-golden", default=False):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_backing_needs_format() -> None:
    with pytest.raises(InvalidConfig, match="a backing file needs its format"):
        create_argv("/p/o.qcow2", "qcow2", None, backing="/p/b.qcow2")


@pytest.mark.parametrize("options", [{"a,b": "1"}, {"compat": "1.1,backing_file=/etc/shadow"}])
def test_option_injection_is_refused(options: dict[str, str]) -> None:
    with pytest.raises(InvalidConfig, match="invalid qemu-img option"):
        create_argv("/p/a.qcow2", "qcow2", 1, options=options)


@pytest.mark.parametrize("name", ["", "a\x00b"])
def test_bad_snapshot_names(name: str) -> None:
    with pytest.raises(InvalidConfig, match="invalid snapshot name"):
        snapshot_argv("/p/a.qcow2", "c", name)


def _json(name: str) -> object:
    return json.loads((DATA / name).read_text())


def test_parse_info_chain() -> None:
    data = _json("info-chain-overlay.json")
    assert isinstance(data, list)
    top, base = (parse_info(d) for d in data)
    assert top == ImageInfo(
        filename="ov.qcow2",
        format="qcow2",
        virtual_size=67108864,
        actual_size=200704,
        cluster_size=65536,
        backing_filename="base.qcow2",
        full_backing_filename="base.qcow2",
        backing_format="qcow2",
        compat="1.1",
        lazy_refcounts=False,
        extended_l2=False,
        corrupt=False,
    )
    assert base.backing_filename is None and base.format == "qcow2"


def test_parse_info_snapshots() -> None:
    info = parse_info(_json("info-qcow2-snapshots.json"))  # type: ignore[arg-type]
    assert [(s.id, s.name, s.vm_state_size) for s in info.snapshots] == [
        ("1", "s1", 0),
        ("2", "s2", 0),
    ]
    assert info.snapshots[0].date_sec == 1795620622


def test_parse_info_raw_and_vmdk() -> None:
    raw = parse_info(_json("info-raw.json"))  # type: ignore[arg-type]
    assert (raw.format, raw.virtual_size, raw.compat, raw.cluster_size) == (
        "raw",
        209715200,
        None,
        None,
    )
    vmdk = parse_info(_json("info-vmdk.json"))  # type: ignore[arg-type]
    assert (vmdk.format, vmdk.virtual_size, vmdk.compat) == ("vmdk", 209715200, None)


def test_progress_parser_on_recorded_output() -> None:
    seen: list[float] = []
    parser = ProgressParser(seen.append)
    text = (DATA / "convert-progress.out").read_text()
    for i in range(0, len(text), 7):  # chunks split in the middle of a report
        parser.feed(text[i : i + 7])
    assert seen[0] == 0.0
    assert seen[-1] == 100.0
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))


def test_convert_passes_progress_to_callback(fake_runner: FakeRunner) -> None:
    fake_runner.stdout_chunks = ["    (0.00/100%)\r    (50.", "00/100%)\r    (100.00/100%)\r"]
    seen: list[float] = []
    QemuImg(fake_runner).convert("/a", "/b", dst_format="raw", progress=seen.append)
    assert seen == [0.0, 50.0, 100.0]
    assert fake_runner.calls[0][:3] == ["qemu-img", "convert", "-p"]


def test_convert_without_callback_is_quiet(fake_runner: FakeRunner) -> None:
    QemuImg(fake_runner).convert("/a", "/b", dst_format="raw")
    assert fake_runner.calls[0][:3] == ["qemu-img", "convert", "-q"]


def _failing(stderr: str, rc: int = 1) -> FakeRunner:
    return FakeRunner(handler=lambda argv: Completed(tuple(argv), rc, "", stderr))


def test_failure_becomes_command_failed() -> None:
    img = QemuImg(_failing("qemu-img: /p/x: Could not open '/nonexist': No such file\n"))
    with pytest.raises(CommandFailed) as err:
        img.resize("/p/x", 10)
    assert err.value.rc == 1
    assert err.value.argv == ["qemu-img", "resize", "-q", "/p/x", "10"]
    assert str(err.value) == (
        "qemu-img failed (exit code 1): qemu-img: /p/x: Could not open '/nonexist': No such file"
    )


def test_failed_create_removes_its_partial_output(tmp_path: Path) -> None:
    out = tmp_path / "new.qcow2"

    def handler(argv: list[str]) -> Completed:
        out.write_bytes(b"partial")
        return Completed(tuple(argv), 1, "", "No space left on device")

    with pytest.raises(CommandFailed):
        QemuImg(FakeRunner(handler)).create(out, "qcow2", 1 << 30)
    assert not out.exists()


def test_failed_convert_keeps_a_file_that_existed_before(tmp_path: Path) -> None:
    out = tmp_path / "reserved.img"
    out.write_bytes(b"")
    with pytest.raises(CommandFailed):
        QemuImg(_failing("boom")).convert("/a", out, dst_format="raw")
    assert out.exists()


def test_unreadable_json_is_a_command_failure() -> None:
    runner = FakeRunner(handler=lambda argv: Completed(tuple(argv), 0, "not json", ""))
    with pytest.raises(CommandFailed, match="unreadable JSON output"):
        QemuImg(runner).info("/p/a")


def test_check_results() -> None:
    clean = (DATA / "check-clean.json").read_text()
    runner = FakeRunner(handler=lambda argv: Completed(tuple(argv), 0, clean, ""))
    assert QemuImg(runner).check("/p/a").clean
    leaky = json.dumps({"check-errors": 0, "leaks": 3, "filename": "a", "format": "qcow2"})
    runner = FakeRunner(handler=lambda argv: Completed(tuple(argv), 3, leaky, ""))
    assert QemuImg(runner).check("/p/a") == CheckResult(leaks=3)
    unsupported = _failing("This image format does not support checks", rc=63)
    assert QemuImg(unsupported).check("/p/a") == CheckResult(supported=False)
    with pytest.raises(CommandFailed):
        QemuImg(_failing("Could not open", rc=1)).check("/p/a")


def test_snapshot_list_comes_from_info_json() -> None:
    text = (DATA / "info-qcow2-snapshots.json").read_text()
    runner = FakeRunner(handler=lambda argv: Completed(tuple(argv), 0, text, ""))
    snaps = QemuImg(runner).snapshot_list("/p/base.qcow2")
    assert [s.name for s in snaps] == ["s1", "s2"]
    assert runner.calls[0][:3] == ["qemu-img", "info", "--output=json"]


def test_subprocess_runner_missing_program() -> None:
    with pytest.raises(CommandFailed) as err:
        SubprocessRunner().run(["/nonexistent/qemu-img", "info"])
    assert err.value.rc == 127


def test_subprocess_runner_streams_and_captures() -> None:
    chunks: list[str] = []
    done = SubprocessRunner().run(
        ["/bin/sh", "-c", "printf 'a\\rb'; echo err >&2; exit 3"], on_stdout=chunks.append
    )
    assert (done.rc, done.stdout, done.stderr) == (3, "a\rb", "err\n")
    assert "".join(chunks) == "a\rb"
