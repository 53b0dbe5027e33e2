"""render_domain's layout (virsh's), inactive output, preserved parts; parse details."""

from __future__ import annotations

import re

import pytest

from vmkit.errors import InvalidConfig
from vmkit.model.devices import Controller, ControllerType, Graphics, GraphicsType
from vmkit.model.domain import Domain
from vmkit.xml.domain import parse_domain, render_domain

# `virsh -c test:///default dumpxml test` (libvirt 9.0), with type='qemu' and arch x86_64
# (vmkit runs neither the test driver nor i686).
VIRSH_DUMPXML = """\
<domain type='qemu' id='1'>
  <name>test</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/diskimage1'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='aa:bb:cc:dd:ee:fe'/>
      <source network='default'/>
      <target dev='testnet0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
    </interface>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </memballoon>
  </devices>
</domain>
"""

LIVE = """\
<domain type='kvm' id='7'>
  <name>live</name>
  <uuid>5a7c1e2d-3b4f-4a6e-8d9c-0f1e2d3c4b5a</uuid>
  <memory unit='KiB'>262144</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/vmkit/images/live.qcow2' index='1'/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <readonly/>
      <alias name='ua-cd'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:6b:3c:58'/>
      <source network='default' portid='a4f1c1a2-7d1e-4f0e-9d43-1f7b2c9a8e10' bridge='virbr0'/>
      <target dev='vnet0'/>
      <alias name='net0'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/3'/>
      <target type='isa-serial' port='0'/>
      <alias name='serial0'/>
    </serial>
    <console type='pty' tty='/dev/pts/3'>
      <source path='/dev/pts/3'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
    <channel type='unix'>
      <source mode='bind' path='/run/vmkit/ga.sock'/>
      <target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>
      <alias name='channel0'/>
    </channel>
  </devices>
</domain>
"""


def test_render_prints_like_virsh_dumpxml() -> None:
    assert render_domain(parse_domain(VIRSH_DUMPXML)) == VIRSH_DUMPXML


def test_render_live_keeps_runtime_parts() -> None:
    assert render_domain(parse_domain(LIVE)) == LIVE


def test_render_inactive_drops_runtime_parts() -> None:
    out = render_domain(parse_domain(LIVE), inactive=True)
    runtime_parts = ("id=", "index=", "portid=", "virbr0", "tty=", "/dev/pts/", "state=")
    for runtime in (*runtime_parts, "<alias name='net0'/>", "virtio-disk0"):
        assert runtime not in out, runtime
    assert "<alias name='ua-cd'/>" in out  # user aliases are configuration, as in libvirt
    assert "<source mode='bind' path='/run/vmkit/ga.sock'/>" in out
    assert "<target dev='vnet0'/>" in out


def test_render_inactive_of_a_live_parse_equals_parse_of_the_inactive_render() -> None:
    dom = parse_domain(LIVE)
    inactive = parse_domain(render_domain(dom, inactive=True))
    assert render_domain(inactive) == render_domain(dom, inactive=True)


# preserved parts -----------------------------------------------------------------------------

PRESERVED_DOC = """\
<domain type='qemu'>
  <name>kept</name>
  <seclabel type='dynamic' model='dac' relabel='yes'/>
  <memory>131072</memory>
  <pm><suspend-to-mem enabled='no'/></pm>
  <os><type>hvm</type></os>
  <metadata>
    <v:note xmlns:v="urn:example:note" level="2">keep <b>this</b> &amp; that</v:note>
  </metadata>
  <resource><partition>/machine</partition></resource>
</domain>
"""


def test_preserved_parts_are_kept_verbatim_in_libvirt_order() -> None:
    dom = parse_domain(PRESERVED_DOC)
    assert [p.split(">", 1)[0].split()[0] for p in dom.preserved] == [
        "<metadata",
        "<resource",
        "<pm",
        "<seclabel",
    ]
    note = '<v:note xmlns:v="urn:example:note" level="2">keep <b>this</b> &amp; that</v:note>'
    assert note in dom.preserved[0]


def test_preserved_parts_are_written_back_in_libvirt_order() -> None:
    out = render_domain(parse_domain(PRESERVED_DOC))
    positions = [out.index(tag) for tag in ("<metadata>", "<memory", "<resource>", "<os>")]
    assert positions == sorted(positions)
    assert out.index("<pm>") < out.index("<devices") < out.index("<seclabel")
    assert "<pm>\n    <suspend-to-mem enabled='no'/>\n  </pm>" in out.replace('"', "'")


def test_preserved_parts_survive_a_round_trip_unchanged() -> None:
    dom = parse_domain(PRESERVED_DOC)
    assert parse_domain(render_domain(dom)).preserved == dom.preserved


def test_preserved_parts_of_an_api_built_domain_are_written_in_libvirt_order() -> None:
    dom = Domain(name="x", preserved=["<seclabel type='none'/>", "<metadata/>"])
    out = render_domain(dom)
    assert out.index("<metadata/>") < out.index("<memory") < out.index("<seclabel")


def test_render_refuses_a_preserved_part_vmkit_does_not_keep() -> None:
    dom = Domain(name="x", preserved=["<hostdev mode='subsystem' type='pci'/>"])
    with pytest.raises(InvalidConfig, match="preserved part <hostdev> is not one vmkit keeps"):
        render_domain(dom)


def test_render_refuses_a_preserved_part_that_is_not_xml() -> None:
    with pytest.raises(InvalidConfig, match="not well-formed"):
        render_domain(Domain(name="x", preserved=["<metadata>"]))


# model -> XML details ------------------------------------------------------------------------


def test_render_escapes_text_and_attributes() -> None:
    dom = Domain(name="esc", description="a < b & c > d\nline 'two'")
    dom.devices.graphics.append(Graphics(type=GraphicsType.VNC, passwd='it\'s <&> "x"'))
    out = render_domain(dom)
    assert "<description>a &lt; b &amp; c &gt; d\nline 'two'</description>" in out
    assert "passwd='it&apos;s &lt;&amp;&gt; \"x\"'" in out
    again = parse_domain(out)
    assert again.description == dom.description
    assert again.devices.graphics[0].passwd == 'it\'s <&> "x"'


def test_graphics_none_renders_as_no_graphics() -> None:
    dom = Domain(name="headless")
    dom.devices.graphics.append(Graphics(type=GraphicsType.NONE))
    assert "<graphics" not in render_domain(dom)


def test_controller_target_port_renders_in_hex_like_libvirt() -> None:
    dom = Domain(name="ports")
    dom.devices.controllers.append(
        Controller(type=ControllerType.PCI, index=1, model="pcie-root-port", target_port=16)
    )
    assert "<target port='0x10'/>" in render_domain(dom)


def test_an_api_built_domain_renders_and_parses_back() -> None:
    dom = Domain(name="api")
    assert parse_domain(render_domain(dom)) == dom


# parse details -------------------------------------------------------------------------------

HEAD = "<domain type='qemu'><name>p</name><memory>131072</memory><os><type>hvm</type></os>"


def _parse(devices: str = "", extra: str = "") -> Domain:
    return parse_domain(f"{HEAD}{extra}<devices>{devices}</devices></domain>")


def test_controllers_without_index_get_the_lowest_free_one_like_libvirt() -> None:
    dom = _parse(
        "<controller type='pci' model='pcie-root-port'/>"
        "<controller type='usb' model='qemu-xhci'/>"
        "<controller type='pci' index='2' model='pcie-root-port'/>"
        "<controller type='pci' model='pcie-root'/>"
        "<controller type='pci' model='pcie-root-port'/>"
        "<controller type='usb' model='ehci'/>"
    )
    got = [(c.type.value, c.index, c.model) for c in dom.devices.controllers]
    assert got == [
        ("pci", 1, "pcie-root-port"),
        ("usb", 0, "qemu-xhci"),
        ("pci", 2, "pcie-root-port"),
        ("pci", 0, "pcie-root"),
        ("pci", 3, "pcie-root-port"),
        ("usb", 1, "ehci"),
    ]


@pytest.mark.parametrize(
    ("memory", "kib"),
    [
        ("<memory>1024</memory>", 1024),
        ("<memory unit='KiB'> 1024 </memory>", 1024),
        ("<memory unit='b'>1025</memory>", 2),  # rounded up, like libvirt
        ("<memory unit='KB'>1024</memory>", 1000),
        ("<memory unit='MB'>1</memory>", 977),
        ("<memory unit='M'>1</memory>", 1024),
        ("<memory unit='GiB'>1</memory>", 1048576),
        ("<memory unit='T'>1</memory>", 1024**3),
    ],
)
def test_memory_units(memory: str, kib: int) -> None:
    text = HEAD.replace("<memory>131072</memory>", memory) + "</domain>"
    assert parse_domain(text).memory_kib == kib


def test_comments_are_allowed_and_ignored() -> None:
    dom = _parse("<!-- a disk -->", extra="<!-- platform --><vcpu><!-- two -->2</vcpu>")
    assert dom.vcpu.count == 2


def test_a_libvirt_attribute_vmkit_cannot_run_is_refused_by_name() -> None:
    with pytest.raises(InvalidConfig) as info:
        _parse(extra="<features><apic eoi='on'/></features>")
    assert str(info.value) == (
        "<apic eoi='on'> is libvirt domain XML that vmkit cannot run "
        "(line 1, /domain/features/apic/@eoi)"
    )


def test_an_attribute_outside_libvirt_is_unknown() -> None:
    with pytest.raises(InvalidConfig) as info:
        _parse(extra="<features><apic colour='blue'/></features>")
    assert str(info.value) == (
        "unknown attribute 'colour' in <apic> (line 1, /domain/features/apic/@colour)"
    )


def test_listen_attribute_and_element_must_agree() -> None:
    with pytest.raises(
        InvalidConfig, match=re.escape("disagrees with <graphics listen='127.0.0.1'>")
    ):
        _parse(
            "<graphics type='vnc' listen='127.0.0.1'>"
            "<listen type='address' address='0.0.0.0'/></graphics>"
        )


def test_uuid_without_dashes_is_canonicalized() -> None:
    dom = _parse(extra="<uuid>6695EB01F6A4830479AA97F2502E193F</uuid>")
    assert dom.uuid == "6695eb01-f6a4-8304-79aa-97f2502e193f"


def test_a_missing_uuid_is_generated() -> None:
    assert len(_parse().uuid) == 36
