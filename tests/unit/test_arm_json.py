"""The ARM JSON readers the Azure backend and `hybridctl init` share, on a route table as ARM returns it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hybridctl.backends.arm_json import last, lower, props
from hybridctl.core.planner.names import NAME_PREFIX

FIXTURES = Path(__file__).parent.parent / "fixtures" / "azure"


def _table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads((FIXTURES / "route_table.json").read_text())
    return table


def test_props_reads_properties_and_tolerates_partial_bodies() -> None:
    table = _table()
    routes = props(table)["routes"]
    assert props(routes[0])["nextHopIpAddress"] == "192.168.30.100"
    assert props({"name": "x"}) == {}
    assert props({"name": "x", "properties": None}) == {}


def test_last_is_the_resource_name_of_an_id() -> None:
    table = _table()
    route = props(table)["routes"][0]
    assert last(table["id"]) == "Hybrid-RT"
    assert last(route["id"]) == route["name"]
    assert last(table["id"] + "/") == "Hybrid-RT"


def test_lower_compares_names_and_ids_case_insensitively() -> None:
    table = _table()
    assert lower(table["name"]) == lower("HYBRID-rt")
    assert lower(table["id"]).endswith("/routetables/hybrid-rt")
    assert lower(None) == ""


def test_routes_hybridctl_wrote_carry_the_planners_prefix() -> None:
    # The Azure backend tells its own routes by the prefix the planner names them with.
    names = [str(r["name"]) for r in props(_table())["routes"]]
    assert [n for n in names if n.startswith(NAME_PREFIX)] == ["hybridctl-192-168-1-0-24"]
