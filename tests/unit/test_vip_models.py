"""`vips:` in the inventory, the pure planner and safety checks, and the IAM policy (no I/O)."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.core.errors import InputError
from hybridctl.core.inventory.load import LoadedInventory, parse_inventory
from hybridctl.core.inventory.vips import Vip
from hybridctl.features.vip import iam, safety
from hybridctl.features.vip import read as vip_read
from hybridctl.features.vip.checks import Status
from hybridctl.features.vip.context import NodeEni, VipContext
from hybridctl.features.vip.plan import plan_repoint
from hybridctl.features.vip.validate import check_vips, select
from hybridctl_lab import vip_scenario as scenario

REPO = Path(__file__).resolve().parents[2]


def _text(vips: list[dict[str, Any]] | None = None) -> str:
    return yaml.safe_dump(scenario.inventory_document("http://127.0.0.1:1", "/dev/null", vips=vips), sort_keys=False)


def _load(vips: list[dict[str, Any]] | None = None) -> LoadedInventory:
    loaded = parse_inventory(_text(vips), "inv.yaml")
    check_vips(loaded)
    return loaded


def _problems(vips: list[dict[str, Any]]) -> list[Any]:
    with pytest.raises(InputError) as caught:
        _load(vips)
    return caught.value.problems


NODES = [{"name": "node1", "eni": "node1-eni"}, {"name": "node2", "eni": "eni-0123"}]


def test_the_lab_inventory_loads() -> None:
    from hybridctl.core.inventory.load import load_inventory

    loaded = load_inventory(REPO / "inventory" / "vip-lab.yaml")
    check_vips(loaded)
    (vip,) = loaded.inventory.vips
    assert str(vip.address) == scenario.VIP and vip.route_tables == "all"
    assert [n.name for n in vip.nodes] == ["node1", "node2"]


def test_defaults() -> None:
    vip = _load().inventory.vips[0]
    assert vip.route_tables == "all" and vip.transit_gateway is None and not vip.allow_collisions
    assert vip.destination == "20.0.0.100/32"


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        ({"address": "20.0.0.300"}, "vips[v].address", "not a valid IPv4 address"),
        ({"nodes": []}, "vips[v].nodes", "at least"),
        ({"route_tables": []}, "vips[v].route_tables", "list at least one"),
        ({"route_tables": ["Main", "Main"]}, "vips[v].route_tables", "listed twice"),
        ({"route_tables": "some"}, "vips[v].route_tables", "all"),
        ({"nodes": [{"name": "a", "eni": "x"}, {"name": "a", "eni": "y"}]}, "vips[v]", "used twice"),
        ({"nodes": [{"name": "a", "eni": "x"}, {"name": "b", "eni": "x"}]}, "vips[v]", "used twice"),
        ({"colour": "red"}, "vips[v].colour", "unknown field"),
        ({"transit_gateway": {"route_table": "t"}}, "vips[v].transit_gateway.attachment", "missing"),
        (
            {"transit_gateway": {"route_table": "t", "attachment": "a", "onprem_networks": ["192.168.1.0"]}},
            "vips[v].transit_gateway.onprem_networks",
            "no prefix length",
        ),
        ({"monitor_interval": -1}, "vips[v].monitor_interval", "greater than or equal"),
    ],
)
def test_entry_problems_carry_file_line_field_and_fix(edit: dict[str, Any], field: str, words: str) -> None:
    vip = {"name": "v", "address": "20.0.0.100", "vpc": "VIP-VPC", "nodes": NODES, **edit}
    problems = _problems([vip])
    assert len(problems) >= 1
    problem = next(p for p in problems if p.field.startswith(field))
    assert problem.file == "inv.yaml" and problem.line is not None and problem.fix
    assert words in problem.message or words in problem.fix


def test_cross_entry_problems() -> None:
    base = {"address": "20.0.0.100", "vpc": "VIP-VPC", "nodes": NODES}
    problems = _problems([{"name": "a", **base}, {"name": "a", **base, "address": "20.0.0.101"}])
    assert [(p.field, p.message) for p in problems] == [("vips[a].name", "VIP name 'a' is used twice")]
    # the same address in another region is fine; in the same region it is not
    _load([{"name": "a", **base}, {"name": "b", **base, "region": "us-east-1"}])
    (problem,) = _problems([{"name": "a", **base}, {"name": "b", **base}])
    assert problem.field == "vips[b].address" and "unique per account and region" in problem.fix


def test_vip_inside_a_declared_site_of_the_same_vpc() -> None:
    (problem,) = _problems([{"name": "v", "address": "192.168.20.50", "vpc": "Hybrid-VPC", "nodes": NODES}])
    assert problem.field == "vips[v].address" and "192.168.20.0/24" in problem.message


def test_select() -> None:
    loaded = _load()
    assert [v.name for v in select(loaded, None)] == ["ha-vip"]
    with pytest.raises(InputError, match="no VIP named 'x'"):
        select(loaded, ["x"])


# --------------------------------------------------------------------------- planner and checks


def _table(table_id: str, *routes: dict[str, Any], name: str | None = None, main: bool = False) -> dict[str, Any]:
    table: dict[str, Any] = {"RouteTableId": table_id, "VpcId": "vpc-1", "Routes": list(routes)}
    table["Associations"] = [{"Main": True}] if main else []
    table["Tags"] = [{"Key": "Name", "Value": name}] if name else []
    return table


def _vip_route(eni: str, state: str = "active") -> dict[str, Any]:
    return {"DestinationCidrBlock": "20.0.0.100/32", "NetworkInterfaceId": eni, "State": state}


def _ctx(vip: Vip, tables: list[dict[str, Any]], wanted: list[str], **kw: Any) -> VipContext:
    nodes = {
        "node1": NodeEni(vip.nodes[0], {"NetworkInterfaceId": "eni-1", "VpcId": "vpc-1", "SourceDestCheck": False}),
        "node2": NodeEni(
            vip.nodes[1],
            {
                "NetworkInterfaceId": "eni-2",
                "VpcId": kw.pop("node2_vpc", "vpc-1"),
                "SourceDestCheck": kw.pop("node2_check", False),
                "Attachment": {"Status": "attached", "InstanceId": "i-2"},
            },
        ),
    }
    return VipContext(
        vip=vip,
        region="r",
        vpc_id="vpc-1",
        vpc_cidrs=(ip_network("10.0.0.0/16"),),  # type: ignore[arg-type]
        owner_id="1",
        tables={t["RouteTableId"]: t for t in tables},
        wanted=wanted,
        nodes=nodes,
        collisions=kw.pop("collisions", []),
    )


def test_plan_repoints_holders_and_creates_missing_declared_routes() -> None:
    vip = _load().inventory.vips[0]
    tables = [
        _table("rtb-a", _vip_route("eni-1"), name="Main", main=True),
        _table("rtb-b", _vip_route("eni-2")),  # already there
        _table("rtb-c"),  # declared, missing
        _table("rtb-d", _vip_route("eni-1")),  # not declared but holds it: must follow
        _table("rtb-e"),  # neither
        _table("rtb-f", _vip_route("eni-2", state="blackhole")),
    ]
    ctx = _ctx(vip, tables, ["rtb-a", "rtb-b", "rtb-c", "rtb-f"])
    plan = plan_repoint(ctx, "eni-2")
    assert [(a.table_id, a.op, a.before) for a in plan] == [
        ("rtb-a", "replace", "eni-1"),
        ("rtb-c", "create", ""),
        ("rtb-d", "replace", "eni-1"),
        ("rtb-f", "replace", "eni-2"),
    ]
    assert all(a.target == {"NetworkInterfaceId": "eni-2"} for a in plan)
    assert plan_repoint(ctx, "eni-2", create_missing=False)[1].table_id == "rtb-d"
    assert ctx.active_node() == "node1"
    assert ctx.table_label("rtb-a") == "rtb-a (Main)"


def test_safety_checks() -> None:
    vip = _load().inventory.vips[0]
    other = {**_table("rtb-x", _vip_route("eni-9"), name="Other"), "VpcId": "vpc-9"}
    ctx = _ctx(vip, [_table("rtb-a", _vip_route("eni-1"))], ["rtb-a"], collisions=[other], node2_check=True)
    checks = {c.id: c for c in safety.run(ctx, ctx.nodes["node2"])}
    assert checks["vip-outside-vpc"].status is Status.ok
    assert checks["collision"].status is Status.fail
    assert checks["collision"].details == ("rtb-x (Other) in vpc-9 -> eni-9",)
    assert checks["source-dest-check"].status is Status.fail
    allowed = {c.id: c.status for c in safety.run(ctx, ctx.nodes["node2"], allow_collisions=True)}
    assert allowed["collision"] is Status.warn
    outside = _ctx(vip, [], [], node2_vpc="vpc-7")
    assert {c.id: c.status for c in safety.eni_checks(outside, outside.nodes["node2"])}["eni-in-vpc"] is Status.fail
    assert "eni-attached" in {c.id for c in safety.eni_checks(outside, outside.nodes["node1"])}
    inside = _load([{"name": "v", "address": "10.0.5.5", "vpc": "VIP-VPC", "nodes": NODES}]).inventory.vips[0]
    assert safety.vip_outside_vpc(_ctx(inside, [], [])).status is Status.fail


# --------------------------------------------------------------------------- IAM policy


def _statements(policy: dict[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    out: dict[str, list[tuple[str, Any]]] = {}
    for statement in policy["Statement"]:
        for action in statement["Action"]:
            out.setdefault(action, []).append(statement["Resource"])
    return out


def test_node_policy_is_the_agent_s_calls_only() -> None:
    inventory = _load().inventory
    policy = iam.policy(inventory, "node", account="123456789012")
    actions = _statements(policy)
    assert set(actions) == {
        "ec2:DescribeVpcs",
        "ec2:DescribeRouteTables",
        "ec2:DescribeNetworkInterfaces",
        "ec2:ReplaceRoute",
        "ec2:CreateRoute",
    }
    assert actions["ec2:ReplaceRoute"] == ["arn:aws:ec2:ap-northeast-1:123456789012:route-table/*"]
    assert actions["ec2:DescribeRouteTables"] == ["*"]
    assert all(s["Effect"] == "Allow" and s["Sid"].startswith("Hybridctl") for s in policy["Statement"])


def test_operator_policy_follows_the_features_used() -> None:
    tgw = {"route_table": "t", "attachment": "a"}
    inventory = _load(
        [{"name": "v", "address": "20.0.0.1", "vpc": "x", "nodes": NODES, "transit_gateway": tgw}]
    ).inventory
    policy = iam.policy(inventory, "operator")
    assert {s["Sid"].rstrip("0123456789") for s in policy["Statement"]} == {
        "HybridctlOverlay",
        "HybridctlCost",
        "HybridctlLeaks",
        "HybridctlVip",
        "HybridctlEndpoint",
        "HybridctlDoctor",
    }
    actions = _statements(policy)
    assert "ec2:CreateVpcEndpoint" in actions and "iam:SimulatePrincipalPolicy" in actions
    assert "ec2:ReplaceTransitGatewayRoute" in actions
    assert sorted(actions["ec2:ReplaceTransitGatewayRoute"][0]) == [
        "arn:aws:ec2:ap-northeast-1:*:transit-gateway-attachment/*",
        "arn:aws:ec2:ap-northeast-1:*:transit-gateway-route-table/*",
    ]
    no_vips = _load([]).inventory
    assert [s["Sid"] for s in iam.policy(no_vips, "node")["Statement"]] == []
    assert {s["Sid"].rstrip("0123456789") for s in iam.policy(no_vips)["Statement"]} == {
        "HybridctlOverlay",
        "HybridctlCost",
        "HybridctlLeaks",
    }
    leaks = _statements(iam.policy(no_vips))
    assert "ce:GetCostForecast" in leaks and "elasticloadbalancing:DescribeTargetHealth" in leaks
    assert not any(a.startswith(("ec2:Delete", "ec2:Release", "ec2:Terminate")) for a in leaks if "Route" not in a)
    with pytest.raises(ValueError):
        iam.features(no_vips, "admin")


def test_nodes_and_tables_resolve_by_id_or_name_tag() -> None:
    # The VIP's reads go through the one id-or-Name-tag resolver: an ENI by Name tag or id,
    # a route table by Name tag, id or "main"; a name held twice outside the VPC is settled by it.
    spec = {"name": "ha-vip", "address": "20.0.0.100", "vpc": "VIP-VPC", "nodes": NODES}
    vip = Vip.model_validate({**spec, "route_tables": ["Route-A", "rtb-2", "main"]})
    node1, node2 = vip.nodes
    named = {"NetworkInterfaceId": "eni-0aaa", "VpcId": "vpc-1", "TagSet": [{"Key": "Name", "Value": "node1-eni"}]}
    elsewhere = {"NetworkInterfaceId": "eni-0bbb", "VpcId": "vpc-9", "TagSet": [{"Key": "Name", "Value": "node1-eni"}]}
    by_id = {"NetworkInterfaceId": "eni-0123", "VpcId": "vpc-1", "TagSet": []}
    found = [named, elsewhere, by_id]
    assert vip_read._pick_eni(vip, "ap-northeast-1", node1, found, "vpc-1") is named
    assert vip_read._pick_eni(vip, "ap-northeast-1", node2, found, "vpc-1") is by_id
    tables = {
        "rtb-1": {"RouteTableId": "rtb-1", "Tags": [{"Key": "Name", "Value": "Route-A"}]},
        "rtb-2": {"RouteTableId": "rtb-2", "Tags": [{"Key": "Name", "Value": "Route-C"}]},
        "rtb-3": {"RouteTableId": "rtb-3", "Tags": [], "Associations": [{"Main": True}]},
    }
    assert vip_read._wanted_tables(vip, "ap-northeast-1", tables) == ["rtb-1", "rtb-2", "rtb-3"]
