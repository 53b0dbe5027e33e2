"""Storage pool/volume XML: golden parse -> render, libvirt's RelaxNG as oracle, round trips,
and exact errors (element/attribute named, with its line) for what vmkit refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from vmkit.errors import InvalidConfig
from vmkit.model.storage import (
    BackingStore,
    Permissions,
    Pool,
    PoolSource,
    PoolType,
    Timestamps,
    Volume,
    VolumeType,
)
from vmkit.xml.storage import parse_pool, parse_volume, render_pool, render_volume

DATA = Path(__file__).parents[2] / "data" / "storage" / "xml"
SCHEMAS = Path("/usr/share/libvirt/schemas")
CASES = sorted(p.name.removesuffix(".xml") for p in DATA.glob("*.xml") if ".in." not in p.name)


def _relaxng(name: str) -> etree.RelaxNG:
    path = SCHEMAS / name
    if not path.exists():
        pytest.skip(f"libvirt schema {path} is not installed (package libvirt0)")
    return etree.RelaxNG(etree.parse(str(path)))


def _assert_valid(xml: str, schema: str) -> None:
    rng = _relaxng(schema)
    ok = rng.validate(etree.fromstring(xml.encode()))
    assert ok, f"{schema}: {rng.error_log}\n{xml}"


def _parse(case: str, text: str) -> Pool | Volume:
    return parse_pool(text) if case.startswith("pool") else parse_volume(text)


def _render(obj: Pool | Volume) -> str:
    return render_pool(obj) if isinstance(obj, Pool) else render_volume(obj)


@pytest.mark.parametrize("case", CASES)
def test_golden_render(case: str, request: pytest.FixtureRequest) -> None:
    expected_file = DATA / f"{case}.xml"
    source = DATA / f"{case}.in.xml"
    obj = _parse(case, (source if source.exists() else expected_file).read_text())
    out = _render(obj)
    if request.config.getoption("--regen-golden", default=False):
        expected_file.write_text(out)
    assert out == expected_file.read_text()


@pytest.mark.parametrize("case", CASES)
def test_rendered_xml_validates_against_libvirt_schema(case: str) -> None:
    obj = _parse(case, (DATA / f"{case}.xml").read_text())
    _assert_valid(_render(obj), "storagepool.rng" if isinstance(obj, Pool) else "storagevol.rng")


@pytest.mark.parametrize("case", CASES)
def test_parse_render_parse_is_equal(case: str) -> None:
    first = _parse(case, (DATA / f"{case}.xml").read_text())
    again = _parse(case, _render(first))
    assert again == first


def test_every_volume_field_is_exercised_by_a_golden_file() -> None:
    full = parse_volume((DATA / "vol-qcow2-full.xml").read_text())
    assert full == Volume(
        name="web01-overlay.qcow2",
        type=VolumeType.FILE,
        key="/var/lib/vmkit/images/web01-overlay.qcow2",
        capacity=21474836480,
        allocation=200704,
        physical=196624,
        target_path="/var/lib/vmkit/images/web01-overlay.qcow2",
        target_format="qcow2",
        target_permissions=Permissions(mode=0o600, owner=107, group=107),
        target_timestamps=Timestamps(
            atime="1795620622.701752000",
            mtime="1795620628.801857000",
            ctime="1795620628.801857000",
        ),
        target_compat="1.1",
        target_nocow=True,
        target_cluster_size=65536,
        target_features_lazy_refcounts=True,
        target_features_extended_l2=True,
        backing_store=BackingStore(
            "/var/lib/vmkit/images/debian-12-base.qcow2", "qcow2", Permissions(mode=0o644)
        ),
    )


def test_every_pool_field_is_exercised_by_a_golden_file() -> None:
    fs = parse_pool((DATA / "pool-fs.xml").read_text())
    assert fs == Pool(
        name="fsimages",
        target_path="/mnt/fsimages",
        type=PoolType.FS,
        uuid="0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        features_cow=False,
        source=PoolSource(device_path="/dev/vdb1", format_type="ext4"),
        target_permissions=Permissions(mode=0o755, owner=-1, group=-1),
    )
    d = parse_pool((DATA / "pool-dir.xml").read_text())
    assert (d.capacity, d.allocation, d.available) == (107374182400, 1178599424, 106195582976)
    assert d.target_permissions == Permissions(0o711, 0, 0, "system_u:object_r:virt_image_t:s0")


def test_libvirt_vol_dumpxml_output_parses() -> None:
    text = (Path(__file__).parents[2] / "data/storage/virsh/vol-dumpxml-test.txt").read_text()
    vol = parse_volume(text)
    assert (vol.name, vol.capacity, vol.target_format) == ("vol1.qcow2", 1073741824, "qcow2")


def test_strict_false_ignores_unknown_xml_like_libvirt() -> None:
    text = "<volume><name>a</name><bogus/><target foo='1'><format type='raw'/></target></volume>"
    assert parse_volume(text, strict=False) == Volume(name="a", target_format="raw")


POOL_ERRORS = {
    "<pool type='dir'>\n  <name>p</name>\n  <target>\n    <path>/a</path>\n    <bogus/>\n"
    "  </target>\n</pool>": "unknown element <bogus> in <target> (line 5, /pool/target/bogus)",
    "<pool type='dir' foo='bar'><name>p</name><target><path>/a</path></target></pool>": (
        "unknown attribute 'foo' on element <pool> (line 1, /pool/@foo)"
    ),
    "<pool type='dir'>\n<name>p</name>\n<target><path>relative/dir</path></target>\n</pool>": (
        "pool target path 'relative/dir' must be an absolute path (line 3, /pool/target/path)"
    ),
    "<pool type='dir'>\n<name>p</name>\n<target><path>/</path></target>\n</pool>": (
        "pool target path must not be '/' (line 3, /pool/target/path)"
    ),
    "<pool type='logical'><name>p</name></pool>": (
        "pool type 'logical' is not supported (vmkit supports dir and fs) (line 1, /pool/@type)"
    ),
    "<pool><name>p</name></pool>": (
        "element <pool> needs a 'type' attribute (line 1, /pool/@type)"
    ),
    "<pool type='dir'><name>p</name></pool>": (
        "a pool needs a <target> with a <path> (line 1, /pool/target/path)"
    ),
    "<pool type='dir'><target><path>/a</path></target></pool>": (
        "a pool needs a <name> (line 1, /pool/name)"
    ),
    "<pool type='dir'>\n<name>a/b</name><target><path>/a</path></target></pool>": (
        "pool name 'a/b' must not contain '/' (line 2, /pool/name)"
    ),
    "<pool type='dir'><name>p</name>\n<uuid>not-a-uuid</uuid>"
    "<target><path>/a</path></target></pool>": "malformed uuid 'not-a-uuid' (line 2, /pool/uuid)",
    "<pool type='dir'><name>p</name>\n<capacity unit='parsecs'>1</capacity>"
    "<target><path>/a</path></target></pool>": (
        "unknown size unit 'parsecs' (use b, KB, KiB/K, MB, MiB/M, GB, GiB/G, TB, TiB/T, ...) "
        "(line 2, /pool/capacity/@unit)"
    ),
    "<pool type='dir'><name>p</name><name>q</name><target><path>/a</path></target></pool>": (
        "element <name> appears more than once in <pool> (line 1, /pool/name[2])"
    ),
    "<pool type='dir'><name>p</name><target><path>/a</path>\n<permissions><mode>0999</mode>"
    "</permissions></target></pool>": (
        "invalid octal mode '0999' in <mode> (line 2, /pool/target/permissions/mode)"
    ),
    "<pool type='dir'><name>p</name><source><device path='/dev/sda'/></source>"
    "<target><path>/a</path></target></pool>": (
        "a dir pool takes no source device or format (line 1, /pool/source)"
    ),
    "<pool type='fs'><name>p</name><target><path>/a</path></target></pool>": (
        "an fs pool needs a source device (line 1, /pool/source/device/@path)"
    ),
    "<pool type='dir'><name>p</name><features><cow state='maybe'/></features>"
    "<target><path>/a</path></target></pool>": (
        "invalid value 'maybe' for attribute 'state' of <cow> (line 1, /pool/features/cow/@state)"
    ),
    "<domain type='qemu'><name>p</name></domain>": (
        "expected a <pool> element, found <domain> (line 1, /)"
    ),
    "<pool type='dir'>\n<name>p</name>\n<target><path>/a</path></target>": (
        "malformed XML: Premature end of data in tag pool line 1 (line 3)"
    ),
    "<pool type='dir'><name>p</name>text<target><path>/a</path></target></pool>": (
        "unexpected text 'text' in <pool> (line 1, /pool)"
    ),
    "<pool type='fs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>p</name>"
    "<source><device path='/dev/vdb'/></source><target><path>/a</path></target>\n"
    "<fs:mount_opts><fs:option name='sync'/></fs:mount_opts></pool>": (
        "unknown element <fs:mount_opts> in <pool> (line 2, /pool/fs:mount_opts)"
    ),
}


@pytest.mark.parametrize(("text", "message"), list(POOL_ERRORS.items()))
def test_pool_errors_name_the_element_and_line(text: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        parse_pool(text)
    assert str(err.value) == message


VOLUME_ERRORS = {
    "<volume>\n  <name>a</name>\n  <capacity unit='G'>1</capacity>\n  <encryption "
    "format='luks'/>\n</volume>": "unknown element <encryption> in <volume> (line 4, "
    "/volume/encryption)",
    "<volume><name>a</name><target>\n<format type='qcow2' extra='x'/></target></volume>": (
        "unknown attribute 'extra' on element <format> (line 2, /volume/target/format/@extra)"
    ),
    "<volume>\n<name>a/b</name></volume>": (
        "volume name 'a/b' must not contain '/' (line 2, /volume/name)"
    ),
    "<volume>\n<name>..</name></volume>": "volume name '..' is not allowed (line 2, /volume/name)",
    "<volume>\n<name>.</name></volume>": "volume name '.' is not allowed (line 2, /volume/name)",
    "<volume>\n<name></name></volume>": "volume name must not be empty (line 2, /volume/name)",
    "<volume>\n<name>a&#10;b</name></volume>": (
        "volume name 'a\\nb' must not contain control characters (line 2, /volume/name)"
    ),
    "<volume><name>a</name>\n<capacity>12abc</capacity></volume>": (
        "invalid size '12abc': expected a non-negative integer (line 2, /volume/capacity)"
    ),
    "<volume><name>a</name>\n<capacity>-1</capacity></volume>": (
        "invalid size '-1': expected a non-negative integer (line 2, /volume/capacity)"
    ),
    "<volume><name>a</name>\n<capacity unit='E'>16</capacity></volume>": (
        "size '16E' is too large (line 2, /volume/capacity)"
    ),
    "<volume><name>a</name><target>\n<format type='qcow3'/></target></volume>": (
        "unknown volume format 'qcow3' (one of unknown, raw, dir, bochs, cloop, dmg, iso, vpc, "
        "vdi, fat, vhd, ploop, luks, cow, qcow, qcow2, qed, vmdk) (line 2, "
        "/volume/target/format/@type)"
    ),
    "<volume><name>a</name><target><format type='raw'/>\n<compat>1.1</compat></target></volume>": (
        "compat and lazy_refcounts apply to qcow2 volumes only, not to format 'raw' (line 1, "
        "/volume/target/format/@type)"
    ),
    "<volume><name>a</name><target><format type='qcow2'/>\n<compat>2.0</compat></target>"
    "</volume>": "qcow2 compat must be 0.10 or 1.1, not '2.0' (line 2, /volume/target/compat)",
    "<volume type='tape'><name>a</name></volume>": (
        "invalid value 'tape' for attribute 'type' of <volume> (line 1, /volume/@type)"
    ),
    "<volume><name>a</name>\n<backingStore><format type='qcow2'/></backingStore></volume>": (
        "<backingStore> needs a <path> (line 2, /volume/backingStore/path)"
    ),
    "<volume><name>a</name><backingStore>\n<path>base.qcow2</path></backingStore></volume>": (
        "backing store path 'base.qcow2' must be an absolute path (line 2, "
        "/volume/backingStore/path)"
    ),
    "<volume><name>a</name><target>\n<timestamps><atime>yesterday</atime></timestamps>"
    "</target></volume>": (
        "invalid timestamp 'yesterday' in <atime> (line 2, /volume/target/timestamps/atime)"
    ),
    "<volume><name>a</name><target><path>/x</path>\n<path>/y</path></target></volume>": (
        "element <path> appears more than once in <target> (line 2, /volume/target/path[2])"
    ),
}


@pytest.mark.parametrize(("text", "message"), list(VOLUME_ERRORS.items()))
def test_volume_errors_name_the_element_and_line(text: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        parse_volume(text)
    assert str(err.value) == message


def test_volume_name_with_nul_is_refused() -> None:
    # XML cannot carry NUL: the model check is what guards the other front ends
    from vmkit.model.storage import validate_volume

    with pytest.raises(InvalidConfig, match="must not contain a NUL character"):
        validate_volume(Volume(name="a\x00b"))


def test_render_escapes_text_and_attributes() -> None:
    vol = Volume(name="a<&>'\"b", target_path="/p/a<&>'\"b")
    out = render_volume(vol)
    assert "<name>a&lt;&amp;&gt;'\"b</name>" in out
    assert parse_volume(out) == vol
    pool = Pool(
        name="fs", target_path="/m", type=PoolType.FS, source=PoolSource("/dev/it's", "xfs")
    )
    out = render_pool(pool)
    assert "<device path='/dev/it&apos;s'/>" in out
    assert parse_pool(out) == pool
