"""The table of CLI commands: name -> module that implements it, one-line help, virsh group.

Kept as plain data so that `vmkit COMMAND` imports just one command module.
"""

from __future__ import annotations

from vmkit.state.frozen import Frozen

# A command's argparse-free spec (cli.main._fast_args): its boolean flags, its positionals,
# and the values argparse gives its other options when they are absent.
FastSpec = tuple[tuple[str, ...], tuple[str, ...], dict[str, object]]


class Command(Frozen):
    _fields = ("module", "help")
    __slots__ = _fields
    module: str
    help: str

    def __init__(self, module: str, help: str) -> None:
        self._init(module, help)


_DOM = "vmkit.cli.domain_cmds"
_LIFE = "vmkit.cli.lifecycle_cmds"
_XML = "vmkit.cli.xml_cmds"
_HOST = "vmkit.cli.host_cmds"
_GUEST = "vmkit.cli.guest_cmds"
_POOL = "vmkit.cli.pool_cmds"
_VOL = "vmkit.cli.vol_cmds"
_NET = "vmkit.cli.net_cmds"
_NETNS = "vmkit.cli.netns_cmds"
_IFACE = "vmkit.cli.iface_cmds"
_DISK = "vmkit.cli.disk_cmds"
_SNAP = "vmkit.cli.snapshot_cmds"
_SAVE = "vmkit.cli.save_cmds"

COMMANDS: dict[str, Command] = {
    # domain management
    "define": Command(_DOM, "define (but don't start) a domain from an XML file"),
    "undefine": Command(_DOM, "undefine a domain"),
    "create": Command(_LIFE, "create (start) a transient domain from an XML file"),
    "start": Command(_LIFE, "start a (previously defined) inactive domain"),
    "shutdown": Command(_LIFE, "gracefully shut down a domain (ACPI power button)"),
    "reboot": Command(_LIFE, "reboot a domain"),
    "reset": Command(_LIFE, "reset a domain (hard)"),
    "destroy": Command(_LIFE, "destroy (stop) a domain"),
    "suspend": Command(_LIFE, "suspend (pause) a domain"),
    "resume": Command(_LIFE, "resume a suspended domain"),
    "console": Command(_LIFE, "connect to the guest's serial console"),
    "dumpxml": Command(_DOM, "domain information in XML"),
    "edit": Command(_DOM, "edit the XML configuration of a domain"),
    "autostart": Command(_DOM, "autostart a domain at host boot"),
    "start-autostart": Command(_LIFE, "start every domain marked autostart (for init scripts)"),
    "setmem": Command(_DOM, "change the memory allocation (next boot)"),
    "setmaxmem": Command(_DOM, "change the maximum memory (next boot)"),
    "setvcpus": Command(_DOM, "change the number of virtual CPUs (next boot)"),
    # domain monitoring
    "list": Command(_DOM, "list domains"),
    "dominfo": Command(_DOM, "domain information"),
    "domstate": Command(_DOM, "domain state"),
    "domid": Command(_DOM, "convert a domain name or UUID to a domain id"),
    "domuuid": Command(_DOM, "convert a domain name or id to a domain UUID"),
    "domname": Command(_DOM, "convert a domain id or UUID to a domain name"),
    # xml
    "validate": Command(_XML, "validate a domain XML file (exit 0 or 2)"),
    "domxml-to-native": Command(_XML, "convert domain XML to a QEMU command line"),
    # host
    "version": Command(_HOST, "show version"),
    "nodeinfo": Command(_HOST, "node information"),
    "capabilities": Command(_HOST, "host and hypervisor capabilities (XML)"),
    "host-validate": Command(_HOST, "check that this host can run virtual machines"),
    # storage pools
    "pool-define": Command(_POOL, "define an inactive persistent storage pool from an XML file"),
    "pool-define-as": Command(_POOL, "define a pool from a set of args"),
    "pool-create": Command(_POOL, "create a transient pool from an XML file"),
    "pool-create-as": Command(_POOL, "create a transient pool from a set of args"),
    "pool-build": Command(_POOL, "build a pool"),
    "pool-start": Command(_POOL, "start a (previously defined) inactive pool"),
    "pool-destroy": Command(_POOL, "destroy (stop) a pool"),
    "pool-delete": Command(_POOL, "delete a pool"),
    "pool-undefine": Command(_POOL, "undefine an inactive pool"),
    "pool-list": Command(_POOL, "list pools"),
    "pool-info": Command(_POOL, "storage pool information"),
    "pool-refresh": Command(_POOL, "refresh a pool"),
    "pool-autostart": Command(_POOL, "autostart a pool"),
    "pool-dumpxml": Command(_POOL, "pool information in XML"),
    "pool-uuid": Command(_POOL, "convert a pool name to pool UUID"),
    "pool-name": Command(_POOL, "convert a pool UUID to pool name"),
    # storage volumes
    "vol-create-as": Command(_VOL, "create a volume from a set of args"),
    "vol-create": Command(_VOL, "create a vol from an XML file"),
    "vol-clone": Command(_VOL, "clone a volume"),
    "vol-delete": Command(_VOL, "delete a vol"),
    "vol-resize": Command(_VOL, "resize a vol"),
    "vol-info": Command(_VOL, "storage vol information"),
    "vol-list": Command(_VOL, "list vols"),
    "vol-dumpxml": Command(_VOL, "vol information in XML"),
    "vol-path": Command(_VOL, "returns the volume path for a given volume name or key"),
    "vol-upload": Command(_VOL, "upload file contents to a volume"),
    "vol-download": Command(_VOL, "download volume contents to a file"),
    "vol-wipe": Command(_VOL, "wipe a vol"),
    "vol-import": Command(_VOL, "import an existing image (qcow2, raw, vmdk, vdi) into a pool"),
    # domain disks
    "attach-disk": Command(_DISK, "attach disk device"),
    "detach-disk": Command(_DISK, "detach disk device"),
    "attach-device": Command(_DISK, "attach device from an XML file"),
    "detach-device": Command(_DISK, "detach device from an XML file"),
    "change-media": Command(_DISK, "change media of CD or floppy drive"),
    "domblklist": Command(_DISK, "list all domain blocks"),
    "domblkinfo": Command(_DISK, "domain block device size information"),
    "domblkstat": Command(_DISK, "get device block stats for a domain"),
    # save, restore, clone
    "save": Command(_SAVE, "save a domain state to a file"),
    "restore": Command(_SAVE, "restore a domain from a saved state in a file"),
    "managedsave": Command(_SAVE, "managed save of a domain state"),
    "managedsave-remove": Command(_SAVE, "remove managed save of a domain"),
    "save-image-dumpxml": Command(_SAVE, "saved state domain information in XML"),
    "clone": Command(_SAVE, "clone a domain (virt-clone): new name, uuid, MACs and disks"),
    # snapshots
    "snapshot-create": Command(_SNAP, "create a snapshot from XML"),
    "snapshot-create-as": Command(_SNAP, "create a snapshot from a set of args"),
    "snapshot-list": Command(_SNAP, "list snapshots for a domain"),
    "snapshot-info": Command(_SNAP, "snapshot information"),
    "snapshot-dumpxml": Command(_SNAP, "dump XML for a domain snapshot"),
    "snapshot-current": Command(_SNAP, "get or set the current snapshot"),
    "snapshot-revert": Command(_SNAP, "revert a domain to a snapshot"),
    "snapshot-delete": Command(_SNAP, "delete a domain snapshot"),
    "snapshot-parent": Command(_SNAP, "get the name of the parent of a snapshot"),
    # domain interfaces
    "domiflist": Command(_IFACE, "list all domain virtual interfaces"),
    "domifaddr": Command(_IFACE, "get network interfaces' addresses for a running domain"),
    "domifstat": Command(_IFACE, "get network interface stats for a domain"),
    "domif-setlink": Command(_IFACE, "set link state of a virtual interface"),
    "domif-getlink": Command(_IFACE, "get link state of a virtual interface"),
    "attach-interface": Command(_IFACE, "attach network interface"),
    "detach-interface": Command(_IFACE, "detach network interface"),
    # networking
    "net-define": Command(_NET, "define an inactive persistent virtual network from an XML file"),
    "net-create": Command(_NET, "create (start) a transient network from an XML file"),
    "net-start": Command(_NET, "start a (previously defined) inactive network"),
    "net-destroy": Command(_NET, "destroy (stop) a network"),
    "net-undefine": Command(_NET, "undefine a persistent network"),
    "net-list": Command(_NET, "list networks"),
    "net-info": Command(_NET, "network information"),
    "net-dumpxml": Command(_NET, "network information in XML"),
    "net-edit": Command(_NET, "edit XML configuration for a network"),
    "net-autostart": Command(_NET, "autostart a network"),
    "net-start-autostart": Command(_NET, "start every network marked autostart (for boot)"),
    "net-uuid": Command(_NET, "convert a network name to network UUID"),
    "net-name": Command(_NET, "convert a network UUID to network name"),
    "net-dhcp-leases": Command(_NET, "print lease info for a given network"),
    "net-update": Command(_NET, "update parts of an existing network's configuration"),
    "port-forward": Command(_NET, "forward host ports into NAT'd guests (add, remove, list)"),
    "netns": Command(_NETNS, "network namespaces (add, delete, list, exec)"),
    "veth": Command(_NETNS, "veth pairs (add, delete)"),
    "router": Command(_NETNS, "a namespace as a network's router with SNAT (add, delete, list)"),
    "iface-bridge": Command(_NETNS, "create a bridge device and attach an existing device to it"),
    "iface-unbridge": Command(_NETNS, "undefine a bridge device after detaching its device"),
    # vmkit
    "guest": Command(_GUEST, "build the tiny test guest (kernel + initramfs)"),
}

GROUPS: dict[str, list[str]] = {
    "Domain Management (help keyword 'domain')": [
        "define",
        "undefine",
        "create",
        "start",
        "shutdown",
        "reboot",
        "reset",
        "destroy",
        "suspend",
        "resume",
        "console",
        "dumpxml",
        "edit",
        "autostart",
        "start-autostart",
        "setmem",
        "setmaxmem",
        "setvcpus",
        "validate",
        "domxml-to-native",
    ],
    "Domain Monitoring (help keyword 'monitor')": [
        "list",
        "dominfo",
        "domstate",
        "domid",
        "domuuid",
        "domname",
    ],
    "Host and Hypervisor (help keyword 'host')": [
        "version",
        "nodeinfo",
        "capabilities",
        "host-validate",
    ],
    "Domain Disks and Devices (help keyword 'disk')": [
        "attach-disk",
        "detach-disk",
        "attach-device",
        "detach-device",
        "change-media",
        "domblklist",
        "domblkinfo",
        "domblkstat",
    ],
    "Save, Restore and Clone (help keyword 'save')": [
        "save",
        "restore",
        "managedsave",
        "managedsave-remove",
        "save-image-dumpxml",
        "clone",
    ],
    "Snapshot (help keyword 'snapshot')": [
        "snapshot-create",
        "snapshot-create-as",
        "snapshot-list",
        "snapshot-info",
        "snapshot-dumpxml",
        "snapshot-current",
        "snapshot-revert",
        "snapshot-delete",
        "snapshot-parent",
    ],
    "Storage Pool (help keyword 'pool')": [
        "pool-define",
        "pool-define-as",
        "pool-create",
        "pool-create-as",
        "pool-build",
        "pool-start",
        "pool-destroy",
        "pool-delete",
        "pool-undefine",
        "pool-list",
        "pool-info",
        "pool-refresh",
        "pool-autostart",
        "pool-dumpxml",
        "pool-uuid",
        "pool-name",
    ],
    "Storage Volume (help keyword 'volume')": [
        "vol-create-as",
        "vol-create",
        "vol-clone",
        "vol-delete",
        "vol-resize",
        "vol-info",
        "vol-list",
        "vol-dumpxml",
        "vol-path",
        "vol-upload",
        "vol-download",
        "vol-wipe",
        "vol-import",
    ],
    "Domain Interfaces (help keyword 'interface')": [
        "domiflist",
        "domifaddr",
        "domifstat",
        "domif-setlink",
        "domif-getlink",
        "attach-interface",
        "detach-interface",
    ],
    "Networking (help keyword 'network')": [
        "net-define",
        "net-create",
        "net-start",
        "net-destroy",
        "net-undefine",
        "net-list",
        "net-info",
        "net-dumpxml",
        "net-edit",
        "net-autostart",
        "net-start-autostart",
        "net-uuid",
        "net-name",
        "net-dhcp-leases",
        "net-update",
        "port-forward",
        "netns",
        "veth",
        "router",
        "iface-bridge",
        "iface-unbridge",
    ],
    "vmkit": ["guest"],
}
