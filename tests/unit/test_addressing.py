"""Transit assignment and exact summarization."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, collapse_addresses, summarize_address_range

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hybridctl.core.inventory.addressing import AddressingError, assign_transit, summarize
from hybridctl.core.inventory.load import parse_inventory
from hybridctl.core.planner.plan import _range_to_cidrs, plan
from tests.conftest import REPO

BASE = yaml.safe_load((REPO / "inventory" / "reference.yaml").read_text())


def load(doc: dict) -> object:
    return parse_inventory(yaml.safe_dump(doc), "t.yaml").inventory


def test_unpinned_transit_is_deterministic_in_site_order() -> None:
    import copy

    doc = copy.deepcopy(BASE)
    del doc["transit"]["switch_address"]
    for site in doc["sites"]:
        site["gateway"].pop("transit_address", None)
    inv = load(doc)
    first = assign_transit(inv)  # type: ignore[arg-type]
    assert first.switch == IPv4Address("192.168.10.1")
    assert first.bridges == {"aws": IPv4Address("192.168.10.2"), "azure": IPv4Address("192.168.10.3")}
    assert assign_transit(inv) == first  # type: ignore[arg-type]


def test_pinned_addresses_are_skipped_by_assignment() -> None:
    import copy

    doc = copy.deepcopy(BASE)
    doc["sites"][1]["gateway"].pop("transit_address")
    doc["sites"][2]["gateway"]["transit_address"] = "192.168.10.2"
    plan_ = assign_transit(load(doc))  # type: ignore[arg-type]
    assert plan_.bridges == {"aws": IPv4Address("192.168.10.3"), "azure": IPv4Address("192.168.10.2")}
    assert plan_.pinned == frozenset({"azure"})


def test_transit_too_small() -> None:
    import copy

    doc = copy.deepcopy(BASE)
    doc["transit"] = {"cidr": "192.168.10.0/30"}
    for site in doc["sites"]:
        site["gateway"].pop("transit_address", None)
    with pytest.raises(Exception, match="too small for 2 bridges"):
        load(doc)


def test_summarize_only_when_over_limit() -> None:
    prefixes = [IPv4Network("10.0.0.0/24"), IPv4Network("10.0.1.0/24"), IPv4Network("10.0.3.0/24")]
    assert summarize(prefixes, 3) == prefixes
    assert summarize(prefixes, 2) == [IPv4Network("10.0.0.0/23"), IPv4Network("10.0.3.0/24")]
    with pytest.raises(AddressingError, match="limit of 1"):
        summarize(prefixes, 1)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**20))
def test_range_to_cidrs_matches_ipaddress(start: int, length: int) -> None:
    end = min(start + length, 2**32 - 1)
    assert _range_to_cidrs(start, end) == list(summarize_address_range(IPv4Address(start), IPv4Address(end)))


def test_planner_summarizes_a_table_over_its_limit_exactly() -> None:
    import copy

    doc = copy.deepcopy(BASE)
    doc["sites"][1]["route_limit"] = 2  # aws: 192.168.1.0/24 + 192.168.30.0/24 + 192.168.31.0/24
    desired = plan(load(doc))  # type: ignore[arg-type]
    (table,) = [t for t in desired.route_tables if t.site == "aws"]
    assert table.summarized
    assert [str(r.prefix) for r in table.routes] == ["192.168.1.0/24", "192.168.30.0/23"]
    covered = list(collapse_addresses(r.prefix for r in table.routes))
    assert covered == list(
        collapse_addresses(map(IPv4Network, ["192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24"]))
    )
