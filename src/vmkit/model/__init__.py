"""model layer: typed dataclasses of domains and devices, units and validation; no I/O."""
