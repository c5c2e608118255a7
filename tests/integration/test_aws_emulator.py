"""The AWS emulator over HTTP with real boto3 clients (dummy credentials, ap-northeast-1).

One emulator serves the module (port 0); every test starts from empty state because moto's
state is process-wide. No test patches boto3: requests go over loopback to the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import require
from tests.support.emulators import ACCOUNT, REGION, boto_client, have_moto_server, running_aws_emulator

# Each test starts from empty state: one emulator serves the module, moto's state is per process.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_aws")]


def client(emulator: Any, service: str, **config: Any) -> Any:
    # total_max_attempts counts the first try: 1 = no retries, so errors reach the test.
    return boto_client(emulator, service, **({"retries": {"mode": "standard", "total_max_attempts": 1}} | config))


def admin(emulator: Any, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{emulator.endpoint_url}/_emulator{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def error_code(exc_info: Any) -> str:
    return str(exc_info.value.response["Error"]["Code"])


# --------------------------------------------------------------------------- fixtures of a VPC


def hybrid_vpc(ec2: Any) -> dict[str, str]:
    """Reference scenario 1's AWS side: VPC, two subnets, a route table, bridge ENI + instance."""
    vpc = ec2.create_vpc(CidrBlock="192.168.20.0/22")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="192.168.20.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    dummy = ec2.create_subnet(VpcId=vpc, CidrBlock="192.168.21.0/24", AvailabilityZone=f"{REGION}c")["Subnet"][
        "SubnetId"
    ]
    rt = ec2.create_route_table(
        VpcId=vpc, TagSpecifications=[{"ResourceType": "route-table", "Tags": [{"Key": "Name", "Value": "Hybrid-RT"}]}]
    )["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rt, SubnetId=sub)
    eni = ec2.create_network_interface(
        SubnetId=sub,
        PrivateIpAddress="192.168.20.100",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": "Name", "Value": "bridge"}]}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    return {"vpc": vpc, "subnet": sub, "dummy": dummy, "rt": rt, "eni": eni}


# --------------------------------------------------------------------------- lifecycle


def test_port_zero_serves_and_stop_closes_the_socket() -> None:
    with running_aws_emulator() as emu:
        assert emu.port != 0
        assert emu.endpoint_url == f"http://127.0.0.1:{emu.port}"
        assert admin(emu, "GET", "/health") == {"ok": True}
        assert client(emu, "sts").get_caller_identity()["Account"] == ACCOUNT
    with pytest.raises(urllib.error.URLError):
        admin(emu, "GET", "/health")


def test_runs_as_a_module_with_a_port_argument() -> None:
    require(have_moto_server(), "moto[server]")
    import socket

    from hybridctl_lab.aws_emulator import AwsEmulator

    with socket.socket() as probe:  # a free port for the child to take
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hybridctl_lab.aws_emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"aws-emulator listening on http://127.0.0.1:{port}"
        remote = AwsEmulator("127.0.0.1", port)  # not started: only used for its endpoint_url
        vpcs = client(remote, "ec2").describe_vpcs()["Vpcs"]
        assert isinstance(vpcs, list)
    finally:
        proc.terminate()  # our own child, by PID
        assert proc.wait(timeout=20) == 0


# --------------------------------------------------------------------------- budgets


BUDGET = {
    "BudgetName": "monthly",
    "BudgetLimit": {"Amount": "4000", "Unit": "USD"},
    "TimeUnit": "MONTHLY",
    "BudgetType": "COST",
}
ACTUAL_80 = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0}
FORECAST_100 = {
    "NotificationType": "FORECASTED",
    "ComparisonOperator": "GREATER_THAN",
    "Threshold": 100.0,
    "ThresholdType": "PERCENTAGE",
}
ME = {"SubscriptionType": "EMAIL", "Address": "me@example.com"}


def test_update_budget_replaces_it_and_misses_with_not_found(aws_emulator: Any) -> None:
    budgets = client(aws_emulator, "budgets")
    budgets.create_budget(AccountId=ACCOUNT, Budget=BUDGET)
    budgets.update_budget(AccountId=ACCOUNT, NewBudget={**BUDGET, "BudgetLimit": {"Amount": "1000", "Unit": "USD"}})
    got = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="monthly")["Budget"]
    assert got["BudgetLimit"] == {"Amount": "1000", "Unit": "USD"}

    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.update_budget(AccountId=ACCOUNT, NewBudget={**BUDGET, "BudgetName": "nope"})


def test_update_budget_zeroes_calculated_spend_until_new_data_arrives(aws_emulator: Any) -> None:
    budgets = client(aws_emulator, "budgets")
    budgets.create_budget(AccountId=ACCOUNT, Budget=BUDGET)
    seeded = admin(
        aws_emulator, "POST", "/budgets/spend", {"budget_name": "monthly", "actual": "12.5", "forecasted": 40}
    )
    assert seeded["CalculatedSpend"]["ActualSpend"] == {"Amount": "12.5", "Unit": "USD"}

    def spend() -> dict[str, Any]:
        return dict(budgets.describe_budget(AccountId=ACCOUNT, BudgetName="monthly")["Budget"]["CalculatedSpend"])

    assert spend()["ActualSpend"]["Amount"] == "12.5"
    assert spend()["ForecastedSpend"]["Amount"] == "40"

    budgets.update_budget(AccountId=ACCOUNT, NewBudget={**BUDGET, "BudgetLimit": {"Amount": "5000", "Unit": "USD"}})
    assert spend() == {"ActualSpend": {"Amount": "0", "Unit": "USD"}, "ForecastedSpend": {"Amount": "0", "Unit": "USD"}}

    assert admin(aws_emulator, "POST", "/budgets/refresh", {})["refreshed"] == 1
    assert spend()["ActualSpend"]["Amount"] == "12.5"
    assert spend()["ForecastedSpend"]["Amount"] == "40"


def test_notifications_create_update_delete_with_aws_errors(aws_emulator: Any) -> None:
    budgets = client(aws_emulator, "budgets")
    budgets.create_budget(
        AccountId=ACCOUNT,
        Budget=BUDGET,
        NotificationsWithSubscribers=[{"Notification": ACTUAL_80, "Subscribers": [ME]}],
    )
    budgets.create_notification(AccountId=ACCOUNT, BudgetName="monthly", Notification=FORECAST_100, Subscribers=[ME])
    with pytest.raises(budgets.exceptions.DuplicateRecordException):
        budgets.create_notification(
            AccountId=ACCOUNT, BudgetName="monthly", Notification=FORECAST_100, Subscribers=[ME]
        )
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.create_notification(AccountId=ACCOUNT, BudgetName="nope", Notification=FORECAST_100, Subscribers=[ME])

    budgets.update_notification(
        AccountId=ACCOUNT,
        BudgetName="monthly",
        OldNotification=ACTUAL_80,
        NewNotification={**ACTUAL_80, "Threshold": 25.0},
    )
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.update_notification(
            AccountId=ACCOUNT, BudgetName="monthly", OldNotification=ACTUAL_80, NewNotification=ACTUAL_80
        )
    with pytest.raises(budgets.exceptions.DuplicateRecordException):
        budgets.update_notification(
            AccountId=ACCOUNT,
            BudgetName="monthly",
            OldNotification={**ACTUAL_80, "Threshold": 25.0},
            NewNotification=FORECAST_100,
        )
    listed = budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="monthly")["Notifications"]
    assert sorted((n["NotificationType"], n["Threshold"]) for n in listed) == [("ACTUAL", 25.0), ("FORECASTED", 100.0)]
    # the subscriber followed the updated notification
    subs = budgets.describe_subscribers_for_notification(
        AccountId=ACCOUNT, BudgetName="monthly", Notification={**ACTUAL_80, "Threshold": 25.0}
    )["Subscribers"]
    assert subs == [ME]

    budgets.delete_notification(AccountId=ACCOUNT, BudgetName="monthly", Notification=FORECAST_100)
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.delete_notification(AccountId=ACCOUNT, BudgetName="monthly", Notification=FORECAST_100)
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="nope")


def test_notification_state_follows_seeded_spend(aws_emulator: Any) -> None:
    budgets = client(aws_emulator, "budgets")
    budgets.create_budget(
        AccountId=ACCOUNT,
        Budget=BUDGET,
        NotificationsWithSubscribers=[{"Notification": ACTUAL_80, "Subscribers": [ME]}],
    )

    def state() -> str:
        notes = budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="monthly")["Notifications"]
        return str(notes[0]["NotificationState"])

    assert state() == "OK"
    aws_emulator.seed_budget_spend("monthly", "3500")  # 87.5 % of 4000 > 80 %
    assert state() == "ALARM"


def test_subscribers_create_describe_update_delete(aws_emulator: Any) -> None:
    budgets = client(aws_emulator, "budgets")
    budgets.create_budget(
        AccountId=ACCOUNT,
        Budget=BUDGET,
        NotificationsWithSubscribers=[{"Notification": ACTUAL_80, "Subscribers": [ME]}],
    )
    ops = {"SubscriptionType": "SNS", "Address": "arn:aws:sns:us-east-1:123456789012:ops"}
    kwargs = {"AccountId": ACCOUNT, "BudgetName": "monthly", "Notification": ACTUAL_80}
    budgets.create_subscriber(Subscriber=ops, **kwargs)
    with pytest.raises(budgets.exceptions.DuplicateRecordException):
        budgets.create_subscriber(Subscriber=ops, **kwargs)
    assert budgets.describe_subscribers_for_notification(**kwargs)["Subscribers"] == [ME, ops]

    you = {"SubscriptionType": "EMAIL", "Address": "you@example.com"}
    budgets.update_subscriber(OldSubscriber=ME, NewSubscriber=you, **kwargs)
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.update_subscriber(OldSubscriber=ME, NewSubscriber=you, **kwargs)
    with pytest.raises(budgets.exceptions.DuplicateRecordException):
        budgets.update_subscriber(OldSubscriber=you, NewSubscriber=ops, **kwargs)

    budgets.delete_subscriber(Subscriber=ops, **kwargs)
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.delete_subscriber(Subscriber=ops, **kwargs)
    assert budgets.describe_subscribers_for_notification(**kwargs)["Subscribers"] == [you]
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.describe_subscribers_for_notification(
            AccountId=ACCOUNT, BudgetName="monthly", Notification=FORECAST_100
        )


def test_describe_budgets_paginates(aws_emulator: Any) -> None:
    budgets = client(aws_emulator, "budgets")
    names = {f"b{i:02d}" for i in range(7)}
    for name in names:
        budgets.create_budget(AccountId=ACCOUNT, Budget={**BUDGET, "BudgetName": name})
    pages = list(
        budgets.get_paginator("describe_budgets").paginate(AccountId=ACCOUNT, PaginationConfig={"PageSize": 3})
    )
    assert [len(p["Budgets"]) for p in pages] == [3, 3, 1]
    assert {b["BudgetName"] for p in pages for b in p["Budgets"]} == names


# --------------------------------------------------------------------------- IAM


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:ReplaceRoute"], "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:Delete*", "Resource": "*"},
    ],
}


def test_simulate_principal_policy_decides_allowed_implicit_and_explicit_deny(aws_emulator: Any) -> None:
    iam = client(aws_emulator, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName="vip-failover", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="vip-failover", PolicyName="route", PolicyDocument=json.dumps(POLICY))
    results = iam.simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=["ec2:DescribeRouteTables", "ec2:ReplaceRoute", "ec2:DeleteRoute", "ec2:CreateRoute"],
    )["EvaluationResults"]
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results}
    assert decisions == {
        "ec2:DescribeRouteTables": "allowed",
        "ec2:ReplaceRoute": "allowed",
        "ec2:DeleteRoute": "explicitDeny",
        "ec2:CreateRoute": "implicitDeny",
    }
    allowed = next(r for r in results if r["EvalActionName"] == "ec2:ReplaceRoute")
    assert allowed["MatchedStatements"][0]["SourcePolicyId"] == "route"
    assert allowed["MatchedStatements"][0]["SourcePolicyType"] == "role"
    assert allowed["EvalResourceName"] == "*"


def test_simulate_principal_policy_reads_user_groups_managed_policies_and_conditions(aws_emulator: Any) -> None:
    iam = client(aws_emulator, "iam")
    managed = iam.create_policy(
        PolicyName="read-only",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    iam.create_group(GroupName="ops")
    iam.attach_group_policy(GroupName="ops", PolicyArn=managed)
    user = iam.create_user(UserName="alice")["User"]["Arn"]
    iam.add_user_to_group(GroupName="ops", UserName="alice")
    conditional = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ec2:ReplaceRoute",
                "Resource": "arn:aws:ec2:*:*:route-table/*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": "ap-northeast-1"}},
            }
        ],
    }
    iam.put_user_policy(UserName="alice", PolicyName="failover", PolicyDocument=json.dumps(conditional))
    rt_arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:route-table/rtb-1"

    def decide(action: str, resource: str, region: str | None = None) -> dict[str, Any]:
        context = (
            [{"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": [region], "ContextKeyType": "string"}]
            if region
            else []
        )
        return dict(
            iam.simulate_principal_policy(
                PolicySourceArn=user, ActionNames=[action], ResourceArns=[resource], ContextEntries=context
            )["EvaluationResults"][0]
        )

    via_group = decide("ec2:DescribeVpcs", "*")
    assert via_group["EvalDecision"] == "allowed"
    assert via_group["MatchedStatements"][0]["SourcePolicyType"] == "user-managed"
    assert decide("ec2:ReplaceRoute", rt_arn, REGION)["EvalDecision"] == "allowed"
    assert decide("ec2:ReplaceRoute", rt_arn, "us-east-1")["EvalDecision"] == "implicitDeny"
    missing = decide("ec2:ReplaceRoute", rt_arn)
    assert missing["EvalDecision"] == "implicitDeny"
    assert missing["MissingContextValues"] == ["aws:RequestedRegion"]
    # the simulator's default resource is the literal "*", which a route-table ARN pattern does not match
    assert decide("ec2:ReplaceRoute", "*", REGION)["EvalDecision"] == "implicitDeny"

    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/bob", ActionNames=["ec2:*"])


def test_simulate_custom_policy_and_permissions_boundary(aws_emulator: Any) -> None:
    iam = client(aws_emulator, "iam")
    custom = iam.simulate_custom_policy(PolicyInputList=[json.dumps(POLICY)], ActionNames=["ec2:DescribeVpcs"])
    result = custom["EvaluationResults"][0]
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"

    boundary = iam.create_policy(
        PolicyName="only-describe",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    arn = iam.create_role(RoleName="bounded", AssumeRolePolicyDocument="{}", PermissionsBoundary=boundary)["Role"][
        "Arn"
    ]
    iam.put_role_policy(RoleName="bounded", PolicyName="route", PolicyDocument=json.dumps(POLICY))
    results = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["ec2:DescribeVpcs", "ec2:ReplaceRoute"])[
        "EvaluationResults"
    ]
    by_action = {r["EvalActionName"]: r for r in results}
    assert by_action["ec2:DescribeVpcs"]["EvalDecision"] == "allowed"
    assert by_action["ec2:ReplaceRoute"]["EvalDecision"] == "implicitDeny"
    assert by_action["ec2:ReplaceRoute"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}


def test_instance_profile_association_is_described_as_associated(aws_emulator: Any) -> None:
    ec2, iam = client(aws_emulator, "ec2"), client(aws_emulator, "iam")
    ids = hybrid_vpc(ec2)
    iam.create_role(RoleName="node", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="node")
    iam.add_role_to_instance_profile(InstanceProfileName="node", RoleName="node")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=ids["subnet"])["Instances"][
        0
    ]["InstanceId"]
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "node"}, InstanceId=instance)
    assocs = ec2.describe_iam_instance_profile_associations(Filters=[{"Name": "instance-id", "Values": [instance]}])[
        "IamInstanceProfileAssociations"
    ]
    assert [(a["InstanceId"], a["State"]) for a in assocs] == [(instance, "associated")]
    assert assocs[0]["IamInstanceProfile"]["Arn"].endswith(":instance-profile/node")


# --------------------------------------------------------------------------- EC2 route tables and ENIs


def test_route_table_filters(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    other = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_route(RouteTableId=ids["rt"], DestinationCidrBlock="192.168.1.0/24", NetworkInterfaceId=ids["eni"])

    def found(name: str, value: str) -> set[str]:
        tables = ec2.describe_route_tables(Filters=[{"Name": name, "Values": [value]}])["RouteTables"]
        return {t["RouteTableId"] for t in tables}

    assert ids["rt"] in found("vpc-id", ids["vpc"])
    assert all(
        t["VpcId"] == other
        for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [other]}])["RouteTables"]
    )
    assert found("association.subnet-id", ids["subnet"]) == {ids["rt"]}
    assert found("route.destination-cidr-block", "192.168.1.0/24") == {ids["rt"]}
    assert found("route.network-interface-id", ids["eni"]) == {ids["rt"]}
    assert found("tag:Name", "Hybrid-RT") == {ids["rt"]}
    assert found("tag:Name", "Hybrid-*") == {ids["rt"]}
    assert found("route.network-interface-id", "eni-00000000000000000") == set()
    with pytest.raises(ec2.exceptions.ClientError) as bad:
        ec2.describe_route_tables(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_code(bad) == "InvalidParameterValue"


def test_create_and_replace_route_with_network_interface(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    standby = ec2.create_network_interface(SubnetId=ids["subnet"], PrivateIpAddress="192.168.20.101")[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    vip = "20.0.0.100/32"
    ec2.create_route(RouteTableId=ids["rt"], DestinationCidrBlock=vip, NetworkInterfaceId=ids["eni"])
    with pytest.raises(ec2.exceptions.ClientError) as dup:
        ec2.create_route(RouteTableId=ids["rt"], DestinationCidrBlock=vip, NetworkInterfaceId=standby)
    assert error_code(dup) == "RouteAlreadyExists"

    ec2.replace_route(RouteTableId=ids["rt"], DestinationCidrBlock=vip, NetworkInterfaceId=standby)
    routes = ec2.describe_route_tables(RouteTableIds=[ids["rt"]])["RouteTables"][0]["Routes"]
    vip_route = next(r for r in routes if r.get("DestinationCidrBlock") == vip)
    assert vip_route["NetworkInterfaceId"] == standby
    assert vip_route["State"] == "active"
    assert vip_route["Origin"] == "CreateRoute"

    foreign_vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    foreign_sub = ec2.create_subnet(VpcId=foreign_vpc, CidrBlock="10.0.10.0/24")["Subnet"]["SubnetId"]
    foreign = ec2.create_network_interface(SubnetId=foreign_sub)["NetworkInterface"]["NetworkInterfaceId"]
    with pytest.raises(ec2.exceptions.ClientError) as cross:
        ec2.replace_route(RouteTableId=ids["rt"], DestinationCidrBlock=vip, NetworkInterfaceId=foreign)
    assert error_code(cross) == "InvalidParameterValue"
    with pytest.raises(ec2.exceptions.ClientError) as missing:
        ec2.replace_route(RouteTableId=ids["rt"], DestinationCidrBlock="192.168.99.0/24", NetworkInterfaceId=standby)
    assert error_code(missing) == "InvalidParameterValue"


def test_route_to_an_instance_is_described_with_its_eni(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    instance = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=ids["subnet"], PrivateIpAddress="192.168.20.50"
    )["Instances"][0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.create_route(RouteTableId=ids["rt"], DestinationCidrBlock="192.168.30.0/24", InstanceId=instance["InstanceId"])
    routes = ec2.describe_route_tables(Filters=[{"Name": "route.instance-id", "Values": [instance["InstanceId"]]}])[
        "RouteTables"
    ][0]["Routes"]
    route = next(r for r in routes if r.get("DestinationCidrBlock") == "192.168.30.0/24")
    assert (route["InstanceId"], route["NetworkInterfaceId"], route["InstanceOwnerId"]) == (
        instance["InstanceId"],
        eni,
        ACCOUNT,
    )
    by_eni = ec2.describe_route_tables(Filters=[{"Name": "route.network-interface-id", "Values": [eni]}])
    assert [t["RouteTableId"] for t in by_eni["RouteTables"]] == [ids["rt"]]


def test_source_dest_check_on_eni_and_instance_stay_one_flag(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=ids["eni"], SourceDestCheck={"Value": False})
    attr = ec2.describe_network_interface_attribute(NetworkInterfaceId=ids["eni"], Attribute="sourceDestCheck")
    assert attr["SourceDestCheck"]["Value"] is False
    assert (
        ec2.describe_network_interfaces(NetworkInterfaceIds=[ids["eni"]])["NetworkInterfaces"][0]["SourceDestCheck"]
        is False
    )

    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=ids["subnet"])["Instances"][0]
    primary = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.modify_instance_attribute(InstanceId=instance["InstanceId"], SourceDestCheck={"Value": False})
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[primary])["NetworkInterfaces"][0]
    assert eni["SourceDestCheck"] is False
    ec2.modify_network_interface_attribute(NetworkInterfaceId=primary, SourceDestCheck={"Value": True})
    attr = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="sourceDestCheck")
    assert attr["SourceDestCheck"]["Value"] is True


def test_network_interface_filters_and_address_rules(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)

    def found(name: str, value: str) -> list[str]:
        enis = ec2.describe_network_interfaces(Filters=[{"Name": name, "Values": [value]}])["NetworkInterfaces"]
        return [e["NetworkInterfaceId"] for e in enis]

    assert found("tag:Name", "bridge") == [ids["eni"]]
    assert found("private-ip-address", "192.168.20.100") == [ids["eni"]]
    assert ids["eni"] in found("vpc-id", ids["vpc"])

    for address, code in (
        ("192.168.20.100", "InvalidIPAddress.InUse"),
        ("192.168.20.1", "InvalidParameterValue"),  # reserved for the VPC router
        ("192.168.21.10", "InvalidParameterValue"),  # not in this subnet
    ):
        with pytest.raises(ec2.exceptions.ClientError) as bad:
            ec2.create_network_interface(SubnetId=ids["subnet"], PrivateIpAddress=address)
        assert error_code(bad) == code
    auto = [
        ec2.create_network_interface(SubnetId=ids["subnet"])["NetworkInterface"]["PrivateIpAddress"] for _ in range(3)
    ]
    instance_ip = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=ids["subnet"])[
        "Instances"
    ][0]["PrivateIpAddress"]
    everything = [*auto, instance_ip, "192.168.20.100"]
    assert len(set(everything)) == len(everything)
    assert all(int(ip.rsplit(".", 1)[1]) >= 4 for ip in everything)  # .0-.3 are reserved


def test_vpc_attributes_and_interface_endpoint_for_ec2(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    sg = ec2.create_security_group(GroupName="endpoint", Description="443 from the VPC", VpcId=ids["vpc"])["GroupId"]
    service = f"com.amazonaws.{REGION}.ec2"
    kwargs = {
        "VpcId": ids["vpc"],
        "VpcEndpointType": "Interface",
        "ServiceName": service,
        "SubnetIds": [ids["subnet"], ids["dummy"]],
        "SecurityGroupIds": [sg],
        "PrivateDnsEnabled": True,
    }
    with pytest.raises(ec2.exceptions.ClientError) as no_dns:
        ec2.create_vpc_endpoint(**kwargs)
    assert error_code(no_dns) == "InvalidParameter"

    assert ec2.describe_vpc_attribute(VpcId=ids["vpc"], Attribute="enableDnsHostnames")["EnableDnsHostnames"] == {
        "Value": False
    }
    ec2.modify_vpc_attribute(VpcId=ids["vpc"], EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=ids["vpc"], EnableDnsHostnames={"Value": True})
    assert ec2.describe_vpc_attribute(VpcId=ids["vpc"], Attribute="enableDnsSupport")["EnableDnsSupport"] == {
        "Value": True
    }

    endpoint = ec2.create_vpc_endpoint(**kwargs)["VpcEndpoint"]
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["PrivateDnsEnabled"] is True
    assert [g["GroupId"] for g in endpoint["Groups"]] == [sg]
    assert f"ec2.{REGION}.amazonaws.com" in [d["DnsName"] for d in endpoint["DnsEntries"]]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=endpoint["NetworkInterfaceIds"])["NetworkInterfaces"]
    assert sorted(e["SubnetId"] for e in enis) == sorted([ids["subnet"], ids["dummy"]])
    for eni in enis:
        prefix = "192.168.20." if eni["SubnetId"] == ids["subnet"] else "192.168.21."
        assert eni["PrivateIpAddress"].startswith(prefix)
        assert [g["GroupId"] for g in eni["Groups"]] == [sg]
        assert eni["InterfaceType"] == "vpc_endpoint"

    described = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "service-name", "Values": [service]}, {"Name": "vpc-id", "Values": [ids["vpc"]]}]
    )["VpcEndpoints"]
    assert [e["VpcEndpointId"] for e in described] == [endpoint["VpcEndpointId"]]
    with pytest.raises(ec2.exceptions.ClientError) as unknown:
        ec2.create_vpc_endpoint(**{**kwargs, "ServiceName": f"com.amazonaws.{REGION}.nonexistent"})
    assert error_code(unknown) == "InvalidServiceName"


def test_security_group_rules_with_descriptions(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    sg = ec2.create_security_group(GroupName="bridge", Description="bridge host", VpcId=ids["vpc"])["GroupId"]
    created = ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "192.168.20.0/24", "Description": "own subnet"}]},
            {
                "IpProtocol": "tcp",
                "FromPort": 5555,
                "ToPort": 5555,
                "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "vpn"}],
            },
        ],
    )["SecurityGroupRules"]
    assert sorted(r["Description"] for r in created) == ["own subnet", "vpn"]

    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
    ingress = {
        (r["IpProtocol"], r["FromPort"], r["CidrIpv4"], r.get("Description")) for r in rules if not r["IsEgress"]
    }
    assert ingress == {("-1", -1, "192.168.20.0/24", "own subnet"), ("tcp", 5555, "0.0.0.0/0", "vpn")}

    with pytest.raises(ec2.exceptions.ClientError) as dup:
        ec2.authorize_security_group_ingress(
            GroupId=sg,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "192.168.20.0/22"}]},
                {"IpProtocol": "tcp", "FromPort": 5555, "ToPort": 5555, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            ],
        )
    assert error_code(dup) == "InvalidPermission.Duplicate"
    after = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
    assert not any(r.get("FromPort") == 443 for r in after)  # all or nothing, as on AWS


# --------------------------------------------------------------------------- transit gateway


def test_transit_gateway_routes_create_search_replace(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    tgw = ec2.create_transit_gateway(Description="dx")["TransitGateway"]
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    attachment = ec2.create_transit_gateway_vpc_attachment(
        TransitGatewayId=tgw["TransitGatewayId"], VpcId=ids["vpc"], SubnetIds=[ids["subnet"]]
    )["TransitGatewayVpcAttachment"]["TransitGatewayAttachmentId"]
    tables = ec2.describe_transit_gateway_route_tables(
        Filters=[{"Name": "transit-gateway-id", "Values": [tgw["TransitGatewayId"]]}]
    )["TransitGatewayRouteTables"]
    assert [t["TransitGatewayRouteTableId"] for t in tables] == [table]

    vip = "20.0.0.100/32"
    route = ec2.create_transit_gateway_route(
        DestinationCidrBlock=vip, TransitGatewayRouteTableId=table, TransitGatewayAttachmentId=attachment
    )["Route"]
    assert route["TransitGatewayAttachments"] == [
        {"ResourceId": ids["vpc"], "TransitGatewayAttachmentId": attachment, "ResourceType": "vpc"}
    ]
    with pytest.raises(ec2.exceptions.ClientError) as dup:
        ec2.create_transit_gateway_route(
            DestinationCidrBlock=vip, TransitGatewayRouteTableId=table, TransitGatewayAttachmentId=attachment
        )
    assert error_code(dup) == "RouteAlreadyExists"

    def search(name: str, value: str) -> list[tuple[str, str, str]]:
        found = ec2.search_transit_gateway_routes(
            TransitGatewayRouteTableId=table, Filters=[{"Name": name, "Values": [value]}]
        )["Routes"]
        return [(r["DestinationCidrBlock"], r["Type"], r["State"]) for r in found]

    assert search("route-search.exact-match", vip) == [(vip, "static", "active")]
    assert search("type", "propagated") == [("192.168.20.0/22", "propagated", "active")]  # default propagation
    assert sorted(search("attachment.transit-gateway-attachment-id", attachment)) == [
        ("192.168.20.0/22", "propagated", "active"),
        (vip, "static", "active"),
    ]
    assert search("route-search.longest-prefix-match", "192.168.20.7/32") == [
        ("192.168.20.0/22", "propagated", "active")
    ]

    ec2.replace_transit_gateway_route(DestinationCidrBlock=vip, TransitGatewayRouteTableId=table, Blackhole=True)
    assert search("state", "blackhole") == [(vip, "static", "blackhole")]
    ec2.replace_transit_gateway_route(
        DestinationCidrBlock=vip, TransitGatewayRouteTableId=table, TransitGatewayAttachmentId=attachment
    )
    assert search("route-search.exact-match", vip) == [(vip, "static", "active")]
    with pytest.raises(ec2.exceptions.ClientError) as missing:
        ec2.replace_transit_gateway_route(
            DestinationCidrBlock="20.0.0.200/32", TransitGatewayRouteTableId=table, Blackhole=True
        )
    assert error_code(missing) == "InvalidRoute.NotFound"
    with pytest.raises(ec2.exceptions.ClientError) as no_table:
        ec2.search_transit_gateway_routes(
            TransitGatewayRouteTableId="tgw-rtb-00000000000000000", Filters=[{"Name": "type", "Values": ["static"]}]
        )
    assert error_code(no_table) == "InvalidRouteTableID.NotFound"


# --------------------------------------------------------------------------- paginators


def test_paginators_page_by_max_results(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    for i in range(11):
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{100 + i}.0/24")
        ec2.create_route_table(VpcId=vpc)
        ec2.create_network_interface(SubnetId=sub)
        ec2.create_security_group(GroupName=f"g{i}", Description="d", VpcId=vpc)
    for operation, key, every in (
        ("describe_route_tables", "RouteTables", "RouteTableId"),
        ("describe_network_interfaces", "NetworkInterfaces", "NetworkInterfaceId"),
        ("describe_security_groups", "SecurityGroups", "GroupId"),
        ("describe_subnets", "Subnets", "SubnetId"),
    ):
        whole = getattr(ec2, operation)()[key]
        pages = list(ec2.get_paginator(operation).paginate(PaginationConfig={"PageSize": 5}))
        sizes = [len(p[key]) for p in pages]
        assert len(pages) > 1 and all(s <= 5 for s in sizes), (operation, sizes)
        assert sorted(x[every] for p in pages for x in p[key]) == sorted(x[every] for x in whole)
    with pytest.raises(ec2.exceptions.ClientError) as bad_token:
        ec2.describe_route_tables(MaxResults=5, NextToken="garbage")
    assert error_code(bad_token) == "InvalidParameterValue"


# --------------------------------------------------------------------------- middleware


def test_counts_reads_and_mutations_per_action_and_resets(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ec2.describe_vpcs()
    ec2.describe_vpcs()
    ec2.create_vpc(CidrBlock="10.2.0.0/16")
    client(aws_emulator, "budgets").describe_budgets(AccountId=ACCOUNT)
    assert aws_emulator.call_count("ec2", "DescribeVpcs") == 2
    assert aws_emulator.call_count("ec2", kind="mutating") == 1
    assert aws_emulator.call_count("budgets", "DescribeBudgets", kind="read") == 1

    over_http = admin(aws_emulator, "GET", "/calls")
    rows = {(c["service"], c["action"]): c for c in over_http["calls"]}
    assert rows[("ec2", "DescribeVpcs")]["kind"] == "read"
    assert rows[("ec2", "CreateVpc")]["kind"] == "mutating"
    assert over_http["totals"] == {"read": 3, "mutating": 1, "throttled": 0}

    admin(aws_emulator, "POST", "/calls/reset")
    assert aws_emulator.call_count() == 0
    ec2.describe_vpcs()
    aws_emulator.reset_call_counts()
    assert admin(aws_emulator, "GET", "/calls")["calls"] == []


def test_ec2_throttling_is_retried_by_botocore_standard_mode(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    ec2.create_route(RouteTableId=ids["rt"], DestinationCidrBlock="20.0.0.100/32", NetworkInterfaceId=ids["eni"])
    aws_emulator.reset_call_counts()
    aws_emulator.inject_fault("ec2", "ReplaceRoute", count=2)
    retrying = client(aws_emulator, "ec2", retries={"mode": "standard", "total_max_attempts": 3})
    retrying.replace_route(RouteTableId=ids["rt"], DestinationCidrBlock="20.0.0.100/32", NetworkInterfaceId=ids["eni"])
    stats = {(s.service, s.action): s for s in aws_emulator.call_counts()}
    assert (stats[("ec2", "ReplaceRoute")].count, stats[("ec2", "ReplaceRoute")].throttled) == (3, 2)
    assert aws_emulator.pending_faults() == []

    aws_emulator.inject_fault("ec2", "DescribeVpcs")
    with pytest.raises(ec2.exceptions.ClientError) as throttled:
        ec2.describe_vpcs()  # no retries: the raw error reaches the caller
    assert error_code(throttled) == "RequestLimitExceeded"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_json_and_query_throttling_errors_over_the_admin_api(aws_emulator: Any) -> None:
    budgets, iam = client(aws_emulator, "budgets"), client(aws_emulator, "iam")
    admin(aws_emulator, "POST", "/faults", {"service": "budgets", "action": "DescribeBudgets", "count": 1})
    admin(aws_emulator, "POST", "/faults", {"service": "iam", "action": "ListRoles", "count": 1})
    assert len(admin(aws_emulator, "GET", "/faults")["faults"]) == 2
    with pytest.raises(budgets.exceptions.ClientError) as json_err:
        budgets.describe_budgets(AccountId=ACCOUNT)
    assert error_code(json_err) == "ThrottlingException"
    assert json_err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(iam.exceptions.ClientError) as query_err:
        iam.list_roles()
    assert error_code(query_err) == "Throttling"

    admin(aws_emulator, "POST", "/faults", {"service": "iam", "action": "ListRoles", "count": 2})
    roles = client(aws_emulator, "iam", retries={"mode": "standard", "total_max_attempts": 3}).list_roles()["Roles"]
    assert roles == []
    assert aws_emulator.call_count("iam", "ListRoles") == 4  # 1 failed earlier + 2 throttled + 1 served
    admin(aws_emulator, "POST", "/faults", {"service": "ec2", "action": "*", "count": 5})
    admin(aws_emulator, "DELETE", "/faults")
    assert admin(aws_emulator, "GET", "/faults") == {"faults": []}


def test_subscribers_hear_mutations_only(aws_emulator: Any) -> None:
    ec2 = client(aws_emulator, "ec2")
    events: list[Any] = []
    lock = threading.Lock()

    def record(event: Any) -> None:
        with lock:
            events.append(event)

    unsubscribe = aws_emulator.subscribe(record)
    try:
        ec2.describe_vpcs()
        vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
        with pytest.raises(ec2.exceptions.ClientError):
            ec2.delete_vpc(VpcId="vpc-00000000000000000")
    finally:
        unsubscribe()
    ec2.delete_vpc(VpcId=vpc)
    assert [(e.service, e.action, e.region) for e in events] == [
        ("ec2", "CreateVpc", REGION),
        ("ec2", "DeleteVpc", REGION),
    ]
    assert events[0].status == 200
    assert events[1].status >= 400


def test_fabric_view_reads_route_tables_enis_and_source_dest_check(aws_emulator: Any) -> None:
    from hybridctl_lab.aws_emulator import fabric_view

    ec2 = client(aws_emulator, "ec2")
    ids = hybrid_vpc(ec2)
    for cidr in ("192.168.1.0/24", "192.168.30.0/24"):
        ec2.create_route(RouteTableId=ids["rt"], DestinationCidrBlock=cidr, NetworkInterfaceId=ids["eni"])
    ec2.modify_network_interface_attribute(NetworkInterfaceId=ids["eni"], SourceDestCheck={"Value": False})

    view = fabric_view(REGION)
    table = view.route_table_for_subnet(ids["subnet"])
    assert table is not None and table.route_table_id == ids["rt"]
    hops = {r.destination: (r.target_type, r.next_hop_ip) for r in table.routes}
    assert hops["192.168.1.0/24"] == ("network-interface", "192.168.20.100")
    assert hops["192.168.20.0/22"] == ("local", None)
    main = view.route_table_for_subnet(ids["dummy"])
    assert main is not None and main.main and main.vpc_id == ids["vpc"]
    eni = view.enis[ids["eni"]]
    assert (eni.primary_ip, eni.source_dest_check, eni.tags) == ("192.168.20.100", False, {"Name": "bridge"})
    assert view.subnets[ids["subnet"]].gateway_ip == "192.168.20.1"
    assert view.vpcs[ids["vpc"]].cidrs == ("192.168.20.0/22",)

    ec2.delete_network_interface(NetworkInterfaceId=ids["eni"])
    after = fabric_view(REGION).route_tables[ids["rt"]]
    assert {r.state for r in after.routes if r.target_type == "network-interface"} == {"blackhole"}
