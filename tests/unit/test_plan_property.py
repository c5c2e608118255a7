"""Property: for random N-site inventories, following the planned routes hop by hop from any
network reaches every other site's networks, and the reply comes back — no loops, no black holes."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hybridctl.core.inventory.addressing import AddressingError
from hybridctl.core.inventory.load import parse_inventory
from hybridctl.core.planner.plan import plan
from hybridctl.core.planner.trace import trace


@st.composite
def inventories(draw: st.DrawFn) -> dict[str, Any]:
    n_sites = draw(st.integers(min_value=2, max_value=7))
    kinds = ["onprem"] + [draw(st.sampled_from(["onprem", "aws", "azure"])) for _ in range(n_sites - 1)]
    counts = [draw(st.integers(min_value=1, max_value=3)) for _ in range(n_sites)]
    # Distinct /24s (sometimes contiguous, so summarization has something to merge).
    blocks = draw(
        st.lists(st.integers(min_value=0, max_value=250), min_size=sum(counts), max_size=sum(counts), unique=True)
    )
    limit = draw(st.one_of(st.none(), st.integers(min_value=2, max_value=12)))
    sites = []
    cursor = 0
    for index, (kind, count) in enumerate(zip(kinds, counts, strict=True)):
        cidrs = [IPv4Network(f"10.{index}.{blocks[cursor + i]}.0/24") for i in range(count)]
        cursor += count
        name = f"s{index}"
        first = cidrs[0]
        gateway: dict[str, Any] = {
            "name": f"gw{index}",
            "ssh": {"host": f"gw{index}.example"},
            "private_ip": str(first.network_address + 100),
        }
        site: dict[str, Any] = {"name": name, "kind": kind, "gateway": gateway}
        if index == 0:
            gateway.update(
                role="vpn-server",
                public_address="203.0.113.1",
                lan_device="eth1",
                switch_address=f"{first.network_address + 249}/24",
            )
        else:
            gateway.update(role="vpn-bridge", public_address=f"198.51.100.{index}")
        networks = []
        if kind == "onprem":
            for i, cidr in enumerate(cidrs):
                network: dict[str, Any] = {"name": f"n{i}", "cidr": str(cidr)}
                if i > 0:  # further on-prem networks sit behind a LAN router
                    network["via"] = str(first.network_address + 1)
                networks.append(network)
            site["clients"] = [{"name": f"c{index}", "address": str(first.network_address + 10)}]
        else:
            tables = draw(st.integers(min_value=1, max_value=2))
            site["route_tables"] = [{"name": f"rt{t}"} for t in range(tables)]
            for i, cidr in enumerate(cidrs):
                table = draw(st.integers(min_value=0, max_value=tables - 1))
                networks.append({"name": f"n{i}", "cidr": str(cidr), "route_table": f"rt{table}"})
            if kind == "aws":
                site.update(vpc="vpc", region="ap-northeast-1")
                gateway["eni"] = f"eni{index}"
            else:
                site.update(resource_group="rg", vnet="vnet")
                gateway["nic"] = f"nic{index}"
            if limit is not None:
                site["route_limit"] = limit
        site["networks"] = networks
        sites.append(site)
    return {
        "version": 1,
        "name": "random",
        "transit": {"cidr": "172.16.0.0/24"},
        "azure": {"subscription_id": "sub"},
        "sites": sites,
    }


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories())
def test_every_site_reaches_every_other(document: dict[str, Any]) -> None:
    try:
        loaded = parse_inventory(yaml.safe_dump(document), "random.yaml")
    except Exception as error:  # a route table that cannot fit its limit is a valid refusal
        assume("do not fit" not in str(error) and "over the limit" not in str(error))
        raise
    inventory = loaded.inventory
    try:
        desired = plan(inventory)
    except AddressingError:
        assume(False)
        raise
    server = inventory.server_site.name
    hosts: list[tuple[str, IPv4Address]] = [
        (site.name, net.cidr.network_address + 10) for site in inventory.sites for net in site.networks
    ]
    for src_site, src in hosts:
        for dst_site, dst in hosts:
            if src_site == dst_site:
                continue
            forward = trace(inventory, desired, src, dst)
            assert forward[-1].layer in {"local", "l3-interface"}
            assert delivered_at(forward[-1].where, server) == dst_site
            back = trace(inventory, desired, dst, src)
            assert delivered_at(back[-1].where, server) == src_site


def delivered_at(where: str, server_site: str) -> str:
    """Site a final hop stands in: the L3 switch delivers onto the server site's LAN."""
    return server_site if where == "switch" else where.split(":", 1)[1]


def test_forgetting_a_route_is_caught_by_trace() -> None:
    """The trace really fails when a route is missing (the class of bug the source had)."""
    import dataclasses

    import pytest

    from hybridctl.core.planner.trace import TraceError
    from tests.conftest import REPO

    inventory = parse_inventory((REPO / "inventory" / "reference.yaml").read_text(), "reference.yaml").inventory
    desired = plan(inventory)
    azure = desired.host("azure-bridge")
    broken = dataclasses.replace(azure, routes=tuple(r for r in azure.routes if str(r.prefix) != "192.168.21.0/24"))
    hosts = tuple(broken if h.name == "azure-bridge" else h for h in desired.hosts)
    broken_state = dataclasses.replace(desired, hosts=hosts)
    with pytest.raises(TraceError) as caught:
        trace(inventory, broken_state, IPv4Address("192.168.30.10"), IPv4Address("192.168.21.10"))
    assert caught.value.kind == "blackhole"
    # The healthy plan delivers the same packet.
    assert trace(inventory, desired, IPv4Address("192.168.30.10"), IPv4Address("192.168.21.10"))[-1].layer == "local"
