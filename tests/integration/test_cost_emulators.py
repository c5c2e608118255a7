"""`hybridctl cost` and `hybridctl leaks` against the lab's emulators (moto + extensions, the ARM emulator).

The clouds are seeded exactly as `hybridctl lab up` seeds them (hybridctl_lab.seed and
hybridctl_lab.seed_costs: the bare reference VPC/VNet, a few leaks, 20 days of spend); every
command runs through the real CLI entry point, boto3 and the Azure SDK pipeline. Expected
figures are computed from the seeded line items, never written down.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from hybridctl.features.cost.parse import month_end
from hybridctl_lab import seed, seed_costs
from hybridctl_lab.inventory import inventory_document
from hybridctl_lab.topology import build_topology
from tests.support.emulators import CliWorld, azure_section, boto_client, cli_world

if TYPE_CHECKING:
    from hybridctl_lab.aws_emulator import AwsEmulator
    from hybridctl_lab.azure_emulator import AzureEmulator

pytestmark = pytest.mark.integration

TOPOLOGY = build_topology(0)
TODAY = dt.datetime.now(dt.UTC).date()


@dataclass
class World(CliWorld):
    ec2: Any
    ids: seed.AwsSeed
    costs: seed_costs.CostSeed

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        """``hybridctl ARGS -i <the world's inventory> -o json``."""
        return super().json(*args, "-i", str(self.inventory))


@pytest.fixture
def world(
    fresh_aws: AwsEmulator,
    fresh_azure: AzureEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> World:
    world = cli_world(fresh_aws, fresh_azure, tmp_path, monkeypatch, capsys)
    ec2 = boto_client(fresh_aws, "ec2", region=seed.AWS_REGION)
    ids = seed.seed_aws(ec2, TOPOLOGY)
    seed.seed_azure(fresh_azure, TOPOLOGY)
    costs = seed_costs.seed_costs(ec2, fresh_aws, fresh_azure, ids, TODAY)
    doc = inventory_document(TOPOLOGY, tmp_path / "lab")
    doc["aws"] = {
        "region": seed.AWS_REGION,
        "endpoint_url": fresh_aws.endpoint_url,
        "credentials_file": str(world.credentials),
    }
    doc["azure"] = {**azure_section(fresh_azure, world.client_secret), "polling_interval": 0.05}
    doc["secrets"] = {"store": str(tmp_path / "secrets.json")}
    doc["budgets"] = [
        {"name": "hybrid-guard", "cloud": "aws", "amount": 30, "preset": "guard", "emails": ["ops@example.com"]},
        {
            "name": "rg-restraint",
            "cloud": "azure",
            "amount": 4000,
            "currency": "JPY",
            "preset": "guard",
            "emails": ["ops@example.com"],
        },
    ]
    world.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    fresh_aws.reset_call_counts()
    fresh_azure.requests.reset()
    return World(fresh_aws, fresh_azure, tmp_path, capsys, ec2, ids, costs)


def _expected_aws(world: World, since: dt.date) -> tuple[Decimal, Decimal, Decimal]:
    """(actual since, hybridctl's part, forecast for the month) from the seeded line items."""
    roots = seed_costs._root_volumes(world.ec2, sorted(world.ids.instances.values()))
    items = seed_costs.aws_line_items(world.ids, world.costs.aws, roots, TODAY)
    bridge = world.ids.instances[seed.AWS_BRIDGE_INSTANCE]
    mine = {bridge, roots[bridge], world.costs.aws[seed_costs.AWS_BRIDGE_EIP]}
    actual = sum((Decimal(i["amount"]) for i in items if dt.date.fromisoformat(i["date"]) >= since), Decimal(0))
    managed = sum(
        (Decimal(i["amount"]) for i in items if dt.date.fromisoformat(i["date"]) >= since and i["resource_id"] in mine),
        Decimal(0),
    )
    first = TODAY.replace(day=1)
    mtd = sum((Decimal(i["amount"]) for i in items if dt.date.fromisoformat(i["date"]) >= first), Decimal(0))
    per_day = sum(Decimal(i["amount"]) for i in items if i["date"] == (TODAY - dt.timedelta(days=1)).isoformat())
    return actual, managed, mtd + per_day * (month_end(TODAY) - TODAY).days


def _az_changes(world: World) -> int:
    return sum(world.az.requests.count(method=m) for m in ("PUT", "PATCH", "DELETE"))


def _close(value: float | None, expected: Decimal) -> bool:
    return value is not None and abs(Decimal(str(value)) - expected) <= Decimal("0.02")


def test_cost_by_service_both_clouds_with_forecast_and_budgets(world: World) -> None:
    since = TODAY - dt.timedelta(days=10)
    code, doc = world.json("cost", "--since", since.isoformat())
    assert code == 0, doc
    clouds = {c["cloud"]: c for c in doc["clouds"]}
    assert set(clouds) == {"aws", "azure"}
    aws = clouds["aws"]
    actual, managed, forecast = _expected_aws(world, since)
    assert aws["currency"] == "USD"
    assert _close(aws["actual"], actual) and _close(aws["managed"], managed), aws
    assert _close(aws["forecast_month"], forecast), (aws["forecast_month"], forecast)
    services = {g["key"]: g for g in aws["groups"]}
    assert set(services) == {seed_costs.EC2, seed_costs.EBS, seed_costs.VPC}
    # hybridctl's part of EC2 compute is the bridge instance alone: one of the four instances seeded with spend.
    ec2 = services[seed_costs.EC2]
    assert ec2["managed"] > 0 and ec2["other"] > ec2["managed"]
    assert {(t["budget"], t["label"]) for t in aws["thresholds"]} >= {("hybrid-guard", "actual:100%")}
    assert next(t for t in aws["thresholds"] if t["label"] == "actual:100%")["amount"] == 30.0

    azure = clouds["azure"]
    assert azure["currency"] == "JPY"
    rows = seed_costs.azure_rows(world.az.subscription_id, world.costs.azure, TODAY)
    in_period = [r for r in rows if dt.date.fromisoformat(r["date"]) >= since]
    vm, disk = world.costs.azure[seed_costs.AZURE_BRIDGE_VM], world.costs.azure[seed_costs.AZURE_BRIDGE_DISK]
    assert azure["actual"] == sum(r["cost"] for r in in_period)
    assert azure["managed"] == sum(r["cost"] for r in in_period if r["resource_id"] in (vm, disk))
    days_left = (month_end(TODAY) - TODAY).days
    mtd = sum(r["cost"] for r in rows if dt.date.fromisoformat(r["date"]) >= TODAY.replace(day=1))
    assert azure["forecast_month"] == pytest.approx(mtd + 117 * days_left)  # 117 JPY a day seeded
    assert {g["key"] for g in azure["groups"]} == {"Virtual Machines", "Storage", "Virtual Network", "Bandwidth"}
    assert ("rg-restraint", 4000.0) in {(b["name"], b["amount"]) for b in azure["budgets"]}
    # Reads only: nothing was changed in either cloud (Cost Management queries are POSTs that change nothing).
    assert world.aws.call_count(kind="mutating") == 0
    assert _az_changes(world) == 0
    assert world.aws.call_count(service="ce", action="GetCostForecast") == (1 if days_left else 0)


def test_cost_by_resource_names_hybridctls_resources(world: World) -> None:
    code, doc = world.json("cost", "--group-by", "resource", "--since", (TODAY - dt.timedelta(days=5)).isoformat())
    assert code == 0
    clouds = {c["cloud"]: c for c in doc["clouds"]}
    aws = {g["key"]: g for g in clouds["aws"]["groups"]}
    bridge = world.ids.instances[seed.AWS_BRIDGE_INSTANCE]
    assert aws[bridge]["managed"] == aws[bridge]["total"] > 0
    idle = world.costs.aws[seed_costs.AWS_IDLE_VOLUME]
    assert aws[idle]["managed"] == 0 and aws[idle]["other"] > 0
    azure = {g["key"]: g for g in clouds["azure"]["groups"]}
    vm = world.costs.azure[seed_costs.AZURE_BRIDGE_VM].lower()
    assert azure[vm]["managed"] == azure[vm]["total"] == 62 * 5
    assert azure[world.costs.azure[seed_costs.AZURE_IDLE_DISK].lower()]["managed"] == 0


def test_cost_by_tag(world: World) -> None:
    code, doc = world.json("cost", "--group-by", "tag", "--cloud", "aws")
    assert code == 0
    (aws,) = doc["clouds"]
    assert [g["key"] for g in aws["groups"]] == ["managed-by (untagged)"] or aws["actual"] == 0
    assert sum(g["total"] for g in aws["groups"]) == pytest.approx(aws["actual"], abs=0.02)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--group-by", "region"), "--group-by"),
        (("--since", (TODAY + dt.timedelta(days=3)).isoformat()), "--since"),
        (("--since", "yesterday"), "--since"),
        (("--cloud", "gcp"), "--cloud"),
    ],
)
def test_cost_bad_input_touches_nothing(world: World, args: tuple[str, ...], field: str) -> None:
    code, _out, err = world.run("cost", "-i", str(world.inventory), *args)
    assert code == 2
    assert field in err and "fix:" in err
    assert world.aws.call_count() == 0
    assert world.az.requests.count() == 0


def test_cost_without_cost_explorer_access_names_the_permission(world: World) -> None:
    world.aws.inject_fault("ce", "GetCostAndUsage", code="AccessDeniedException", status=400)
    code, _out, err = world.run("cost", "-i", str(world.inventory), "--cloud", "aws")
    assert code == 1
    assert "ce:GetCostAndUsage" in err and "AccessDeniedException" in err
    assert world.aws.call_count(kind="mutating") == 0


# -- leaks -------------------------------------------------------------------------------------------


def _more_aws_leaks(world: World) -> dict[str, str]:
    """A NAT gateway and a load balancer with and without anything behind them, an old and a new snapshot."""
    ec2 = world.ec2
    subnets = list(world.ids.subnet_ids.values())
    out: dict[str, str] = {}
    for name, routed in (("idle-nat", False), ("busy-nat", True)):
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=eip)["NatGateway"]["NatGatewayId"]
        out[name] = nat
        if routed:
            ec2.create_route(
                RouteTableId=world.ids.route_table_id, DestinationCidrBlock="10.99.0.0/16", NatGatewayId=nat
            )
    elbv2 = boto_client(world.aws, "elbv2", region=seed.AWS_REGION)
    for name, with_target in (("idle-alb", False), ("busy-alb", True)):
        lb = elbv2.create_load_balancer(Name=name, Subnets=subnets[:2], Type="application")["LoadBalancers"][0]
        group = elbv2.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=world.ids.vpc_id)
        tg = group["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
        )
        if with_target:
            elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": world.ids.instances["aws-h20"]}])
        out[name] = lb["LoadBalancerArn"]
    volume = world.costs.aws[seed_costs.AWS_IDLE_VOLUME]
    for name, age in (("old-snap", 400), ("new-snap", 1)):
        snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        with world.aws.lock:  # AWS sets StartTime; the emulator's clock is the only way to age one
            backend = world.aws.ec2_backend(seed.AWS_REGION)
            backend.snapshots[snap].start_time = dt.datetime.now(dt.UTC) - dt.timedelta(days=age)
        out[name] = snap
    return out


def test_leaks_finds_every_kind_and_nothing_in_use(world: World) -> None:
    extra = _more_aws_leaks(world)
    world.aws.reset_call_counts()
    code, doc = world.json("leaks")
    assert code == 0
    found = {(leak["cloud"], leak["kind"], leak["id"]) for leak in doc["leaks"]}
    aws, az = world.costs.aws, world.costs.azure
    assert found == {
        ("aws", "elastic-ip", aws[seed_costs.AWS_IDLE_EIP]),
        ("aws", "volume", aws[seed_costs.AWS_IDLE_VOLUME]),
        ("aws", "stopped-instance", aws[seed_costs.AWS_STOPPED]),
        ("aws", "nat-gateway", extra["idle-nat"]),
        ("aws", "load-balancer", extra["idle-alb"]),
        ("aws", "snapshot", extra["old-snap"]),
        ("azure", "public-ip", az[seed_costs.AZURE_IDLE_IP]),
        ("azure", "disk", az[seed_costs.AZURE_IDLE_DISK]),
    }
    for leak in doc["leaks"]:
        assert leak["monthly_cost"] > 0 and leak["why"] and leak["price_source"]
        assert leak["remove"].startswith(("aws ec2 ", "aws elbv2 ", "az "))
        assert leak["id"] in leak["remove"] or leak["name"] in leak["remove"]
    eip = next(leak for leak in doc["leaks"] if leak["kind"] == "elastic-ip")
    assert eip["monthly_cost"] == 3.65  # 0.005 USD an hour, 730 hours
    assert {leak["price_source"].split(";")[0] for leak in doc["leaks"] if leak["cloud"] == "aws"} == {
        "AWS Price List API (on-demand, USD)"
    }
    assert world.aws.call_count(service="pricing", action="GetProducts") >= 5
    assert world.aws.call_count(kind="mutating") == 0


def test_leaks_without_price_list_access_use_the_dated_table(world: World) -> None:
    from hybridctl.features.cost import prices

    world.aws.inject_fault("pricing", "GetProducts", code="AccessDeniedException", status=400)
    code, doc = world.json("leaks", "--cloud", "aws")
    assert code == 0 and len(doc["leaks"]) == 3
    for leak in doc["leaks"]:
        assert prices.AS_OF in leak["price_source"] and "AccessDeniedException" in leak["price_source"]
    assert world.aws.call_count(service="pricing") == 1  # the first refusal switches the run to the table


def test_leaks_delete_removes_only_the_named_then_clean(world: World) -> None:
    idle_volume = world.costs.aws[seed_costs.AWS_IDLE_VOLUME]
    code, doc = world.json("leaks", "--delete", seed_costs.AWS_IDLE_VOLUME, "--yes")
    assert code == 0
    assert [r["id"] for r in doc["removed"]] == [idle_volume]
    volumes = {v["VolumeId"] for v in world.ec2.describe_volumes()["Volumes"]}
    assert idle_volume not in volumes
    assert world.costs.aws[seed_costs.AWS_IDLE_EIP] in {
        a["AllocationId"] for a in world.ec2.describe_addresses()["Addresses"]
    }
    assert world.aws.call_count(kind="mutating") == 1
    assert len(doc["leaks"]) == 4  # the other four seeded leaks are still listed

    names = [leak["name"] or leak["id"] for leak in doc["leaks"]]
    code, doc = world.json("leaks", *[a for n in names for a in ("--delete", n)], "--yes")
    assert code == 0 and len(doc["removed"]) == 4
    code, doc = world.json("leaks")
    assert code == 0 and doc["leaks"] == []
    # What is in use is still there: the bridge's address and the bridge VM's disk.
    assert world.costs.aws[seed_costs.AWS_BRIDGE_EIP] in {
        a["AllocationId"] for a in world.ec2.describe_addresses()["Addresses"]
    }
    assert world.az.store.get(world.costs.azure[seed_costs.AZURE_BRIDGE_DISK]) is not None


def test_leaks_delete_refuses_what_it_cannot_show_unused(world: World) -> None:
    bridge_eip = world.costs.aws[seed_costs.AWS_BRIDGE_EIP]
    for args in (("--delete", bridge_eip, "--yes"), ("--delete", seed_costs.AWS_IDLE_EIP)):
        code, _out, err = world.run("leaks", "-i", str(world.inventory), *args)
        assert code == 2 and "--delete" in err, err
    assert world.aws.call_count(kind="mutating") == 0
    assert _az_changes(world) == 0


def test_down_leftovers_list_what_hybridctl_created_that_still_bills(world: World) -> None:
    from hybridctl.cli.cost import billing_leftovers
    from hybridctl.cli.environment import Environment
    from hybridctl.features.vip.endpoint import ENDPOINT_NAME

    subnet = world.ids.subnet_ids["Hybrid-Subnet"]
    endpoint = world.ec2.create_vpc_endpoint(
        VpcId=world.ids.vpc_id,
        ServiceName=f"com.amazonaws.{seed.AWS_REGION}.ec2",
        VpcEndpointType="Interface",
        PrivateDnsEnabled=False,
        SubnetIds=[subnet],
        TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": [{"Key": "Name", "Value": ENDPOINT_NAME}]}],
    )["VpcEndpoint"]["VpcEndpointId"]
    tagged = world.ec2.create_volume(
        AvailabilityZone=seed.AWS_REGION + "a",
        Size=10,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "managed-by", "Value": "hybridctl"}]}],
    )["VolumeId"]
    world.aws.reset_call_counts()
    found = billing_leftovers(Environment(), world.inventory, table=False)["billing_leftovers"]
    assert isinstance(found, list)
    assert {(leak["kind"], leak["id"]) for leak in found} == {("vpc-endpoint", endpoint), ("volume", tagged)}
    assert all(leak["managed"] and leak["monthly_cost"] > 0 for leak in found)
    assert world.aws.call_count(kind="mutating") == 0
