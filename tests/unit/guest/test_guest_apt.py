"""Choosing the cloud kernel from apt's output, and apt-get's retry after `apt-get update`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakedeb import KERNEL, FakeDebian

from vmkit.errors import VmkitError
from vmkit.guest.apt import Apt, choose_kernel, deb_version, kernel_names, parse_policy
from vmkit.guest.errors import GuestBuildError, PackageFetchFailed

POLICY = """linux-image-6.1.0-49-cloud-amd64:
  Installed: (none)
  Candidate: 6.1.174-1
  Version table:
     6.1.174-1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-6.1.0-56-cloud-amd64:
  Installed: (none)
  Candidate: (none)
  Version table:
linux-image-6.1.0-9-cloud-amd64:
  Installed: (none)
  Candidate: 6.1.27-1
  Version table:
     6.1.27-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
linux-image-6.1.0-50-cloud-amd64:
  Installed: 6.1.176-1
  Candidate: 6.1.176-1
  Version table:
 *** 6.1.176-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""


def test_parse_policy_reads_candidates() -> None:
    assert parse_policy(POLICY) == {
        "linux-image-6.1.0-49-cloud-amd64": "6.1.174-1",
        "linux-image-6.1.0-56-cloud-amd64": None,
        "linux-image-6.1.0-9-cloud-amd64": "6.1.27-1",
        "linux-image-6.1.0-50-cloud-amd64": "6.1.176-1",
    }


def test_choose_kernel_takes_the_highest_abi_with_a_candidate() -> None:
    kernel = choose_kernel(parse_policy(POLICY))
    assert kernel is not None
    assert (kernel.name, kernel.release, kernel.abi, kernel.version) == (
        "linux-image-6.1.0-50-cloud-amd64",
        "6.1.0-50-cloud-amd64",
        50,
        "6.1.176-1",
    )


def test_abi_numbers_compare_as_numbers() -> None:
    kernel = choose_kernel(
        {"linux-image-6.1.0-9-cloud-amd64": "1", "linux-image-6.1.0-10-cloud-amd64": "2"}
    )
    assert kernel is not None and kernel.abi == 10


def test_choose_kernel_without_candidates() -> None:
    assert choose_kernel({}) is None
    assert choose_kernel({"linux-image-6.1.0-56-cloud-amd64": None}) is None


def test_kernel_names_skip_other_flavours() -> None:
    lines = [
        "linux-image-6.1.0-56-amd64",
        "linux-image-6.1.0-56-cloud-amd64",
        "linux-image-6.1.0-56-cloud-amd64-dbg",
        "linux-image-6.1.0-56-cloud-amd64-unsigned",
        "linux-image-6.1.0-56-rt-amd64",
        "linux-image-6.12.117+deb12-cloud-amd64",
        "linux-image-6.1.0-57-cloud-amd64  ",
    ]
    assert kernel_names(lines) == [
        "linux-image-6.1.0-56-cloud-amd64",
        "linux-image-6.1.0-57-cloud-amd64",
    ]


def test_deb_version_undoes_the_url_quoting() -> None:
    assert (
        deb_version(Path("busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"))
        == "1:1.35.0-4+deb12u1+b1"
    )
    assert deb_version(Path("odd.deb")) == ""


def test_find_kernel_with_fresh_lists_runs_no_update() -> None:
    fake = FakeDebian()
    assert Apt(fake).find_kernel().name == KERNEL
    assert ["apt-get", "-q", "update"] not in fake.calls


def test_find_kernel_updates_once_when_apt_knows_none() -> None:
    fake = FakeDebian(stale_lists=True)
    assert Apt(fake).find_kernel().name == KERNEL
    assert fake.calls.count(["apt-get", "-q", "update"]) == 1


def test_download_retries_after_one_update(tmp_path: Path) -> None:
    fake = FakeDebian(stale_lists=True)
    deb = Apt(fake).download("busybox-static", tmp_path)
    assert deb.name == "busybox-static_1%3a1.35.0-4_amd64.deb"
    downloads = [call for call in fake.calls if "download" in call]
    assert len(downloads) == 2
    assert fake.calls.count(["apt-get", "-q", "update"]) == 1


def test_download_failure_names_the_package_and_stderr(tmp_path: Path) -> None:
    fake = FakeDebian(stale_lists=True)
    apt = Apt(fake)
    apt.find_kernel()  # uses up the one update; lists turn fresh
    fake.stale_lists = True
    with pytest.raises(PackageFetchFailed) as caught:
        apt.download("nosuch-package", tmp_path)
    assert isinstance(caught.value, VmkitError)
    assert caught.value.package == "nosuch-package"
    assert "nosuch-package" in str(caught.value)
    assert "Unable to locate package nosuch-package" in str(caught.value)
    assert fake.calls.count(["apt-get", "-q", "update"]) == 1


def test_failing_tool_is_a_guest_build_error(tmp_path: Path) -> None:
    fake = FakeDebian(fail_unpack=True)
    with pytest.raises(GuestBuildError, match=r"dpkg-deb -x .* unexpected end of file"):
        Apt(fake).unpack(tmp_path / "x.deb", tmp_path / "out")
