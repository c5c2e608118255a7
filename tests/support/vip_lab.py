"""Reference section 4 on a running lab: the VIP-VPC inventory and what its route tables point at.

``hybridctl lab up`` seeds VIP-VPC (hybridctl_lab.vip_scenario) into the lab's AWS emulator;
inventory/vip-lab.yaml declares its VIP ``ha-vip``. The e2e tests that move that VIP (by
``vip move`` from the machine, by the OCF agent on a node) start from the same document with
the ``aws`` section they reach the emulator by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from hybridctl.backends.aws_lookup import name_of
from hybridctl_lab import vip_scenario as scenario
from tests.conftest import REPO

if TYPE_CHECKING:
    from hybridctl_lab import manager

VIP_INVENTORY = REPO / "inventory" / "vip-lab.yaml"


def lab_aws_section(lab: manager.LabUpResult) -> dict[str, Any]:
    """The lab inventory's ``aws`` section: region, the emulator's endpoint, the credentials file."""
    return dict(yaml.safe_load(lab.inventory.read_text())["aws"])


def vip_vpc_document(aws: dict[str, Any]) -> dict[str, Any]:
    """inventory/vip-lab.yaml (VIP-VPC, ``ha-vip`` on node1 / node2) reaching AWS through ``aws``."""
    doc: dict[str, Any] = yaml.safe_load(VIP_INVENTORY.read_text())
    doc["aws"] = aws
    return doc


def vip_targets(ec2: Any, vpc_name: str = "VIP-VPC", vip: str = scenario.VIP) -> dict[str, str]:
    """Route table name -> Name tag of the ENI that ``vip``/32 points at, in ``vpc_name``."""
    enis = {e["NetworkInterfaceId"]: name_of(e) or "" for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [vpc_name]}])["Vpcs"][0]["VpcId"]
    out = {}
    for table in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]:
        name = name_of(table) or table["RouteTableId"]
        for route in table["Routes"]:
            if route.get("DestinationCidrBlock") == f"{vip}/32":
                out[name] = enis.get(route.get("NetworkInterfaceId", ""), str(route.get("NetworkInterfaceId")))
    return out
