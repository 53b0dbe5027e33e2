"""virsh's text layouts, checked against output captured from real virsh (shared/reference)."""

from __future__ import annotations

from vmkit.cli.output import fields, table


def test_list_table_matches_virsh() -> None:
    # shared/reference/virsh/list.txt
    assert table(["Id", "Name", "State"], [[1, "test", "running"]]) == (
        " Id   Name   State\n----------------------\n 1    test   running\n"
    )


def test_empty_table_has_header_and_rule() -> None:
    assert table(["Id", "Name", "State"], []) == " Id   Name   State\n--------------------\n"


def test_dominfo_block_matches_virsh() -> None:
    # shared/reference/virsh/dominfo-anchor-vm0-shutoff.txt
    text = fields([("Id", "-"), ("Max memory", "262144 KiB"), ("Security model", "none")])
    assert text == "Id:             -\nMax memory:     262144 KiB\nSecurity model: none\n"


def test_nodeinfo_block_matches_virsh() -> None:
    # shared/reference/virsh/nodeinfo.txt
    text = fields([("CPU model", "i686"), ("Core(s) per socket", 2)], width=20)
    assert text == "CPU model:           i686\nCore(s) per socket:  2\n"
