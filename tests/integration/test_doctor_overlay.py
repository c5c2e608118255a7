"""`hybridctl doctor` for the overlay against the emulators, seeded as the lab seeds them.

The lab's inventory resolves cleanly; each way to break what `up` relies on fails its own named
check: a route table that is gone, a bridge ENI in the wrong subnet, a denied IAM action, Azure
permissions without the network writes, a route table over its quota. Hosts are checked in
tests/integration/test_doctor_hosts.py (real sshd) and on the lab (tests/e2e/test_doctor_lab.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.core.secrets import SecretStore
from hybridctl.features import preflight
from hybridctl.features.vip import doctor, iam
from hybridctl.features.vip.checks import Check, Status
from hybridctl_lab.azure_emulator.authorization import block
from tests.support.emulators import boto_client, lab_inventory_on, seed_lab_clouds

pytestmark = [pytest.mark.integration]

Run = Callable[..., list[Check]]


@pytest.fixture
def sections(fresh_aws: Any, fresh_azure: Any, tmp_path: Path) -> dict[str, Any]:
    return seed_lab_clouds(fresh_aws, fresh_azure, tmp_path)


@pytest.fixture
def run_doctor(sections: dict[str, Any], tmp_path: Path) -> Run:
    """The overlay checks (clouds only) on the lab inventory, after ``edit`` changes it."""

    def run(edit: Callable[[dict[str, Any]], None] | None = None, **aws: Any) -> list[Check]:
        document = lab_inventory_on(sections)
        document["aws"] = document["aws"] | aws
        if edit is not None:
            edit(document)
        path = tmp_path / "inventory.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        loaded = load_inventory(path)
        store = SecretStore.for_inventory(loaded.inventory.name, loaded.inventory.secrets.store)
        return preflight.run(loaded.inventory, plan_loaded(loaded), store, timeout=20, hosts=False)

    return run


def failed(checks: list[Check]) -> dict[tuple[str, str], Check]:
    return {(c.id, c.subject): c for c in checks if c.status is Status.fail}


def test_the_seeded_lab_resolves(run_doctor: Run) -> None:
    checks = run_doctor()
    assert all(c.status is Status.ok for c in checks), [c for c in checks if c.status is not Status.ok]
    ids = {c.id for c in checks}
    assert {
        "aws-vpc",
        "aws-subnet",
        "aws-route-table",
        "aws-eni",
        "aws-eni-placement",
        "aws-security-group",
        "azure-vnet",
        "azure-subnet",
        "azure-nic",
        "azure-nic-placement",
        "azure-nsg",
        "azure-route-table",
        "azure-permissions",
        "route-quota",
    } <= ids
    quota = next(c for c in checks if c.id == "route-quota" and c.subject == "site aws: route table Hybrid-RT")
    # Hybrid-RT holds the IGW's 0.0.0.0/0 (foreign); the plan adds home's and Azure's networks.
    assert quota.message == "1 existing + 3 planned of 500 routes"


def test_a_missing_route_table_fails_by_name(run_doctor: Run, fresh_aws: Any) -> None:
    ec2 = boto_client(fresh_aws, "ec2")
    table = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": ["Hybrid-RT"]}])["RouteTables"][0]
    for association in table["Associations"]:
        ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
    ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    bad = failed(run_doctor())
    check = bad[("aws-route-table", "site aws: route table Hybrid-RT")]
    assert "no route table 'Hybrid-RT'" in check.message and "create: true" in check.fix
    assert len(bad) == 1, bad


def test_an_eni_in_the_wrong_subnet_fails_placement(run_doctor: Run, fresh_aws: Any) -> None:
    ec2 = boto_client(fresh_aws, "ec2")
    dammy = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["Hybrid-Subnet-Dammy"]}])["Subnets"][0]
    ec2.create_network_interface(
        SubnetId=dammy["SubnetId"],
        PrivateIpAddress="192.168.21.100",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": "Name", "Value": "misplaced-eni"}]}],
    )

    def point_at_it(document: dict[str, Any]) -> None:
        document["sites"][1]["gateway"]["eni"] = "misplaced-eni"

    bad = failed(run_doctor(point_at_it))
    check = bad[("aws-eni-placement", "site aws: gateway aws-bridge")]
    assert "is in Hybrid-Subnet-Dammy, not in Hybrid-Subnet" in check.message
    assert "not private_ip 192.168.20.100" in check.message
    assert set(bad) == {("aws-eni-placement", "site aws: gateway aws-bridge")}


def test_a_denied_iam_action_fails_the_overlay_permissions(
    sections: dict[str, Any], fresh_aws: Any, tmp_path: Path
) -> None:
    iam_client = boto_client(fresh_aws, "iam")
    iam_client.create_user(UserName="operator")
    key = iam_client.create_access_key(UserName="operator")["AccessKey"]
    credentials = tmp_path / "operator-credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {key['AccessKeyId']}\naws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    document = lab_inventory_on(sections)
    document["aws"]["credentials_file"] = str(credentials)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    inventory = load_inventory(path).inventory
    policy = iam.policy(inventory, "operator")
    # Everything `iam-policy` says, but ec2:CreateRoute.
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        statement["Action"] = [a for a in actions if a != "ec2:CreateRoute"]
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"]]
    iam_client.put_user_policy(UserName="operator", PolicyName="ops", PolicyDocument=json.dumps(policy))
    report = doctor.run(inventory, bound=20)
    check = next(c for c in report.checks if c.id == "iam-overlay")
    assert check.status is Status.fail and "user/operator" in check.message
    assert [d.split(" on ")[0] for d in check.details] == ["ec2:CreateRoute"]
    assert "iam-policy" in check.fix


def test_azure_permissions_without_network_writes_fail(run_doctor: Run, fresh_azure: Any) -> None:
    fresh_azure.arm.permissions.set([block(["Microsoft.Network/*/read"])], "hybrid-rg")
    bad = failed(run_doctor())
    check = bad[("azure-permissions", "azure resource group hybrid-rg")]
    assert "Microsoft.Network/routeTables/routes/write" in check.details
    assert "Microsoft.Network/virtualNetworks/read" not in check.details
    # A role that allows the writes but takes route deletion away again (notActions).
    fresh_azure.arm.permissions.set(
        [block(["Microsoft.Network/*"], ["Microsoft.Network/routeTables/routes/delete"])], "hybrid-rg"
    )
    check = failed(run_doctor())[("azure-permissions", "azure resource group hybrid-rg")]
    assert check.details == ("Microsoft.Network/routeTables/routes/delete",)


def test_a_route_table_over_its_quota_fails(run_doctor: Run) -> None:
    def small_quota(document: dict[str, Any]) -> None:
        document["sites"][1]["route_limit"] = 3

    bad = failed(run_doctor(small_quota))
    check = bad[("route-quota", "site aws: route table Hybrid-RT")]
    assert "1 existing + 3 planned routes = 4, over the AWS limit of 3" in check.message
