"""Names of the Azure objects hybridctl writes: always valid for ARM, stable, and unchanged where they fit.

The rule (learn.microsoft.com, azure-resource-manager/management/resource-name-rules,
Microsoft.Network routeTables/routes and networkSecurityGroups/securityRules): 1-80
characters, alphanumerics, underscores, periods and hyphens, start alphanumeric, end
alphanumeric or underscore.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from hybridctl.core.inventory.load import parse_inventory
from hybridctl.core.inventory.models import NAME_PATTERN
from hybridctl.core.planner.names import AZURE_NAME_MAX, azure_route_name, object_name, valid_azure_name
from hybridctl.core.planner.plan import plan
from tests.conftest import REPO

# What the inventory accepts for a site or network name (hybridctl.core.inventory.models.Name).
inventory_names = st.from_regex(NAME_PATTERN, fullmatch=True).filter(lambda n: len(n) <= 64)
RULE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")  # the documented rule, spelled out again


@given(st.lists(inventory_names, min_size=1, max_size=3))
def test_every_generated_name_is_valid_and_stable(parts: list[str]) -> None:
    name = object_name(*parts)
    assert valid_azure_name(name) and RULE.fullmatch(name), name
    assert len(name) <= AZURE_NAME_MAX
    assert name.startswith("hybridctl-")  # how the adapters tell hybridctl's objects from others'
    assert object_name(*parts) == name


@given(st.lists(inventory_names, min_size=1, max_size=2), st.lists(inventory_names, min_size=1, max_size=2))
def test_distinct_inputs_get_distinct_names(first: list[str], second: list[str]) -> None:
    if "-".join(first) != "-".join(second):
        assert object_name(*first) != object_name(*second)


@given(inventory_names)
def test_a_name_that_fits_is_used_as_it_is(part: str) -> None:
    full = "hybridctl-from-" + part
    if len(full) <= AZURE_NAME_MAX and full[-1] not in "-.":
        assert object_name("from", part) == full
    else:
        # Shortened: a readable head of the full name, then 8 hex digits.
        shortened = object_name("from", part)
        head, _, digest = shortened.rpartition("-")
        assert re.fullmatch(r"[0-9a-f]{8}", digest) and full.startswith(head)


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=0, max_value=32))
def test_route_names_are_the_readable_prefix(address: int, length: int) -> None:
    prefix = IPv4Network((address, length), strict=False)
    name = azure_route_name(prefix)
    assert name == "hybridctl-" + str(prefix).replace(".", "-").replace("/", "-")
    assert valid_azure_name(name)


def _long_inventory() -> dict[str, Any]:
    """The reference inventory with 64-character names, one ending in '-', and a workload NSG."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "inventory" / "reference.yaml").read_text())
    for site in raw["sites"]:
        for network in site.get("networks", []):
            network["name"] = (network["name"] + "-" + "x" * 64)[:63] + "-"
        if site["kind"] == "azure":
            site["workload_security_group"] = "workload-nsg"
    return raw


def test_every_azure_name_in_a_plan_of_long_names_is_valid() -> None:
    raw = _long_inventory()
    first = plan(parse_inventory(yaml.safe_dump(raw), "long.yaml").inventory)
    again = plan(parse_inventory(yaml.safe_dump(raw), "long.yaml").inventory)
    azure_rules = [r for r in first.security_rules if r.provider == "azure"]
    assert len(azure_rules) >= 4  # gateway NSG per network, workload NSG per remote network
    names = [r.name for r in azure_rules] + [r.name for t in first.route_tables if t.site == "azure" for r in t.routes]
    assert all(valid_azure_name(n) for n in names), [n for n in names if not valid_azure_name(n)]
    assert len(set(names)) == len(names)
    assert any(re.search(r"-[0-9a-f]{8}$", n) for n in names)  # some did need shortening
    assert names == [r.name for r in again.security_rules if r.provider == "azure"] + [
        r.name for t in again.route_tables if t.site == "azure" for r in t.routes
    ]


def test_the_reference_plan_keeps_its_names() -> None:
    desired = plan(parse_inventory((REPO / "inventory" / "reference.yaml").read_text(), "reference.yaml").inventory)
    azure = {r.name for r in desired.security_rules if r.provider == "azure"}
    assert azure == {"hybridctl-from-Hybrid_Subnet", "hybridctl-from-Hybrid_Subnet_Dammy"}
    (table,) = [t for t in desired.route_tables if t.site == "azure"]
    assert {r.name for r in table.routes} == {
        "hybridctl-192-168-1-0-24", "hybridctl-192-168-20-0-24", "hybridctl-192-168-21-0-24"
    }
