"""Reconciler fidelity: the fabric follows what the emulated cloud APIs say, and only that.

Every change here is a boto3 or azure-mgmt-network call against the lab daemon's
emulators (nothing calls the fabric directly); the reconciler turns it into kernel state.
A plain Linux router stands in for the SoftEther overlay between the two bridge hosts
(veth ``hl-ovl``, 192.168.10.2 AWS / 192.168.10.3 Azure, ip_forward=1, kernel routes to the
other cloud), so whether a cloud-to-cloud ping passes depends only on the clouds' route
tables, associations, source/dest check and IP forwarding.

After each API call the test waits until the reconciler applied cloud state read after the
call returned (``manager.wait_reconciled``), then pings once: no timing assertion (how fast
the fabric follows the APIs on its own, without being asked, is measured by bench/lab_cycle.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hybridctl_lab import dataplane, manager, seed
from tests.e2e.test_lab import E2E_LAB_DIR, ec2_client, free_port, inventory_of, network_client, require_lab, tag
from tests.integration.test_lab_dataplane import lab_leftovers, pings, root_snapshot
from tests.integration.test_lab_dataplane_fabric import standin_up

pytestmark = [pytest.mark.lab]

AWS_HOSTS = {"hl-aws-h20": "192.168.20.10", "hl-aws-h21": "192.168.21.10"}
AZ_HOSTS = {"hl-az-h30": "192.168.30.10", "hl-az-h31": "192.168.31.10"}
AWS_REMOTE = ("192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24")
AZ_REMOTE = ("192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24")


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    require_lab()
    with dataplane.lab_lock():
        before = root_snapshot()
        result = manager.up(lab_dir=E2E_LAB_DIR, aws_port=free_port(), azure_port=free_port())
        try:
            standin_up(E2E_LAB_DIR)
            yield result
        finally:
            manager.down(lab_dir=E2E_LAB_DIR)
        assert lab_leftovers(E2E_LAB_DIR) == []
        assert root_snapshot() == before


class Clouds:
    """The two clouds through their APIs, with the ids the tests need."""

    def __init__(self, lab: manager.LabUpResult) -> None:
        self.ec2 = ec2_client(lab)
        self.net = network_client(lab)
        vpc = self.ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [seed.VPC_NAME]}])["Vpcs"][0]
        self.vpc_id = vpc["VpcId"]
        subnets = self.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}])["Subnets"]
        self.subnets = {tag(s): s["SubnetId"] for s in subnets}
        tables = self.ec2.describe_route_tables(
            Filters=[
                {"Name": "tag:Name", "Values": [seed.AWS_ROUTE_TABLE]},
                {"Name": "vpc-id", "Values": [self.vpc_id]},
            ]
        )["RouteTables"]
        self.rtb = tables[0]["RouteTableId"]
        self.eni = self.ec2.describe_network_interfaces(
            Filters=[{"Name": "tag:Name", "Values": [seed.AWS_BRIDGE_ENI]}]
        )["NetworkInterfaces"][0]["NetworkInterfaceId"]
        self.rg = seed.AZURE_RESOURCE_GROUP
        self.sub = inventory_of(lab)["azure"]["subscription_id"]
        self.rt_id = (
            f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers/Microsoft.Network/routeTables/"
            f"{seed.AZURE_ROUTE_TABLE}"
        )

    # -- AWS ----------------------------------------------------------------------------------

    def aws_route(self, prefix: str) -> None:
        try:
            self.ec2.create_route(RouteTableId=self.rtb, DestinationCidrBlock=prefix, NetworkInterfaceId=self.eni)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "RouteAlreadyExists":
                raise
            self.ec2.replace_route(RouteTableId=self.rtb, DestinationCidrBlock=prefix, NetworkInterfaceId=self.eni)

    def aws_delete_route(self, prefix: str) -> None:
        self.ec2.delete_route(RouteTableId=self.rtb, DestinationCidrBlock=prefix)

    def aws_associate_dammy(self) -> None:
        table = self.ec2.describe_route_tables(RouteTableIds=[self.rtb])["RouteTables"][0]
        if self.subnets["Hybrid-Subnet-Dammy"] not in {a.get("SubnetId") for a in table["Associations"]}:
            self.ec2.associate_route_table(RouteTableId=self.rtb, SubnetId=self.subnets["Hybrid-Subnet-Dammy"])

    def source_dest_check(self, on: bool) -> None:
        self.ec2.modify_network_interface_attribute(NetworkInterfaceId=self.eni, SourceDestCheck={"Value": on})

    # -- Azure --------------------------------------------------------------------------------

    def azure_route_table(self, prefixes: tuple[str, ...]) -> None:
        routes = [
            {
                "name": "to-" + p.replace(".", "-").replace("/", "-"),
                "properties": {
                    "addressPrefix": p,
                    "nextHopType": "VirtualAppliance",
                    "nextHopIpAddress": "192.168.30.100",
                },
            }
            for p in prefixes
        ]
        body: Any = {"location": seed.AZURE_LOCATION, "properties": {"routes": routes}}
        self.net.route_tables.begin_create_or_update(self.rg, seed.AZURE_ROUTE_TABLE, body).result()
        for name in ("Hybrid_Subnet", "Hybrid_Subnet_Dammy"):
            subnet = self.net.subnets.get(self.rg, seed.AZURE_VNET, name)
            if subnet.route_table is None or subnet.route_table.id.lower() != self.rt_id.lower():
                subnet.route_table = self.net.route_tables.get(self.rg, seed.AZURE_ROUTE_TABLE)
                self.net.subnets.begin_create_or_update(self.rg, seed.AZURE_VNET, name, subnet).result()

    def ip_forwarding(self, on: bool) -> None:
        nic = self.net.network_interfaces.get(self.rg, seed.AZURE_BRIDGE_NIC)
        nic.enable_ip_forwarding = on
        self.net.network_interfaces.begin_create_or_update(self.rg, seed.AZURE_BRIDGE_NIC, nic).result()

    # -- the reference overlay's cloud side -----------------------------------------------------

    def overlay(self) -> None:
        for prefix in AWS_REMOTE:
            self.aws_route(prefix)
        self.aws_associate_dammy()
        self.source_dest_check(False)
        self.azure_route_table(AZ_REMOTE)
        self.ip_forwarding(True)


@pytest.fixture(scope="module")
def clouds(lab: manager.LabUpResult) -> Clouds:
    return Clouds(lab)


def synced() -> None:
    """Wait until the fabric reflects every API call that returned before now."""
    manager.wait_reconciled(timeout=15, lab_dir=E2E_LAB_DIR)


def cross_cloud() -> list[tuple[str, str]]:
    return [(a, z) for a in AWS_HOSTS for z in AZ_HOSTS.values()] + [
        (z, a) for z in AZ_HOSTS for a in AWS_HOSTS.values()
    ]


def reachable(pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {pair for pair, ok in pings(pairs, E2E_LAB_DIR).items() if ok}


@pytest.fixture
def overlay(clouds: Clouds) -> Clouds:
    """Every test starts from the full overlay configuration (cloud side), applied through the APIs."""
    clouds.overlay()
    synced()
    return clouds


def test_bare_clouds_no_cross_cloud_path(lab: manager.LabUpResult, clouds: Clouds) -> None:
    """Even with the stand-in overlay forwarding, the seeded clouds carry nothing across."""
    synced()
    assert reachable(cross_cloud()) == set()


def test_overlay_through_the_apis_connects_every_cloud_pair(overlay: Clouds) -> None:
    pairs = cross_cloud()
    assert reachable(pairs) == set(pairs)
    rec = manager.status(lab_dir=E2E_LAB_DIR).reconciler
    assert rec is not None and rec["events"] > 0 and rec["applies_with_changes"] > 0


def test_source_dest_check_follows_the_api(overlay: Clouds) -> None:
    overlay.source_dest_check(True)
    synced()
    assert reachable(cross_cloud()) == set()
    overlay.source_dest_check(False)
    synced()
    assert reachable(cross_cloud()) == set(cross_cloud())


def test_azure_ip_forwarding_off_breaks_azure_paths(overlay: Clouds) -> None:
    overlay.ip_forwarding(False)
    synced()
    assert reachable(cross_cloud()) == set()
    overlay.ip_forwarding(True)
    synced()
    assert reachable([("hl-aws-h20", "192.168.30.10")]) == {("hl-aws-h20", "192.168.30.10")}


def test_deleting_one_route_breaks_exactly_that_path(overlay: Clouds) -> None:
    overlay.aws_delete_route("192.168.31.0/24")
    synced()
    broken = {(a, "192.168.31.10") for a in AWS_HOSTS} | {("hl-az-h31", ip) for ip in AWS_HOSTS.values()}
    pairs = cross_cloud()
    assert reachable(pairs) == set(pairs) - broken
    overlay.aws_route("192.168.31.0/24")
    synced()
    assert reachable(pairs) == set(pairs)


def test_disassociating_a_subnet_falls_back_to_the_main_table(overlay: Clouds) -> None:
    """AWS: a subnet without an explicit association uses the main table (which has no overlay routes)."""
    table = overlay.ec2.describe_route_tables(RouteTableIds=[overlay.rtb])["RouteTables"][0]
    assoc = next(a for a in table["Associations"] if a.get("SubnetId") == overlay.subnets["Hybrid-Subnet-Dammy"])
    overlay.ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
    synced()
    pairs = cross_cloud()
    broken = {("hl-aws-h21", ip) for ip in AZ_HOSTS.values()} | {(z, "192.168.21.10") for z in AZ_HOSTS}
    assert reachable(pairs) == set(pairs) - broken
