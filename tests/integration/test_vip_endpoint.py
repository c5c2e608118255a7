"""`endpoint ensure` against the AWS emulator: builds reference section 4's private API path, idempotently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.inventory.vips import Vip
from hybridctl.features.vip import endpoint
from hybridctl.features.vip.aws import AwsApi
from hybridctl.features.vip.checks import Status
from hybridctl_lab import vip_scenario as scenario
from tests.support.emulators import REGION, vip_api, write_vip_inventory

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_aws")]
SERVICE = f"com.amazonaws.{REGION}.ec2"


@pytest.fixture
def setup(tmp_path: Path, aws_emulator: Any) -> tuple[Path, AwsApi, Vip]:
    path = write_vip_inventory(tmp_path, aws_emulator)
    return path, vip_api(aws_emulator, tmp_path), load_inventory(path).inventory.vips[0]


def _endpoints(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
    return ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [SERVICE]}]
    )["VpcEndpoints"]


def test_ensure_builds_the_private_path_then_changes_nothing(
    aws_emulator: Any, ec2: Any, setup: tuple[Path, AwsApi, Vip]
) -> None:
    _, api, vip = setup
    built = scenario.build(ec2)
    before = endpoint.endpoint_checks(endpoint.read_state(api, [vip]))
    assert [(c.id, c.status) for c in before] == [("endpoint", Status.warn)]

    result = endpoint.ensure(api, [vip])
    assert result.vpc_id == built.vpc_id and result.endpoint_id.startswith("vpce-")
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        key = attribute[0].upper() + attribute[1:]
        assert ec2.describe_vpc_attribute(VpcId=built.vpc_id, Attribute=attribute)[key]["Value"] is True
    (vpce,) = _endpoints(ec2, built.vpc_id)
    assert vpce["VpcEndpointType"] == "Interface" and vpce["PrivateDnsEnabled"] is True
    assert set(vpce["SubnetIds"]) == {built.subnets["Subnet-2a"], built.subnets["Subnet-2c"]}
    assert [g["GroupId"] for g in vpce["Groups"]] == [result.security_group_id]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [result.security_group_id]}])[
        "SecurityGroupRules"
    ]
    ingress = [(r["IpProtocol"], r["FromPort"], r["ToPort"], r["CidrIpv4"]) for r in rules if not r["IsEgress"]]
    assert ingress == [("tcp", 443, 443, "10.0.0.0/16")]
    assert f"ec2.{REGION}.amazonaws.com" in result.dns_names

    after = endpoint.endpoint_checks(endpoint.read_state(api, [vip]))
    assert {c.id: c.status for c in after} == {
        "endpoint": Status.ok,
        "vpc-enableDnsSupport": Status.ok,
        "vpc-enableDnsHostnames": Status.ok,
        "endpoint-private-dns": Status.ok,
        "endpoint-subnets": Status.ok,
        "endpoint-https": Status.ok,
    }
    aws_emulator.reset_call_counts()
    again = endpoint.ensure(api, [vip])
    assert again.changes == [] and again.endpoint_id == result.endpoint_id
    assert aws_emulator.call_count(kind="mutating") == 0


def test_ensure_completes_a_half_built_endpoint(ec2: Any, setup: tuple[Path, AwsApi, Vip]) -> None:
    _, api, vip = setup
    built = scenario.build(ec2)
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
        ec2.modify_vpc_attribute(VpcId=built.vpc_id, **{attribute: {"Value": True}})
    # someone created it in one node subnet, with the default group and no private DNS
    vpce = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=built.vpc_id,
        ServiceName=SERVICE,
        SubnetIds=[built.subnets["Subnet-2a"]],
        PrivateDnsEnabled=False,
    )["VpcEndpoint"]
    checks = {c.id: c.status for c in endpoint.endpoint_checks(endpoint.read_state(api, [vip]))}
    assert checks["endpoint-private-dns"] is Status.fail
    assert checks["endpoint-subnets"] is Status.fail
    assert checks["endpoint-https"] is Status.fail
    result = endpoint.ensure(api, [vip])
    assert result.endpoint_id == vpce["VpcEndpointId"]
    (changed,) = _endpoints(ec2, built.vpc_id)
    assert built.subnets["Subnet-2c"] in changed["SubnetIds"]
    assert result.security_group_id in {g["GroupId"] for g in changed["Groups"]}
    # The emulator (moto 5.2.1) ignores ModifyVpcEndpoint's PrivateDnsEnabled, so check that it was asked.
    assert "PrivateDnsEnabled" in result.changes[-1]


def test_cli_endpoint_ensure_and_status(ec2: Any, setup: tuple[Path, AwsApi, Vip], capsys: Any) -> None:
    from hybridctl.cli.main import main

    path, _, _ = setup
    scenario.build(ec2)
    with pytest.raises(SystemExit) as code:
        main(["endpoint", "status", "-i", str(path), "-o", "json"])
    assert code.value.code == 0  # only a warning: the endpoint is optional
    capsys.readouterr()
    with pytest.raises(SystemExit) as code:
        main(["endpoint", "ensure", "-i", str(path), "-o", "json"])
    assert code.value.code in (0, None)
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["endpoints"][0]["endpoint_id"].startswith("vpce-")
    with pytest.raises(SystemExit) as code:
        main(["endpoint", "status", "-i", str(path), "-o", "json"])
    assert code.value.code == 0
    assert {c["status"] for c in yaml.safe_load(capsys.readouterr().out)["checks"]} == {"ok"}
