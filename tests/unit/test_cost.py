"""Pure logic of `hybridctl cost` / `leaks`: input checks, parsers on captured answers, the managed split, rules."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from hybridctl.core.errors import InputError
from hybridctl.core.inventory.budgets import budget_from_mapping
from hybridctl.features.cost import parse, prices
from hybridctl.features.cost.leaks import AwsScan, aws_leaks, azure_leaks, select
from tests.conftest import FIXTURES

TODAY = dt.date(2026, 12, 10)
CAPTURED = FIXTURES / "cost"


def _load(name: str) -> dict[str, Any]:
    return json.loads((CAPTURED / name).read_text())


# -- input ----------------------------------------------------------------------------------------------


def test_since_defaults_to_the_first_of_the_month() -> None:
    assert parse.check_request(None, "service", TODAY) == dt.date(2026, 12, 1)
    assert parse.check_request("2026-11-20", "resource", TODAY) == dt.date(2026, 11, 20)


@pytest.mark.parametrize(
    ("since", "group_by", "fields"),
    [
        ("2026-12-11", "service", ["--since"]),
        ("12/01/2026", "service", ["--since"]),
        ("2024-01-01", "service", ["--since"]),
        (None, "region", ["--group-by"]),
        ("2027-01-01", "account", ["--group-by", "--since"]),
    ],
)
def test_bad_input_is_reported_all_at_once(since: str | None, group_by: str, fields: list[str]) -> None:
    with pytest.raises(InputError) as caught:
        parse.check_request(since, group_by, TODAY)
    assert sorted(p.field for p in caught.value.problems) == sorted(fields)
    assert all(p.fix for p in caught.value.problems)


def test_month_end() -> None:
    assert parse.month_end(dt.date(2026, 2, 3)) == dt.date(2026, 2, 28)
    assert parse.month_end(dt.date(2028, 2, 29)) == dt.date(2028, 2, 29)
    assert parse.month_end(dt.date(2026, 12, 31)) == dt.date(2026, 12, 31)
    assert parse.aws_forecast_params(dt.date(2026, 12, 31)) is None
    assert parse.azure_forecast_body(dt.date(2026, 12, 31)) is None
    assert parse.aws_forecast_params(TODAY)["TimePeriod"] == {"Start": "2026-12-11", "End": "2027-01-01"}


# -- parsers on captured answers ---------------------------------------------------------------------------


def test_aws_usage_by_service_and_by_resource() -> None:
    totals, unit = parse.parse_aws_usage([_load("aws-usage-service.json")])
    assert unit == "USD"
    assert {r.service for r in totals} == {"Amazon Elastic Compute Cloud - Compute", "Amazon Virtual Private Cloud"}
    by_day = {r.day for r in totals}
    assert min(by_day) == dt.date(2026, 12, 7) and max(by_day) == dt.date(2026, 12, 9)  # nothing seeded today
    resources, _ = parse.parse_aws_usage([_load("aws-usage-resources.json")])
    assert {r.resource for r in resources} == {"i-0bridge", "i-0other", "eipalloc-0idle"}
    tagged, _ = parse.parse_aws_usage([_load("aws-usage-tag.json")])
    assert {r.tag for r in tagged} == {"hybridctl", ""}
    assert parse.parse_aws_forecast(_load("aws-forecast.json")) == Decimal("0.7728") * 21


def test_azure_query_and_forecast() -> None:
    rows, currency = parse.parse_azure_rows([_load("azure-query.json")])
    assert currency == "JPY"
    assert {r.service for r in rows} == {"Virtual Machines", "Storage"}
    assert all(r.resource.startswith("/subscriptions/") for r in rows)
    assert {r.day for r in rows} == {dt.date(2026, 12, d) for d in (8, 9)}
    daily, fcur = parse.parse_azure_forecast(_load("azure-forecast.json"))
    assert fcur == "JPY"
    assert sorted(daily) == [dt.date(2026, 12, d) for d in range(11, 32)]
    assert set(daily.values()) == {Decimal("76.0")}


def test_summarize_splits_managed_by_resource() -> None:
    totals, _ = parse.parse_aws_usage([_load("aws-usage-service.json")])
    resources, _ = parse.parse_aws_usage([_load("aws-usage-resources.json")])
    report = parse.summarize(
        "aws",
        "account",
        "USD",
        dt.date(2026, 12, 7),
        TODAY,
        "service",
        totals=totals,
        resources=resources,
        managed_ids={"i-0bridge"},
        forecast_rest=Decimal(10),
    )
    assert report.actual == Decimal("0.7728") * 3
    assert report.managed == Decimal("0.3264") * 3
    ec2 = next(g for g in report.groups if g.key.startswith("Amazon Elastic"))
    assert ec2.managed == Decimal("0.3264") * 3 and ec2.other == Decimal("0.3264") * 3
    assert report.month_to_date == report.actual
    assert report.forecast == report.actual + 10
    by_resource = parse.summarize(
        "aws",
        "account",
        "USD",
        dt.date(2026, 12, 7),
        TODAY,
        "resource",
        totals=totals,
        resources=resources,
        managed_ids={parse.resource_key("arn:aws:ec2:r:1:instance/i-0bridge")},
    )
    assert {g.key: g.managed > 0 for g in by_resource.groups} == {
        "i-0bridge": True,
        "i-0other": False,
        "eipalloc-0idle": False,
    }


def test_thresholds_on_the_same_scale() -> None:
    guard = budget_from_mapping({"name": "g", "cloud": "both", "amount": 40, "preset": "guard", "emails": ["a@b.cd"]})
    jpy = budget_from_mapping(
        {"name": "j", "cloud": "azure", "amount": 4000, "currency": "JPY", "preset": "guard", "emails": ["a@b.cd"]}
    )
    amounts, marks = parse.thresholds_for("aws", [guard, jpy], "USD")
    assert amounts == {"g": Decimal(40)}
    assert {(t.kind, t.amount) for t in marks} == {
        ("actual", Decimal(10)),
        ("actual", Decimal(40)),
        ("forecast", Decimal(40)),
    }
    amounts, marks = parse.thresholds_for("azure", [guard, jpy], "JPY")
    assert amounts == {"j": Decimal(4000)}  # the USD budget is not on the JPY scale
    assert min(t.amount for t in marks) == Decimal(1000)


# -- leak rules --------------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 12, 10, 12, tzinfo=dt.UTC)


def _scan() -> AwsScan:
    return AwsScan(
        "ap-northeast-1",
        addresses=[
            {"AllocationId": "eipalloc-idle", "PublicIp": "198.51.100.7"},
            {
                "AllocationId": "eipalloc-used",
                "PublicIp": "198.51.100.8",
                "AssociationId": "eipassoc-1",
                "NetworkInterfaceId": "eni-1",
            },
        ],
        volumes=[
            {"VolumeId": "vol-idle", "State": "available", "Size": 20, "VolumeType": "gp3"},
            {"VolumeId": "vol-root", "State": "in-use", "Size": 8, "VolumeType": "gp3"},
            {"VolumeId": "vol-bridge", "State": "in-use", "Size": 8, "VolumeType": "gp2"},
        ],
        instances=[
            {
                "InstanceId": "i-stopped",
                "State": {"Name": "stopped"},
                "BlockDeviceMappings": [{"Ebs": {"VolumeId": "vol-root"}}],
            },
            {
                "InstanceId": "i-bridge",
                "State": {"Name": "stopped"},
                "BlockDeviceMappings": [{"Ebs": {"VolumeId": "vol-bridge"}}],
            },
            {"InstanceId": "i-running", "State": {"Name": "running"}, "BlockDeviceMappings": []},
        ],
        nat_gateways=[
            {"NatGatewayId": "nat-idle", "State": "available", "VpcId": "vpc-1"},
            {"NatGatewayId": "nat-used", "State": "available", "VpcId": "vpc-1"},
            {"NatGatewayId": "nat-gone", "State": "deleted", "VpcId": "vpc-1"},
        ],
        route_tables=[{"Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-used"}]}],
        load_balancers=[
            {"LoadBalancerArn": "arn:lb/idle", "LoadBalancerName": "idle", "Type": "application"},
            {"LoadBalancerArn": "arn:lb/used", "LoadBalancerName": "used", "Type": "network"},
        ],
        target_groups={
            "arn:lb/idle": [{"TargetGroupArn": "arn:tg/1"}],
            "arn:lb/used": [{"TargetGroupArn": "arn:tg/2"}],
        },
        targets={"arn:tg/1": [], "arn:tg/2": [{"Target": {"Id": "i-running"}}]},
        snapshots=[
            {"SnapshotId": "snap-old", "State": "completed", "VolumeSize": 8, "StartTime": "2025-01-01T00:00:00Z"},
            {"SnapshotId": "snap-new", "State": "completed", "VolumeSize": 8, "StartTime": "2026-12-01T00:00:00Z"},
            {"SnapshotId": "snap-ami", "State": "completed", "VolumeSize": 8, "StartTime": "2025-01-01T00:00:00Z"},
        ],
        images=[{"BlockDeviceMappings": [{"Ebs": {"SnapshotId": "snap-ami"}}]}],
        declared_instances={"i-bridge"},
    )


def test_aws_rules_list_only_what_is_unused() -> None:
    found = {(leak.kind, leak.id) for leak in aws_leaks(_scan(), now=NOW, snapshot_days=90)}
    assert found == {
        ("elastic-ip", "eipalloc-idle"),
        ("volume", "vol-idle"),
        ("stopped-instance", "i-stopped"),
        ("nat-gateway", "nat-idle"),
        ("load-balancer", "arn:lb/idle"),
        ("snapshot", "snap-old"),
    }


def test_aws_costs_come_from_the_dated_table() -> None:
    leaks = {leak.kind: leak for leak in aws_leaks(_scan(), now=NOW, snapshot_days=90)}
    assert leaks["elastic-ip"].monthly == Decimal("3.65")
    assert leaks["volume"].monthly == Decimal("1.92")  # 20 GiB gp3 at 0.096 in Tokyo
    assert leaks["nat-gateway"].monthly == Decimal("45.26")
    assert prices.AS_OF in leaks["volume"].price_source
    assert leaks["volume"].remove == "aws ec2 delete-volume --region ap-northeast-1 --volume-id vol-idle"
    other_region = aws_leaks(AwsScan("sa-east-1", volumes=_scan().volumes), now=NOW, snapshot_days=90)
    assert "not in the table" in other_region[0].price_source


def test_azure_rules() -> None:
    ips = _load("azure-public-ips.json")["value"]
    disks = _load("azure-disks.json")["value"]
    attached = dict(ips[0], name="used", id=ips[0]["id"] + "-used")
    attached["properties"] = dict(ips[0]["properties"], ipConfiguration={"id": "/x/ipConfigurations/ipconfig1"})
    found = azure_leaks("hybrid-rg", [*ips, attached], disks)
    assert {(leak.kind, leak.name) for leak in found} == {("public-ip", "lab-idle-pip"), ("disk", "lab-idle-disk")}
    disk = next(leak for leak in found if leak.kind == "disk")
    assert disk.remove == "az disk delete --resource-group hybrid-rg --name lab-idle-disk --yes"
    assert disk.monthly == Decimal("2.88")  # 32 GiB StandardSSD in japaneast at 0.09


def test_select_by_id_name_or_arm_name() -> None:
    leaks = aws_leaks(_scan(), now=NOW, snapshot_days=90)
    chosen, unknown = select(leaks, ["vol-idle", "IDLE", "nope"])
    assert [leak.id for leak in chosen] == ["vol-idle", "arn:lb/idle"]
    assert unknown == ["nope"]


# -- the plot ----------------------------------------------------------------------------------------------


def test_plot_draws_spend_forecast_and_budget_lines(tmp_path: Any) -> None:
    import importlib.util

    from tests.conftest import require

    require(importlib.util.find_spec("matplotlib") is not None, "matplotlib (pip install -e '.[plot]')")
    from hybridctl.features.cost.plot import check_plot_target, plot_spend

    totals, _ = parse.parse_aws_usage([_load("aws-usage-service.json")])
    report = parse.summarize(
        "aws",
        "account",
        "USD",
        dt.date(2026, 12, 1),
        TODAY,
        "service",
        totals=totals,
        resources=[],
        forecast_rest=Decimal(20),
        forecast_daily={dt.date(2026, 12, d): Decimal(1) for d in range(11, 32)},
    )
    guard = budget_from_mapping({"name": "g", "cloud": "aws", "amount": 30, "preset": "guard", "emails": ["a@b.cd"]})
    report.budget_amounts, report.thresholds = parse.thresholds_for("aws", [guard], "USD")
    for name, magic in (("spend.png", b"\x89PNG"), ("spend.svg", b"<?xml")):
        target = tmp_path / name
        check_plot_target(target)
        plot_spend([report], target)
        assert target.read_bytes().startswith(magic)
    svg = (tmp_path / "spend.svg").read_text()
    assert "g actual:100%, forecast:100%" in svg and "g actual:25%" in svg
    with pytest.raises(InputError):
        check_plot_target(tmp_path / "spend.pdf")


def test_price_list_answer_and_fallback() -> None:
    from hybridctl.features.cost.pricelist import PriceBook, parse_price

    answer = _load("aws-pricing-nat.json")
    assert parse_price(answer["PriceList"], "Hrs") == Decimal("0.062")
    assert parse_price(answer["PriceList"], "GB-Mo") is None
    assert parse_price(["not json"], "Hrs") is None
    value, source = PriceBook(None).monthly("nat_gateway_hour", "ap-northeast-1")
    assert value == Decimal("45.26") and prices.AS_OF in source and "no AWS client" in source
