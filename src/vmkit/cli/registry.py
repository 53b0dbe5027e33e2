"""The table of CLI commands: name -> module that implements it, one-line help, virsh group.

Kept as plain data so that `vmkit COMMAND` imports just one command module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str
    help: str


_DOM = "vmkit.cli.domain_cmds"
_LIFE = "vmkit.cli.lifecycle_cmds"
_XML = "vmkit.cli.xml_cmds"
_HOST = "vmkit.cli.host_cmds"
_GUEST = "vmkit.cli.guest_cmds"

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
    "vmkit": ["guest"],
}
