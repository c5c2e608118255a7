"""Unit tests for the fabric spec -> kernel state -> commands pipeline (pure, no root).

The CAPTURED_* constants are real output, captured from a running lab's ``hl-aws-fab``
(iproute2 6.1, nftables 1.0.6, Debian 12) after applying :func:`overlay_aws` below:
``ip -j -batch -`` with :func:`fabric.read_batch` (read_state now adds ``-4``; the capture holds no
IPv6 entry either), and ``nft -j list table inet hl_fabric_v1``.
"""

from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from hybridctl.core.errors import InputError
from hybridctl_lab import fabric
from hybridctl_lab.fabric import HostLink, KRoute, KRule, Route
from hybridctl_lab.topology import build_topology
from tests.conftest import FIXTURES

A = IPv4Address
N = IPv4Network

# Captured JSON, one array element per line (same documents). The iproute2 documents are
# tests/fixtures/host/fab_*.json: hybridctl's host parser reads them (tests/unit/test_host_facts.py).
CAPTURED_ROUTES = (FIXTURES / "host" / "fab_route_table_all.json").read_text()
CAPTURED_WAN_ADDR = (FIXTURES / "host" / "fab_wan_addr.json").read_text()
CAPTURED_RULES = """\
[
{"priority":0,"src":"all","table":"local"},
{"priority":1000,"src":"all","dst":"192.168.20.0","dstlen":24,"table":"main"},
{"priority":1001,"src":"all","dst":"192.168.21.0","dstlen":24,"table":"main"},
{"priority":2000,"src":"all","iif":"hl-br","table":"100"},
{"priority":2000,"src":"all","iif":"hl-h20","table":"100"},
{"priority":2000,"src":"all","iif":"hl-h21","table":"101"},
{"priority":3000,"src":"192.168.20.100","iif":"hl-br","table":"250"},
{"priority":32000,"src":"all","action":"unreachable"},
{"priority":32766,"src":"all","table":"main"},
{"priority":32767,"src":"all","table":"default"}
]
"""
CAPTURED_NFT = """\
{"nftables": [
{"metainfo":{"version":"1.0.6","release_name":"Lester Gooch #5","json_schema_version":1}},
{"table":{"family":"inet","name":"hl_fabric_v1","handle":1}},
{"set":{"family":"inet","name":"strict_links","table":"hl_fabric_v1","type":"ifname","handle":5,"elem":["hl-h20","hl-h21"]}},
{"set":{"family":"inet","name":"strict_nic","table":"hl_fabric_v1","type":["ifname","ipv4_addr"],"handle":6,"elem":[{"concat":["hl-h20","192.168.20.10"]},{"concat":["hl-h21","192.168.21.10"]}]}},
{"set":{"family":"inet","name":"wan_links","table":"hl_fabric_v1","type":"ifname","handle":7,"elem":["hl-wan"]}},
{"map":{"family":"inet","name":"pub2priv","table":"hl_fabric_v1","type":"ipv4_addr","handle":8,"map":"ipv4_addr","elem":[["203.0.113.20","192.168.20.100"]]}},
{"map":{"family":"inet","name":"priv2pub","table":"hl_fabric_v1","type":"ipv4_addr","handle":9,"map":"ipv4_addr","elem":[["192.168.20.100","203.0.113.20"]]}},
{"chain":{"family":"inet","table":"hl_fabric_v1","name":"source_check","handle":1,"type":"filter","hook":"prerouting","prio":-300,"policy":"accept"}},
{"chain":{"family":"inet","table":"hl_fabric_v1","name":"forward_check","handle":2,"type":"filter","hook":"forward","prio":0,"policy":"accept"}},
{"chain":{"family":"inet","table":"hl_fabric_v1","name":"public_in","handle":3,"type":"nat","hook":"prerouting","prio":-100,"policy":"accept"}},
{"chain":{"family":"inet","table":"hl_fabric_v1","name":"public_out","handle":4,"type":"nat","hook":"postrouting","prio":100,"policy":"accept"}},
{"rule":{"family":"inet","table":"hl_fabric_v1","chain":"source_check","handle":10,"expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"@strict_links"}},{"match":{"op":"!=","left":{"concat":[{"meta":{"key":"iifname"}},{"payload":{"protocol":"ip","field":"saddr"}}]},"right":"@strict_nic"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"hl_fabric_v1","chain":"forward_check","handle":11,"expr":[{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"@strict_links"}},{"match":{"op":"!=","left":{"concat":[{"meta":{"key":"oifname"}},{"payload":{"protocol":"ip","field":"daddr"}}]},"right":"@strict_nic"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"hl_fabric_v1","chain":"forward_check","handle":12,"expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"@wan_links"}},{"match":{"op":"in","left":{"ct":{"key":"status"}},"right":"dnat"}},{"accept":null}]}},
{"rule":{"family":"inet","table":"hl_fabric_v1","chain":"forward_check","handle":13,"expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"@wan_links"}},{"match":{"op":"in","left":{"ct":{"key":"status"}},"right":"snat"}},{"accept":null}]}},
{"rule":{"family":"inet","table":"hl_fabric_v1","chain":"forward_check","handle":14,"expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"@wan_links"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"hl_fabric_v1","chain":"public_in","handle":15,"expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"@wan_links"}},{"dnat":{"family":"ip","addr":{"map":{"key":{"payload":{"protocol":"ip","field":"daddr"}},"data":"@pub2priv"}}}}]}},
{"rule":{"family":"inet","table":"hl_fabric_v1","chain":"public_out","handle":16,"expr":[{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"@wan_links"}},{"snat":{"family":"ip","addr":{"map":{"key":{"payload":{"protocol":"ip","field":"saddr"}},"data":"@priv2pub"}}}}]}}
]}
"""


def bare() -> fabric.FabricSpec:
    return fabric.bare_spec(build_topology())


def overlay_aws() -> fabric.CloudFabric:
    """The AWS fabric the captured output was taken from."""
    aws = bare().cloud("aws")
    return dataclasses.replace(
        aws,
        route_tables={
            "rtb-hybrid": [
                Route(N("192.168.1.0/24"), A("192.168.20.100")),
                Route(N("192.168.30.0/24"), A("192.168.20.100")),
                Route(N("10.9.0.0/16"), None),
            ]
        },
        associations={N("192.168.20.0/24"): "rtb-hybrid"},
    ).with_forwarding({A("192.168.20.100"): True})


def captured_state() -> fabric.FabricState:
    compact = "\n".join(json.dumps(json.loads(d)) for d in (CAPTURED_ROUTES, CAPTURED_RULES, CAPTURED_WAN_ADDR))
    return fabric.parse_ip_state(compact, CAPTURED_NFT)


# --------------------------------------------------------------------------- bare spec


def test_bare_spec_mirrors_topology() -> None:
    spec = bare()
    aws, az = spec.cloud("aws"), spec.cloud("azure")
    assert aws.namespace == "hl-aws-fab" and az.namespace == "hl-az-fab"
    assert aws.cidrs == (N("192.168.20.0/24"), N("192.168.21.0/24"))
    assert az.subnets == (N("192.168.30.0/24"), N("192.168.31.0/24"))
    assert {h.nic_ip: h.public_ip for h in aws.hosts} == {
        A("192.168.20.100"): A("203.0.113.20"),
        A("192.168.20.10"): None,
        A("192.168.21.10"): None,
    }
    assert not any(h.may_forward for c in spec.clouds for h in c.hosts)
    assert all(not c.route_tables and not c.associations for c in spec.clouds)


def test_bare_desired_state_local_only() -> None:
    desired = fabric.desired_state(bare().cloud("aws"))
    state = desired.state
    # Only /32 host routes in main plus the internet-gateway table: no route leaves the VPC.
    main = {r for r in state.routes if r.table == fabric.TABLE_MAIN}
    assert main == {
        KRoute(254, N("192.168.20.100/32"), dev="hl-br"),
        KRoute(254, N("192.168.20.10/32"), dev="hl-h20"),
        KRoute(254, N("192.168.21.10/32"), dev="hl-h21"),
    }
    assert not [r for r in state.routes if fabric.TABLE_SUBNET_BASE <= r.table < fabric.TABLE_IGW]
    assert {r.dst for r in state.routes if r.table == fabric.TABLE_IGW} == {N("203.0.113.0/24"), N("0.0.0.0/0")}
    assert KRule(fabric.PRIO_UNREACHABLE) in state.rules
    assert KRule(1000, dst=N("192.168.20.0/24"), table=254) in state.rules
    assert KRule(1001, dst=N("192.168.21.0/24"), table=254) in state.rules
    # Only the host with a public IP may use the internet gateway table, and only from its own address.
    igw_rules = {r for r in state.rules if r.table == fabric.TABLE_IGW}
    assert igw_rules == {KRule(fabric.PRIO_IGW, iif="hl-br", src=N("192.168.20.100/32"), table=250)}
    assert state.wan_addresses == {IPv4Interface("203.0.113.20/24")}
    assert state.nft is not None
    assert state.nft.strict_links == {"hl-br", "hl-h20", "hl-h21"}
    assert state.nft.pub2priv == {(A("203.0.113.20"), A("192.168.20.100"))}
    assert desired.unresolved == ()


# --------------------------------------------------------------------------- route tables


def test_routes_go_to_the_table_of_each_subnet() -> None:
    aws = overlay_aws()
    state = fabric.desired_state(aws).state
    t20, t21 = aws.table_id(N("192.168.20.0/24")), aws.table_id(N("192.168.21.0/24"))
    assert (t20, t21) == (100, 101)
    assert KRoute(t20, N("192.168.1.0/24"), gateway=A("192.168.20.100"), dev="hl-br") in state.routes
    assert KRoute(t20, N("10.9.0.0/16"), "blackhole") in state.routes
    # 192.168.21.0/24 has no association and no default table: nothing leaves from it.
    assert not [r for r in state.routes if r.table == t21]
    assert KRule(fabric.PRIO_SUBNET, iif="hl-h21", table=t21) in state.rules
    assert KRule(fabric.PRIO_SUBNET, iif="hl-h20", table=t20) in state.rules


def test_default_table_serves_unassociated_subnets() -> None:
    aws = dataclasses.replace(overlay_aws(), associations={}, default_table="rtb-hybrid")
    state = fabric.desired_state(aws).state
    for table in (100, 101):
        assert KRoute(table, N("192.168.30.0/24"), gateway=A("192.168.20.100"), dev="hl-br") in state.routes


def test_next_hop_without_nic_becomes_blackhole_and_is_reported() -> None:
    gone = Route(N("192.168.31.0/24"), A("192.168.20.200"))
    aws = dataclasses.replace(overlay_aws(), route_tables={"rtb-hybrid": [gone]})
    desired = fabric.desired_state(aws)
    assert desired.unresolved == (gone,)
    assert KRoute(100, N("192.168.31.0/24"), "blackhole") in desired.state.routes


def test_may_forward_takes_the_nic_out_of_the_strict_sets() -> None:
    nft = fabric.desired_state(overlay_aws()).state.nft
    assert nft is not None
    assert "hl-br" not in nft.strict_links
    assert ("hl-br", A("192.168.20.100")) not in nft.strict_nic
    assert ("hl-h20", A("192.168.20.10")) in nft.strict_nic


def test_with_forwarding_changes_only_named_nics() -> None:
    aws = bare().cloud("aws").with_forwarding({A("192.168.20.100"): True, A("10.0.0.1"): True})
    assert {h.link: h.may_forward for h in aws.hosts} == {"hl-br": True, "hl-h20": False, "hl-h21": False}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"associations": {N("10.1.0.0/24"): "rtb-hybrid"}}, "associations"),
        ({"associations": {N("192.168.20.0/24"): "nope"}}, "associations"),
        ({"default_table": "nope"}, "default_table"),
        ({"hosts": (HostLink("hl-x", A("192.168.22.5"), N("192.168.22.0/24")),)}, "hosts"),
        ({"hosts": (HostLink("hl-x", A("192.168.21.5"), N("192.168.20.0/24")),)}, "nic_ip"),
        ({"hosts": (HostLink("hl-x" * 5, A("192.168.20.5"), N("192.168.20.0/24")),)}, "link"),
    ],
)
def test_invalid_specs_are_input_errors(change: dict[str, object], field: str) -> None:
    cloud = dataclasses.replace(overlay_aws(), **change)  # type: ignore[arg-type]
    with pytest.raises(InputError) as err:
        fabric.desired_state(cloud)
    assert any(field in p.field for p in err.value.problems)


# --------------------------------------------------------------------------- nft ruleset


def test_render_ruleset_has_elements_and_the_check_rules() -> None:
    nft = fabric.desired_state(overlay_aws()).state.nft
    assert nft is not None
    text = fabric.render_ruleset(nft)
    assert text.startswith(f"table inet {fabric.NFT_TABLE} {{")
    assert 'set strict_links { type ifname; elements = { "hl-h20", "hl-h21" } }' in text
    assert '"hl-h20" . 192.168.20.10' in text
    assert "map pub2priv { type ipv4_addr : ipv4_addr; elements = { 203.0.113.20 : 192.168.20.100 } }" in text
    assert "iifname @strict_links iifname . ip saddr != @strict_nic counter drop" in text
    assert "oifname @strict_links oifname . ip daddr != @strict_nic counter drop" in text
    assert "dnat ip to ip daddr map @pub2priv" in text


def test_render_ruleset_empty_sets_have_no_elements_clause() -> None:
    text = fabric.render_ruleset(fabric.NftElements())
    assert "elements" not in text
    assert "set strict_nic { type ifname . ipv4_addr; }" in text


# --------------------------------------------------------------------------- parsing captured output


def test_parse_captured_routes() -> None:
    routes = fabric.parse_routes(CAPTURED_ROUTES)
    assert KRoute(100, N("10.9.0.0/16"), "blackhole") in routes
    assert KRoute(100, N("192.168.1.0/24"), gateway=A("192.168.20.100"), dev="hl-br") in routes
    assert KRoute(250, N("0.0.0.0/0"), gateway=A("203.0.113.1"), dev="hl-wan") in routes
    assert KRoute(254, N("192.168.20.10/32"), dev="hl-h20") in routes
    # The kernel's own routes (connected, local table) are not the fabric's.
    assert all(r.dst != N("203.0.113.0/24") or r.table == 250 for r in routes)
    assert len(routes) == 8


def test_parse_captured_rules_keeps_only_the_fabric_range() -> None:
    rules = fabric.parse_rules(CAPTURED_RULES)
    assert min(r.priority for r in rules) == 1000 and max(r.priority for r in rules) == 32000
    assert KRule(3000, iif="hl-br", src=N("192.168.20.100/32"), table=250) in rules
    assert KRule(32000) in rules
    assert len(rules) == 7


def test_parse_captured_nft() -> None:
    nft = fabric.parse_nft(CAPTURED_NFT)
    assert nft is not None
    assert nft.strict_links == {"hl-h20", "hl-h21"}
    assert nft.strict_nic == {("hl-h20", A("192.168.20.10")), ("hl-h21", A("192.168.21.10"))}
    assert nft.wan_links == {"hl-wan"}
    assert nft.priv2pub == {(A("192.168.20.100"), A("203.0.113.20"))}


def test_parse_nft_absent_table() -> None:
    assert fabric.parse_nft("") is None


def test_parse_nft_lone_unwrapped_elements() -> None:
    doc = {
        "nftables": [
            {"set": {"name": "strict_links", "table": fabric.NFT_TABLE, "elem": "hl-h20"}},
            {"map": {"name": "pub2priv", "table": fabric.NFT_TABLE, "elem": ["203.0.113.20", "192.168.20.100"]}},
        ]
    }
    nft = fabric.parse_nft(json.dumps(doc))
    assert nft is not None
    assert nft.strict_links == {"hl-h20"}
    assert nft.pub2priv == {(A("203.0.113.20"), A("192.168.20.100"))}


# --------------------------------------------------------------------------- plan


def test_plan_against_captured_state_is_empty() -> None:
    """What we render is exactly what the kernel reports back: a converged fabric plans nothing."""
    aws = overlay_aws()
    changes = fabric.plan(fabric.desired_state(aws).state, captured_state(), aws)
    assert changes.empty, changes


def test_plan_from_nothing_builds_everything() -> None:
    aws = overlay_aws()
    empty = fabric.FabricState(frozenset(), frozenset(), frozenset(), None)
    changes = fabric.plan(fabric.desired_state(aws).state, empty, aws)
    assert changes.nft_script.startswith(f"table inet {fabric.NFT_TABLE}")
    assert "addr add 203.0.113.20/24 dev hl-wan" in changes.ip_lines
    assert "rule add prio 32000 unreachable" in changes.ip_lines
    # Routes are in place before the rules that send traffic to them.
    first_rule = min(i for i, line in enumerate(changes.ip_lines) if line.startswith("rule add"))
    last_route = max(i for i, line in enumerate(changes.ip_lines) if line.startswith("route replace"))
    assert last_route < first_rule


def test_plan_changes_only_what_differs() -> None:
    aws = overlay_aws()
    strict_again = aws.with_forwarding({A("192.168.20.100"): False})
    fewer = dataclasses.replace(
        strict_again, route_tables={"rtb-hybrid": [Route(N("192.168.1.0/24"), A("192.168.20.100"))]}
    )
    changes = fabric.plan(fabric.desired_state(fewer).state, captured_state(), fewer)
    assert sorted(changes.ip_lines) == [
        "route del 10.9.0.0/16 table 100 proto 77",
        "route del 192.168.30.0/24 table 100 proto 77",
    ]
    assert changes.nft_script.splitlines() == [
        f'add element inet {fabric.NFT_TABLE} strict_links {{ "hl-br" }}',
        f'add element inet {fabric.NFT_TABLE} strict_nic {{ "hl-br" . 192.168.20.100 }}',
    ]


def test_plan_replaces_a_changed_target_in_place() -> None:
    aws = overlay_aws()
    moved = dataclasses.replace(
        aws,
        route_tables={
            "rtb-hybrid": [
                Route(N("192.168.1.0/24"), A("192.168.20.10")),  # failover to another ENI
                Route(N("192.168.30.0/24"), A("192.168.20.100")),
                Route(N("10.9.0.0/16"), None),
            ]
        },
    )
    changes = fabric.plan(fabric.desired_state(moved).state, captured_state(), moved)
    assert changes.ip_lines == ("route replace 192.168.1.0/24 via 192.168.20.10 dev hl-h20 onlink table 100 proto 77",)
    assert changes.nft_script == ""


def test_plan_moves_a_public_ip() -> None:
    aws = overlay_aws()
    hosts = tuple(dataclasses.replace(h, public_ip=A("203.0.113.21")) if h.link == "hl-br" else h for h in aws.hosts)
    changes = fabric.plan(fabric.desired_state(dataclasses.replace(aws, hosts=hosts)).state, captured_state(), aws)
    assert changes.ip_lines == ("addr add 203.0.113.21/24 dev hl-wan", "addr del 203.0.113.20/24 dev hl-wan")
    script = changes.nft_script.splitlines()
    # Deletes come first in the one transaction: a map key's value changes by delete + add.
    assert script[0].startswith("delete element") and script[-1].startswith("add element")
    assert any("203.0.113.21 : 192.168.20.100" in line for line in script)


def test_krule_and_kroute_commands() -> None:
    assert KRule(1000, dst=N("192.168.20.0/24"), table=254).add() == "rule add prio 1000 to 192.168.20.0/24 lookup 254"
    assert KRule(3000, iif="hl-br", src=N("192.168.20.100/32"), table=250).delete() == (
        "rule del prio 3000 iif hl-br from 192.168.20.100/32 lookup 250"
    )
    assert KRoute(100, N("10.0.0.0/8"), "blackhole").add() == "route replace blackhole 10.0.0.0/8 table 100 proto 77"
    assert KRoute(254, N("192.168.20.10/32"), dev="hl-h20").add() == (
        "route replace 192.168.20.10/32 dev hl-h20 scope link table 254 proto 77"
    )


def test_networks_helper() -> None:
    assert fabric.networks(["192.168.1.0/24"]) == (N("192.168.1.0/24"),)
    with pytest.raises(ValueError):
        fabric.networks(["fd00::/64"])
