"""vmkit's benchmark suite (issue 6): vmkit against bare QEMU and libvirt, as ratios.

Run `python -m bench --help`; bench/README.md explains the rows, the modes and the results.
"""
