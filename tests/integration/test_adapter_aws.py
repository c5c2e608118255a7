"""The AWS backend against the lab's AWS emulator (moto server + extensions) with real boto3.

The reference site's AWS objects are built with plain boto3 calls; the backend reads them,
the pure diff plans, the backend applies, and the emulator's own counters check the calls.
One emulator serves the module (port 0); moto's state is process-wide, so each test resets it.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.backends.aws import AwsBackend
from hybridctl.backends.base import NoProgress
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import diff
from hybridctl.core.inventory.load import LoadedInventory, load_inventory
from tests.conftest import FIXTURES
from tests.support.backends import BackendRun, by_key
from tests.support.emulators import build_reference_aws_site, name_tag, write_aws_credentials

# Each test starts from an empty emulator (the module shares one; moto's state is per process).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_aws")]

PROFILE = "hybridctl-lab"


@pytest.fixture
def cloud(ec2: Any) -> dict[str, str]:
    """The reference AWS site, as a user would have built it before running hybridctl."""
    return build_reference_aws_site(ec2)


def make_inventory(
    tmp_path: Path, aws_emulator: Any, extra_networks: int = 0, edit: Any = None, name: str = "inventory.yaml"
) -> LoadedInventory:
    """tests/fixtures/aws/inventory.yaml, pointed at the emulator, optionally grown or edited."""
    credentials = write_aws_credentials(tmp_path / "credentials", PROFILE)
    text = string.Template((FIXTURES / "aws" / "inventory.yaml").read_text()).substitute(
        endpoint_url=aws_emulator.endpoint_url, credentials_file=str(credentials)
    )
    raw = yaml.safe_load(text)
    home = raw["sites"][0]
    for i in range(extra_networks):
        home["networks"].append({"name": f"lan{i}", "cidr": f"10.10.{i}.0/24"})
    if edit is not None:
        edit(raw)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return load_inventory(path)


class Run(BackendRun[AwsBackend]):
    """The AWS backend of one inventory, with its journal at ``journal_path``."""

    def __init__(self, loaded: LoadedInventory, journal_path: Path) -> None:
        journal = Journal(journal_path)
        super().__init__(loaded, journal, AwsBackend(loaded.inventory, journal))


@pytest.fixture
def run(tmp_path: Path, aws_emulator: Any, cloud: dict[str, str]) -> Iterator[Run]:
    runner = Run(make_inventory(tmp_path, aws_emulator), tmp_path / "journal.json")
    yield runner
    runner.backend.close()


def routes_of(ec2: Any, table: str) -> dict[str, dict[str, Any]]:
    described = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
    return {r["DestinationCidrBlock"]: r for r in described["Routes"] if "DestinationCidrBlock" in r}


def association_of(ec2: Any, subnet: str) -> str | None:
    for table in ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "RouteTables"
    ]:
        return str(table["RouteTableId"])
    return None


# --------------------------------------------------------------------------- tests


def test_bare_read_plans_every_create(run: Run, aws_emulator: Any) -> None:
    aws_emulator.reset_call_counts()
    changes = run.changes()
    creates = {c.key for c in changes if c.action == "create"}
    planned = {r.key for r in run.want if r.layer != "flag"}
    assert creates == planned
    assert ("aws", "Hybrid-RT", "192.168.1.0/24") in creates
    (flag,) = [c for c in changes if c.layer == "flag"]
    assert flag.action == "update"
    assert flag.differing() == {"value": ("false", "true")}
    assert run.backend.counter.mutations == 0
    # One call per object kind: VPCs, subnets, route tables, ENIs, security groups.
    assert run.backend.counter.reads == aws_emulator.call_count("ec2", kind="read") <= 5
    assert aws_emulator.call_count("ec2", kind="mutating") == 0


def test_apply_converges_and_a_second_apply_changes_nothing(run: Run, aws_emulator: Any, ec2: Any, cloud: Any) -> None:
    outcomes = run.up()
    assert outcomes and all(o.ok for o in outcomes)

    routes = routes_of(ec2, cloud["table"])
    for prefix in ("192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24"):
        assert routes[prefix]["NetworkInterfaceId"] == cloud["eni"]
    assert association_of(ec2, cloud["subnet"]) == cloud["table"]
    assert association_of(ec2, cloud["dammy"]) == cloud["table"]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[cloud["eni"]])["NetworkInterfaces"][0]
    assert eni["SourceDestCheck"] is False
    group = ec2.describe_security_groups(GroupIds=[cloud["sg"]])["SecurityGroups"][0]
    ranges = {r["CidrIp"]: r.get("Description", "") for p in group["IpPermissions"] for r in p["IpRanges"]}
    assert ranges["192.168.20.0/24"].startswith("hybridctl: hybridctl-from-Hybrid-Subnet:")
    assert ranges["192.168.21.0/24"].startswith("hybridctl: hybridctl-from-Hybrid-Subnet-Dammy:")
    assert run.journal.original("flag", ("aws", "aws-bridge-eni", "source_dest_check")) == "true"

    assert run.changes() == []
    aws_emulator.reset_call_counts()
    before = run.backend.counter.mutations
    again = run.up()
    assert again == []
    assert aws_emulator.call_count("ec2", kind="mutating") == 0
    assert run.backend.counter.mutations == before


def test_deleted_route_is_recreated(run: Run, ec2: Any, cloud: Any) -> None:
    run.up()
    ec2.delete_route(RouteTableId=cloud["table"], DestinationCidrBlock="192.168.30.0/24")
    changes = run.changes()
    assert [(c.action, c.key) for c in changes] == [("create", ("aws", "Hybrid-RT", "192.168.30.0/24"))]
    run.apply(changes)
    assert routes_of(ec2, cloud["table"])["192.168.30.0/24"]["NetworkInterfaceId"] == cloud["eni"]
    assert run.changes() == []


def test_repointed_route_shows_expected_and_actual_and_is_restored(run: Run, ec2: Any, cloud: Any) -> None:
    run.up()
    ec2.replace_route(
        RouteTableId=cloud["table"], DestinationCidrBlock="192.168.1.0/24", NetworkInterfaceId=cloud["other"]
    )
    changes = run.changes()
    assert len(changes) == 1
    change = changes[0]
    assert (change.action, change.symbol, change.key) == ("update", "~", ("aws", "Hybrid-RT", "192.168.1.0/24"))
    assert change.differing() == {"target": ("eni:aws-bridge-eni", f"eni:{cloud['other']}")}
    run.apply(changes)
    assert routes_of(ec2, cloud["table"])["192.168.1.0/24"]["NetworkInterfaceId"] == cloud["eni"]
    assert run.changes() == []


def test_source_dest_check_turned_back_on_is_turned_off(run: Run, ec2: Any, cloud: Any) -> None:
    run.up()
    ec2.modify_network_interface_attribute(NetworkInterfaceId=cloud["eni"], SourceDestCheck={"Value": True})
    changes = run.changes()
    assert [(c.action, c.layer, c.differing()) for c in changes] == [("update", "flag", {"value": ("false", "true")})]
    run.apply(changes)
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[cloud["eni"]])["NetworkInterfaces"][0]
    assert eni["SourceDestCheck"] is False
    # The value found before the very first change is the one `down` restores.
    run.down()
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[cloud["eni"]])["NetworkInterfaces"][0]
    assert eni["SourceDestCheck"] is True


def test_foreign_routes_are_flagged_never_touched_and_survive_down(run: Run, ec2: Any, cloud: Any) -> None:
    # A foreign route outside the overlay, one holding an overlay prefix, one stealing part of one.
    ec2.create_route(
        RouteTableId=cloud["table"], DestinationCidrBlock="10.99.0.0/16", NetworkInterfaceId=cloud["other"]
    )
    ec2.create_route(
        RouteTableId=cloud["table"], DestinationCidrBlock="192.168.1.0/24", NetworkInterfaceId=cloud["other"]
    )
    ec2.create_route(
        RouteTableId=cloud["table"], DestinationCidrBlock="192.168.30.128/25", NetworkInterfaceId=cloud["other"]
    )
    changes = by_key(run.changes())
    assert changes[("aws", "Hybrid-RT", "192.168.1.0/24")].action == "conflict"
    assert changes[("aws", "Hybrid-RT", "192.168.1.0/24")].differing() == {
        "target": ("eni:aws-bridge-eni", f"eni:{cloud['other']}")
    }
    assert changes[("aws", "Hybrid-RT", "192.168.30.128/25")].action == "conflict"
    assert ("aws", "Hybrid-RT", "10.99.0.0/16") not in changes

    outcomes = run.apply(list(changes.values()))
    # Conflicts are not acted on: no call, no outcome.
    assert {o.change.action for o in outcomes if o.change} == {"create", "update"}
    routes = routes_of(ec2, cloud["table"])
    assert routes["192.168.1.0/24"]["NetworkInterfaceId"] == cloud["other"]  # never touched
    assert routes["192.168.30.0/24"]["NetworkInterfaceId"] == cloud["eni"]
    assert {c.action for c in run.changes()} == {"conflict"}

    run.down()
    routes = routes_of(ec2, cloud["table"])
    assert "192.168.30.0/24" not in routes and "192.168.31.0/24" not in routes
    for prefix in ("10.99.0.0/16", "192.168.1.0/24", "192.168.30.128/25"):
        assert routes[prefix]["NetworkInterfaceId"] == cloud["other"]
    # Associations hybridctl made are undone; the table (the user's) stays.
    assert association_of(ec2, cloud["subnet"]) is None
    assert ec2.describe_route_tables(RouteTableIds=[cloud["table"]])["RouteTables"]
    assert run.journal.entries()["created"] == {}


def test_down_restores_the_previous_association(tmp_path: Path, aws_emulator: Any, ec2: Any, cloud: Any) -> None:
    old = ec2.create_route_table(VpcId=cloud["vpc"], TagSpecifications=name_tag("route-table", "Old-RT"))["RouteTable"][
        "RouteTableId"
    ]
    ec2.associate_route_table(RouteTableId=old, SubnetId=cloud["subnet"])
    run = Run(make_inventory(tmp_path, aws_emulator), tmp_path / "journal.json")
    changes = by_key(run.changes())
    # The subnet's current association is another table's: not hybridctl's, not in the way.
    assert changes[("aws", "Hybrid-RT", "Hybrid-Subnet")].action == "create"
    run.apply(list(changes.values()))
    assert association_of(ec2, cloud["subnet"]) == cloud["table"]
    detail = run.journal.created_detail("cloud-association", ("aws", "Hybrid-RT", "Hybrid-Subnet"))
    assert detail["previous"] == old
    run.down()
    assert association_of(ec2, cloud["subnet"]) == old
    assert association_of(ec2, cloud["dammy"]) is None


def test_route_table_created_when_missing_and_dropped_on_down(
    tmp_path: Path, aws_emulator: Any, ec2: Any, cloud: Any
) -> None:
    def use_new_table(raw: dict[str, Any]) -> None:
        aws = raw["sites"][1]
        aws["route_tables"] = [{"name": "Overlay-RT", "create": True}]
        for network in aws["networks"]:
            network["route_table"] = "Overlay-RT"

    run = Run(make_inventory(tmp_path, aws_emulator, edit=use_new_table), tmp_path / "journal.json")
    run.up()
    created = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": ["Overlay-RT"]}])["RouteTables"]
    assert len(created) == 1
    assert {"Key": "managed-by", "Value": "hybridctl"} in created[0]["Tags"]
    table = created[0]["RouteTableId"]
    assert association_of(ec2, cloud["subnet"]) == table
    assert run.changes() == []
    run.down()
    assert ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": ["Overlay-RT"]}])["RouteTables"] == []
    assert run.journal.entries()["created"] == {}


def test_throttling_is_retried_and_the_run_succeeds(run: Run, aws_emulator: Any, ec2: Any, cloud: Any) -> None:
    aws_emulator.inject_fault("ec2", "DescribeRouteTables", count=2)
    aws_emulator.inject_fault("ec2", "CreateRoute", count=2)
    aws_emulator.inject_fault("ec2", "ModifyNetworkInterfaceAttribute", count=1)
    run.up()
    stats = {(s.action): s for s in aws_emulator.call_counts()}
    assert stats["DescribeRouteTables"].throttled == 2
    assert stats["CreateRoute"].throttled == 2
    assert stats["ModifyNetworkInterfaceAttribute"].throttled == 1
    assert aws_emulator.pending_faults() == []
    assert len(routes_of(ec2, cloud["table"])) == 4  # local + 3 overlay routes
    assert run.changes() == []


def test_read_calls_do_not_grow_with_the_number_of_routes(tmp_path: Path, aws_emulator: Any, cloud: Any) -> None:
    counts = []
    for extra in (0, 57):
        aws_emulator.reset_call_counts()
        run = Run(make_inventory(tmp_path, aws_emulator, extra_networks=extra), tmp_path / f"journal-{extra}.json")
        routes = [r for r in run.want if r.layer == "cloud-route"]
        assert len(routes) == 3 + extra
        run.up()
        assert run.changes() == []
        aws_emulator.reset_call_counts()
        reads_before = run.backend.counter.reads
        run.read()
        counts.append((run.backend.counter.reads - reads_before, aws_emulator.call_count("ec2", kind="read")))
        run.down()
    assert counts[0] == counts[1]
    assert counts[0][0] == counts[0][1]


def test_names_that_do_not_resolve_name_the_inventory_field(tmp_path: Path, aws_emulator: Any, cloud: Any) -> None:
    def wrong(raw: dict[str, Any]) -> None:
        raw["sites"][1]["gateway"]["eni"] = "no-such-eni"

    loaded = make_inventory(tmp_path, aws_emulator, edit=wrong)
    run = Run(loaded, tmp_path / "journal.json")
    result = run.backend.read(run.desired)
    assert set(result.unreachable) == {"aws"}
    assert "sites[aws].gateway.eni" in result.unreachable["aws"]
    assert "no-such-eni" in result.unreachable["aws"]
    aws_emulator.reset_call_counts()
    outcomes = run.backend.apply(diff(run.want, result.resources), run.desired, NoProgress())
    assert outcomes and not any(o.ok for o in outcomes)
    assert aws_emulator.call_count("ec2", kind="mutating") == 0

    def no_vpc(raw: dict[str, Any]) -> None:
        raw["sites"][1]["vpc"] = "Nope-VPC"

    run = Run(make_inventory(tmp_path, aws_emulator, edit=no_vpc, name="novpc.yaml"), tmp_path / "j2.json")
    result = run.backend.read(run.desired)
    assert "sites[aws].vpc" in result.unreachable["aws"]


def test_instance_gateway_byname_tag(tmp_path: Path, aws_emulator: Any, ec2: Any, cloud: Any) -> None:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.delete_network_interface(NetworkInterfaceId=cloud["eni"])
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        SubnetId=cloud["subnet"],
        PrivateIpAddress="192.168.20.100",
        TagSpecifications=name_tag("instance", "aws-bridge-vm"),
    )["Instances"][0]["InstanceId"]

    def by_instance(raw: dict[str, Any]) -> None:
        gateway = raw["sites"][1]["gateway"]
        del gateway["eni"]
        gateway["instance"] = "aws-bridge-vm"

    run = Run(make_inventory(tmp_path, aws_emulator, edit=by_instance), tmp_path / "journal.json")
    changes = by_key(run.changes())
    assert changes[("aws", "Hybrid-RT", "192.168.1.0/24")].desired == (("target", "instance:aws-bridge-vm"),)
    assert changes[("aws", "aws-bridge-vm", "source_dest_check")].action == "update"
    run.apply(list(changes.values()))
    assert routes_of(ec2, cloud["table"])["192.168.1.0/24"]["InstanceId"] == instance
    assert run.changes() == []


def test_an_owned_rule_under_another_name_is_renamed_in_place(
    run: Run, ec2: Any, cloud: Any, aws_emulator: Any
) -> None:
    ec2.authorize_security_group_ingress(
        GroupId=cloud["sg"],
        IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "192.168.20.0/24", "Description": "hybridctl: old-name: x"}]}
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=cloud["sg"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    changes = by_key(run.changes())
    rename = changes[("aws", "aws-bridge-sg", "inbound", "all", "*", "192.168.20.0/24")]
    assert (rename.action, rename.differing()) == ("update", {"name": ("hybridctl-from-Hybrid-Subnet", "old-name")})
    assert ("aws", "aws-bridge-sg", "inbound", "tcp", "22", "0.0.0.0/0") not in changes  # foreign, no collision
    aws_emulator.reset_call_counts()
    run.apply(list(changes.values()))
    assert aws_emulator.call_count("ec2", "UpdateSecurityGroupRuleDescriptionsIngress") == 1
    assert aws_emulator.call_count("ec2", "RevokeSecurityGroupIngress") == 0
    assert run.changes() == []
    run.down()
    group = ec2.describe_security_groups(GroupIds=[cloud["sg"]])["SecurityGroups"][0]
    assert [(p["IpProtocol"], r["CidrIp"]) for p in group["IpPermissions"] for r in p["IpRanges"]] == [
        ("tcp", "0.0.0.0/0")
    ]


def test_a_refused_call_fails_its_change_only_with_a_permission_hint(run: Run, aws_emulator: Any, ec2: Any) -> None:
    aws_emulator.inject_fault("ec2", "CreateRoute", count=1, code="UnauthorizedOperation", status=403)
    outcomes = run.backend.apply(run.changes(), run.desired, NoProgress())
    failed = [o for o in outcomes if not o.ok]
    assert len(failed) == 1 and failed[0].change is not None
    assert failed[0].change.layer == "cloud-route"
    assert "UnauthorizedOperation" in failed[0].error and "ec2:CreateRoute" in failed[0].error
    assert len([o for o in outcomes if o.ok]) == len(outcomes) - 1
    # The next run only has the refused route left to do.
    assert [c.key for c in run.changes()] == [failed[0].change.key]
