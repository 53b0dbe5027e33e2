"""The network XML cases (tests/data/network/xml) the net unit tests are made from."""

from __future__ import annotations

from pathlib import Path

from vmkit.model.network import Network
from vmkit.xml.network import parse_network

NET_DATA = Path(__file__).parents[2] / "data" / "network"


def load_case(case: str) -> Network:
    return parse_network((NET_DATA / "xml" / f"{case}.xml").read_text())
