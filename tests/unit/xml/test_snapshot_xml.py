"""libvirt domainsnapshot XML: what users give snapshot-create, what vmkit stores and prints
(validated against libvirt's domainsnapshot.rng when the schemas are installed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from vmkit.errors import InvalidConfig
from vmkit.model.domain import Domain
from vmkit.model.snapshot import DomainSnapshot, SnapshotDisk, SnapshotLocation, SnapshotState
from vmkit.xml.domain import render_domain
from vmkit.xml.snapshot import parse_snapshot, render_snapshot

SCHEMA = Path("/usr/share/libvirt/schemas/domainsnapshot.rng")
EXTERNAL, INTERNAL, NO = SnapshotLocation.EXTERNAL, SnapshotLocation.INTERNAL, SnapshotLocation.NO


def _domain_xml() -> str:
    dom = Domain(name="vm1", uuid="6695eb01-f6a4-8304-79aa-97f2502e193f")
    dom.os.machine = "q35"
    return render_domain(dom, inactive=True)


def _full() -> DomainSnapshot:
    return DomainSnapshot(
        name="s2",
        description="before the upgrade",
        state=SnapshotState.DISK_SNAPSHOT,
        parent="s1",
        creation_time=1795621921,
        memory=NO,
        disks=[
            SnapshotDisk("vda", EXTERNAL, "file", "/var/lib/vmkit/images/vm1.s2", "qcow2"),
            SnapshotDisk("sda", NO),
        ],
        domain_xml=_domain_xml(),
        current=True,
    )


def _schema_errors(text: str) -> list[str]:
    rng = etree.RelaxNG(etree.parse(str(SCHEMA)))
    if rng.validate(etree.fromstring(text.encode())):
        return []
    return [f"line {e.line}: {e.message}" for e in rng.error_log]


def test_render_like_virsh() -> None:
    text = render_snapshot(_full())
    assert text.startswith(
        "<domainsnapshot>\n"
        "  <name>s2</name>\n"
        "  <description>before the upgrade</description>\n"
        "  <state>disk-snapshot</state>\n"
        "  <parent>\n"
        "    <name>s1</name>\n"
        "  </parent>\n"
        "  <creationTime>1795621921</creationTime>\n"
        "  <memory snapshot='no'/>\n"
        "  <disks>\n"
        "    <disk name='vda' snapshot='external' type='file'>\n"
        "      <driver type='qcow2'/>\n"
        "      <source file='/var/lib/vmkit/images/vm1.s2'/>\n"
        "    </disk>\n"
        "    <disk name='sda' snapshot='no'/>\n"
        "  </disks>\n"
        "  <domain type='qemu'>\n"
        "    <name>vm1</name>\n"
    )
    assert text.endswith("  </domain>\n</domainsnapshot>\n")
    assert "<active>" not in text


def test_stored_form_round_trips_with_the_current_marker() -> None:
    snap = _full()
    stored = render_snapshot(snap, with_current=True)
    assert "  <active>1</active>\n</domainsnapshot>" in stored
    assert parse_snapshot(stored, stored=True) == snap


@pytest.mark.skipif(not SCHEMA.exists(), reason="libvirt's schemas are not installed")
@pytest.mark.parametrize("with_current", [False, True])
def test_rendered_xml_validates_against_libvirt_schema(with_current: bool) -> None:
    internal = DomainSnapshot(
        name="s1",
        state=SnapshotState.RUNNING,
        creation_time=1,
        memory=INTERNAL,
        disks=[SnapshotDisk("vda", INTERNAL)],
        domain_xml=_domain_xml(),
    )
    memory = DomainSnapshot(
        name="m1",
        state=SnapshotState.PAUSED,
        creation_time=2,
        memory=EXTERNAL,
        memory_file="/var/lib/vmkit/snapshot/u/m1.mem",
        domain_xml=_domain_xml(),
    )
    for snap in (_full(), internal, memory):
        assert _schema_errors(render_snapshot(snap, with_current=with_current)) == []


def test_user_input_for_snapshot_create() -> None:
    snap = parse_snapshot(
        """<domainsnapshot>
             <name>s1</name>
             <description>text</description>
             <memory snapshot='external' file='/m/s1.mem'/>
             <disks>
               <disk name='vda'><source file='/o/vda.s1'/></disk>
               <disk name='vdb' snapshot='no'/>
             </disks>
           </domainsnapshot>"""
    )
    assert (snap.name, snap.description, snap.memory, snap.memory_file) == (
        "s1",
        "text",
        EXTERNAL,
        "/m/s1.mem",
    )
    assert [(d.name, d.snapshot, d.source_file) for d in snap.disks] == [
        ("vda", EXTERNAL, "/o/vda.s1"),
        ("vdb", NO, None),
    ]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domainsnapshot><state>running</state></domainsnapshot>", "--redefine"),
        ("<domainsnapshot><parent><name>a</name></parent></domainsnapshot>", "--redefine"),
        ("<domainsnapshot><bogus/></domainsnapshot>", "unknown element <bogus>"),
        ("<domainsnapshot><name>a/b</name></domainsnapshot>", "must not contain '/'"),
        ("<domainsnapshot><name>-x</name></domainsnapshot>", "must not start with '-'"),
        ("<domain><name>x</name></domain>", "expected <domainsnapshot>"),
        ("<domainsnapshot><memory snapshot='bogus'/></domainsnapshot>", "invalid value 'bogus'"),
        ("<domainsnapshot><memory file='rel.mem'/></domainsnapshot>", "absolute path"),
        (
            "<domainsnapshot><disks><disk name='vda' snapshot='manual'/></disks></domainsnapshot>",
            "manual",
        ),
        (
            "<domainsnapshot><disks><disk name='vda' snapshot='internal'>"
            "<source file='/x'/></disk></disks></domainsnapshot>",
            "only meaningful for an external",
        ),
        ("<domainsnapshot><disks><disk/></disks></domainsnapshot>", "missing required attribute"),
        ("<domainsnapshot>", "malformed XML"),
    ],
)
def test_bad_input_is_refused_with_the_place(xml: str, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        parse_snapshot(xml)
