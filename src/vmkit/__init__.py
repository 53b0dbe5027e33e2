"""vmkit: a KVM/QEMU virtualization manager (libvirt XML, QEMU over QMP, virsh-like CLI)."""

__version__ = "0.1.0"
