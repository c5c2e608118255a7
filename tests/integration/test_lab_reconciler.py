"""The fabric reconciler against the real emulators (no root needed).

Both emulators run in-process on free ports and are seeded as the lab daemon seeds them;
changes go through boto3 and azure-mgmt-network. The reconciler runs its real thread,
subscribed to both emulators, but hands each spec to a recorder instead of the kernel
(the kernel side is covered by tests/e2e/test_lab_fabric.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from hybridctl_lab import reconciler, seed
from hybridctl_lab.aws_emulator import fabric_view
from hybridctl_lab.fabric import ApplyReport, CloudFabric, FabricSpec, Route
from hybridctl_lab.topology import build_topology
from tests.support.emulators import (
    azure_credential,
    boto_client,
    network_client,
    running_aws_emulator,
    running_azure_emulator,
)

pytestmark = [pytest.mark.integration]

A, N = IPv4Address, IPv4Network
TOPOLOGY = build_topology(0)


class Recorder:
    """Stands in for fabric.apply: keeps every spec the reconciler asks for."""

    def __init__(self) -> None:
        self.specs: list[FabricSpec] = []
        self.cond = threading.Condition()

    def __call__(self, spec: FabricSpec) -> list[ApplyReport]:
        with self.cond:
            self.specs.append(spec)
            self.cond.notify_all()
        return []

    def wait_for(self, predicate: Callable[[FabricSpec], bool], timeout: float = 10.0) -> FabricSpec:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.specs and predicate(self.specs[-1]):
                    return self.specs[-1]
                left = deadline - time.monotonic()
                assert left > 0, f"no matching spec; last: {self.specs[-1] if self.specs else None}"
                self.cond.wait(left)


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = Path(tmp_path_factory.mktemp("azure"))
    with (
        running_aws_emulator() as aws,
        running_azure_emulator(state, subscription_id=seed.AZURE_SUBSCRIPTION_ID) as azure,
    ):
        aws.reset()  # moto's state is per process: start from nothing whatever ran before
        ec2 = boto_client(aws, "ec2", region=seed.AWS_REGION, keys=(seed.AWS_ACCESS_KEY_ID, seed.AWS_SECRET_ACCESS_KEY))
        aws_ids = seed.seed_aws(ec2, TOPOLOGY)
        iam = boto_client(aws, "iam", region=seed.AWS_REGION, keys=(seed.AWS_ACCESS_KEY_ID, seed.AWS_SECRET_ACCESS_KEY))
        vip_ids = seed.seed_vip(ec2, iam, TOPOLOGY)
        azure_ids = seed.seed_azure(azure, TOPOLOGY)
        network = network_client(azure, azure_credential(azure))
        recorder = Recorder()
        rec = reconciler.Reconciler(
            TOPOLOGY,
            read_aws=lambda: fabric_view(seed.AWS_REGION),
            read_azure=lambda: reconciler.AzureSnapshot.from_store(azure.store),
            apply=recorder,
            status_file=state / reconciler.STATUS_FILE,
            poll_interval=600,  # no safety poll here: only the emulators' notifications may wake it
        )
        aws.subscribe(rec.on_aws_event)
        azure.store.subscribe(rec.on_azure_changes)
        rec.start()
        try:
            yield {
                "aws": aws,
                "azure": azure,
                "ec2": ec2,
                "network": network,
                "aws_ids": aws_ids,
                "vip_ids": vip_ids,
                "azure_ids": azure_ids,
                "rec": rec,
                "recorder": recorder,
                "state": state,
            }
        finally:
            rec.stop()
            aws.reset()


def forwarding(cloud: CloudFabric) -> dict[IPv4Address, bool]:
    return {h.nic_ip: h.may_forward for h in cloud.hosts}


def routes_of(cloud: CloudFabric, subnet: str) -> list[Route]:
    table = cloud.associations.get(N(subnet))
    return list(cloud.route_tables[table]) if table else []


def test_seeded_clouds_give_the_bare_fabric(clouds: dict[str, Any]) -> None:
    spec = clouds["recorder"].wait_for(lambda s: True)
    aws, azure = spec.cloud("aws"), spec.cloud("azure")
    ids = clouds["aws_ids"]
    # Hybrid-Subnet uses Hybrid-RT, Dammy the main table; neither has a route the fabric copies.
    assert dict(aws.associations) == {
        N("192.168.20.0/24"): ids.route_table_id,
        N("192.168.21.0/24"): ids.main_route_table_id,
    }
    assert all(not routes for routes in aws.route_tables.values())
    assert not any(forwarding(aws).values()) and not any(forwarding(azure).values())
    assert dict(azure.associations) == {} and dict(azure.route_tables) == {}


def test_aws_routes_and_source_dest_check_follow_the_api(clouds: dict[str, Any]) -> None:
    ec2, ids, recorder = clouds["ec2"], clouds["aws_ids"], clouds["recorder"]
    events = clouds["rec"].events
    ec2.create_route(
        RouteTableId=ids.route_table_id, DestinationCidrBlock="192.168.30.0/24", NetworkInterfaceId=ids.bridge_eni_id
    )
    ec2.create_route(
        RouteTableId=ids.route_table_id, DestinationCidrBlock="10.9.0.0/16", InstanceId=ids.instances["aws-h20"]
    )
    ec2.modify_network_interface_attribute(NetworkInterfaceId=ids.bridge_eni_id, SourceDestCheck={"Value": False})
    spec = recorder.wait_for(lambda s: forwarding(s.cloud("aws"))[A("192.168.20.100")])
    aws = spec.cloud("aws")
    assert sorted(routes_of(aws, "192.168.20.0/24"), key=str) == sorted(
        [Route(N("192.168.30.0/24"), A("192.168.20.100")), Route(N("10.9.0.0/16"), A("192.168.20.10"))], key=str
    )
    assert routes_of(aws, "192.168.21.0/24") == []  # Dammy is still on the main table
    assert forwarding(aws) == {A("192.168.20.100"): True, A("192.168.20.10"): False, A("192.168.21.10"): False}
    assert clouds["rec"].events >= events + 3  # woken by the emulator's notifications (no poll here)

    ec2.associate_route_table(RouteTableId=ids.route_table_id, SubnetId=ids.subnet_ids["Hybrid-Subnet-Dammy"])
    spec = recorder.wait_for(lambda s: bool(routes_of(s.cloud("aws"), "192.168.21.0/24")))
    assert spec.cloud("aws").associations[N("192.168.21.0/24")] == ids.route_table_id


def test_aws_route_to_a_deleted_eni_is_a_blackhole(clouds: dict[str, Any]) -> None:
    ec2, ids, recorder = clouds["ec2"], clouds["aws_ids"], clouds["recorder"]
    eni = ec2.create_network_interface(SubnetId=ids.subnet_ids["Hybrid-Subnet"], PrivateIpAddress="192.168.20.50")
    eni_id = eni["NetworkInterface"]["NetworkInterfaceId"]
    ec2.create_route(RouteTableId=ids.route_table_id, DestinationCidrBlock="10.50.0.0/16", NetworkInterfaceId=eni_id)
    recorder.wait_for(
        lambda s: Route(N("10.50.0.0/16"), A("192.168.20.50")) in routes_of(s.cloud("aws"), "192.168.20.0/24")
    )
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    spec = recorder.wait_for(lambda s: Route(N("10.50.0.0/16"), None) in routes_of(s.cloud("aws"), "192.168.20.0/24"))
    assert Route(N("192.168.30.0/24"), A("192.168.20.100")) in routes_of(spec.cloud("aws"), "192.168.20.0/24")
    ec2.delete_route(RouteTableId=ids.route_table_id, DestinationCidrBlock="10.50.0.0/16")
    recorder.wait_for(
        lambda s: all(r.prefix != N("10.50.0.0/16") for r in routes_of(s.cloud("aws"), "192.168.20.0/24"))
    )


def test_vip_vpc_is_seeded_onto_its_own_fabric_and_follows_a_move(clouds: dict[str, Any]) -> None:
    ec2, ids, recorder = clouds["ec2"], clouds["vip_ids"], clouds["recorder"]
    subnets = ("10.0.10.0/24", "10.0.110.0/24", "10.0.120.0/24")
    node1, node2 = A("10.0.110.10"), A("10.0.120.10")
    vip = N("20.0.0.100/32")
    spec = recorder.wait_for(lambda s: bool(routes_of(s.cloud("vip"), "10.0.10.0/24")))
    cloud = spec.cloud("vip")
    assert dict(cloud.associations) == {
        N("10.0.10.0/24"): ids.tables["Main"],
        N("10.0.110.0/24"): ids.tables["Route-A"],
        N("10.0.120.0/24"): ids.tables["Route-C"],
    }
    assert all(routes_of(cloud, s) == [Route(vip, node1)] for s in subnets)
    assert forwarding(cloud) == {A("10.0.10.10"): False, node1: True, node2: True}
    assert not any(r.prefix == vip for rs in spec.cloud("aws").route_tables.values() for r in rs)

    for table in ids.tables.values():  # what `vip move --to node2` writes
        ec2.replace_route(RouteTableId=table, DestinationCidrBlock=str(vip), NetworkInterfaceId=ids.enis["node2"])
    spec = recorder.wait_for(lambda s: all(routes_of(s.cloud("vip"), n) == [Route(vip, node2)] for n in subnets))
    assert forwarding(spec.cloud("vip"))[node2]


def test_azure_route_table_and_ip_forwarding_follow_the_sdk(clouds: dict[str, Any]) -> None:
    network, recorder = clouds["network"], clouds["recorder"]
    rg = seed.AZURE_RESOURCE_GROUP
    body: Any = {
        "location": seed.AZURE_LOCATION,
        "properties": {
            "routes": [
                {"name": "aws", "properties": {"addressPrefix": "192.168.20.0/24", "nextHopType": "VirtualAppliance",
                                               "nextHopIpAddress": "192.168.30.100"}},
                {"name": "drop", "properties": {"addressPrefix": "10.66.0.0/16", "nextHopType": "None"}},
                {"name": "web", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}},
            ]
        },
    }  # fmt: skip
    table = network.route_tables.begin_create_or_update(rg, seed.AZURE_ROUTE_TABLE, body).result()
    subnet = network.subnets.get(rg, seed.AZURE_VNET, "Hybrid_Subnet_Dammy")
    subnet.route_table = table
    network.subnets.begin_create_or_update(rg, seed.AZURE_VNET, "Hybrid_Subnet_Dammy", subnet).result()
    spec = recorder.wait_for(lambda s: N("192.168.31.0/24") in s.cloud("azure").associations)
    azure = spec.cloud("azure")
    assert sorted(routes_of(azure, "192.168.31.0/24"), key=str) == sorted(
        [Route(N("192.168.20.0/24"), A("192.168.30.100")), Route(N("10.66.0.0/16"), None)], key=str
    )
    assert routes_of(azure, "192.168.30.0/24") == []  # not associated: system routes only

    nic = network.network_interfaces.get(rg, seed.AZURE_BRIDGE_NIC)
    nic.enable_ip_forwarding = True
    network.network_interfaces.begin_create_or_update(rg, seed.AZURE_BRIDGE_NIC, nic).result()
    spec = recorder.wait_for(lambda s: forwarding(s.cloud("azure"))[A("192.168.30.100")])
    assert forwarding(spec.cloud("azure")) == {
        A("192.168.30.100"): True,
        A("192.168.30.4"): False,  # the Azure site's bastion
        A("192.168.30.10"): False,
        A("192.168.31.10"): False,
    }


def test_status_file_records_the_passes(clouds: dict[str, Any]) -> None:
    rec = clouds["rec"]
    deadline = time.monotonic() + 10
    # The file is written right after each pass; wait for the one in flight, if any.
    while (status := reconciler.read_status(clouds["state"])) is None or status["passes"] != rec.passes:
        assert time.monotonic() < deadline, status
        time.sleep(0.01)
    assert status["passes"] >= 2 and status["last"]["ok"]
    assert status["last"]["reason"] in ("event", "start")
    assert status["events"] == clouds["rec"].events
