"""Build reference.md section 4 (and section 5's Transit Gateway) in an EC2 API: the lab's VIP VPC.

Used by the lab to seed its AWS emulator, by the tests and by ``bench/vip_failover.py``. It
takes plain boto3 clients, so it runs the same against the emulator or a real sandbox account.

Section 4: VPC 10.0.0.0/16; subnets 10.0.10.0/24 (Subnet-1a, the client), 10.0.110.0/24
(Subnet-2a, node1), 10.0.120.0/24 (Subnet-2c, node2); tables Main (local, 0.0.0.0/0 -> igw,
VIP -> node1), Route-A (Subnet-2a) and Route-C (Subnet-2c) with the VIP route; VIP 20.0.0.100.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VPC_CIDR = "10.0.0.0/16"
VIP = "20.0.0.100"
SUBNETS = (  # name, cidr, AZ suffix, table
    ("Subnet-1a", "10.0.10.0/24", "a", "Main"),
    ("Subnet-2a", "10.0.110.0/24", "a", "Route-A"),
    ("Subnet-2c", "10.0.120.0/24", "c", "Route-C"),
)
NODES = (  # name, subnet, address
    ("node1", "Subnet-2a", "10.0.110.10"),
    ("node2", "Subnet-2c", "10.0.120.10"),
)
CLIENT = ("client", "Subnet-1a", "10.0.10.10")
# An AMI bundled with moto (the emulator); pass your own ``image_id`` for a real account.
DEFAULT_IMAGE = "ami-12c6146b"


def _tag(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


@dataclass
class VipVpc:
    """Ids of what :func:`build` created."""

    region: str
    vpc_id: str
    subnets: dict[str, str] = field(default_factory=dict)  # name -> subnet id
    tables: dict[str, str] = field(default_factory=dict)  # name -> rtb id
    enis: dict[str, str] = field(default_factory=dict)  # host -> eni id
    instances: dict[str, str] = field(default_factory=dict)  # host -> instance id
    igw_id: str = ""
    tgw_id: str = ""
    tgw_route_table_id: str = ""
    tgw_attachment_id: str = ""
    collision_vpc_id: str = ""
    collision_table_id: str = ""


def build(
    ec2: Any,
    *,
    vpc_name: str = "VIP-VPC",
    vip: str = VIP,
    extra_tables: int = 0,
    source_dest_check: bool = False,
    transit_gateway: bool = False,
    collision_vpc: bool = False,
    with_instances: bool = True,
    image_id: str = DEFAULT_IMAGE,
) -> VipVpc:
    """Create section 4 (``extra_tables`` more tables holding the VIP; optionally section 5's TGW
    and a second VPC 10.1.0.0/16 whose table routes the same VIP: a collision)."""
    region = ec2.meta.region_name
    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=_tag("vpc", vpc_name))["Vpc"]["VpcId"]
    out = VipVpc(region, vpc_id)
    for name, cidr, az, _ in SUBNETS:
        out.subnets[name] = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{region}{az}", TagSpecifications=_tag("subnet", name)
        )["Subnet"]["SubnetId"]
    out.igw_id = ec2.create_internet_gateway(TagSpecifications=_tag("internet-gateway", f"{vpc_name}-igw"))[
        "InternetGateway"
    ]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=out.igw_id, VpcId=vpc_id)
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]["RouteTableId"]
    ec2.create_tags(Resources=[main], Tags=[{"Key": "Name", "Value": "Main"}])
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=out.igw_id)
    out.tables["Main"] = main
    for name, _, _, table in SUBNETS:
        if table == "Main":
            continue
        out.tables[table] = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_tag("route-table", table))[
            "RouteTable"
        ]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=out.tables[table], SubnetId=out.subnets[name])
    for i in range(extra_tables):
        name = f"Route-X{i:03d}"
        out.tables[name] = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_tag("route-table", name))[
            "RouteTable"
        ]["RouteTableId"]
    for host, subnet, address in (*NODES, CLIENT):
        eni = ec2.create_network_interface(
            SubnetId=out.subnets[subnet],
            PrivateIpAddress=address,
            TagSpecifications=_tag("network-interface", f"{host}-eni"),
        )["NetworkInterface"]["NetworkInterfaceId"]
        out.enis[host] = eni
        if host != CLIENT[0]:
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": source_dest_check})
        if with_instances:
            out.instances[host] = ec2.run_instances(
                ImageId=image_id,
                MinCount=1,
                MaxCount=1,
                InstanceType="t3.micro",
                NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": eni}],
                TagSpecifications=_tag("instance", host),
            )["Instances"][0]["InstanceId"]
    for table in out.tables.values():
        ec2.create_route(RouteTableId=table, DestinationCidrBlock=f"{vip}/32", NetworkInterfaceId=out.enis["node1"])
    if transit_gateway:
        _build_tgw(ec2, out, vpc_name)
    if collision_vpc:
        other = ec2.create_vpc(CidrBlock="10.1.0.0/16", TagSpecifications=_tag("vpc", f"{vpc_name}-other"))["Vpc"][
            "VpcId"
        ]
        subnet = ec2.create_subnet(VpcId=other, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
        eni = ec2.create_network_interface(
            SubnetId=subnet, TagSpecifications=_tag("network-interface", "other-node-eni")
        )["NetworkInterface"]["NetworkInterfaceId"]
        table = ec2.create_route_table(VpcId=other, TagSpecifications=_tag("route-table", "Other-RT"))["RouteTable"][
            "RouteTableId"
        ]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock=f"{vip}/32", NetworkInterfaceId=eni)
        out.collision_vpc_id, out.collision_table_id = other, table
    return out


def _build_tgw(ec2: Any, out: VipVpc, vpc_name: str) -> None:
    """Section 5: a TGW with default association/propagation and the VPC's attachment."""
    tgw = ec2.create_transit_gateway(
        Description="vip",
        Options={"DefaultRouteTableAssociation": "enable", "DefaultRouteTablePropagation": "enable"},
        TagSpecifications=_tag("transit-gateway", f"{vpc_name}-tgw"),
    )["TransitGateway"]
    out.tgw_id = tgw["TransitGatewayId"]
    table = ec2.describe_transit_gateways(TransitGatewayIds=[out.tgw_id])["TransitGateways"][0]["Options"].get(
        "AssociationDefaultRouteTableId"
    )
    if not table:
        table = ec2.create_transit_gateway_route_table(TransitGatewayId=out.tgw_id)["TransitGatewayRouteTable"][
            "TransitGatewayRouteTableId"
        ]
    ec2.create_tags(Resources=[table], Tags=[{"Key": "Name", "Value": f"{vpc_name}-tgw-rt"}])
    out.tgw_route_table_id = table
    out.tgw_attachment_id = ec2.create_transit_gateway_vpc_attachment(
        TransitGatewayId=out.tgw_id,
        VpcId=out.vpc_id,
        SubnetIds=[out.subnets["Subnet-2a"], out.subnets["Subnet-2c"]],
        TagSpecifications=_tag("transit-gateway-attachment", f"{vpc_name}-attach"),
    )["TransitGatewayVpcAttachment"]["TransitGatewayAttachmentId"]


def node_role(iam: Any, ec2: Any, built: VipVpc, policy: dict[str, Any], *, role: str = "vip-node") -> str:
    """An instance role with ``policy``, its instance profile associated with every node. Returns the role ARN."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName=f"{role}-policy", PolicyDocument=json.dumps(policy))
    profile = iam.create_instance_profile(InstanceProfileName=role)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
    for host, _, _ in NODES:
        if host in built.instances:
            ec2.associate_iam_instance_profile(
                IamInstanceProfile={"Arn": profile["Arn"], "Name": role}, InstanceId=built.instances[host]
            )
    return str(arn)


def inventory_document(
    endpoint_url: str,
    credentials_file: str,
    *,
    region: str = "ap-northeast-1",
    vips: list[dict[str, Any]] | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """A whole inventory (two placeholder sites) whose ``vips`` default to section 4's VIP."""
    aws: dict[str, Any] = {
        "region": region,
        "endpoint_url": endpoint_url,
        "credentials_file": credentials_file,
        "max_attempts": 4,
    }
    if profile:
        aws["profile"] = profile
    gateway = {"ssh": {"host": "placeholder.example"}, "hub": "BRIDGE"}
    return {
        "version": 1,
        "name": "vip-test",
        "transit": {"cidr": "192.168.10.0/24"},
        "aws": aws,
        "sites": [
            {
                "name": "home",
                "kind": "onprem",
                "networks": [{"name": "lan", "cidr": "192.168.1.0/24"}],
                "gateway": {
                    **gateway,
                    "name": "vpnserver",
                    "role": "vpn-server",
                    "private_ip": "192.168.1.250",
                    "public_address": "198.51.100.10",
                    "hub": "DEFAULT",
                    "lan_device": "eth1",
                    "switch_address": "192.168.1.249/24",
                },
            },
            {
                "name": "aws",
                "kind": "aws",
                "vpc": "Hybrid-VPC",
                "route_tables": [{"name": "Hybrid-RT"}],
                "networks": [{"name": "Hybrid-Subnet", "cidr": "192.168.20.0/24", "route_table": "Hybrid-RT"}],
                "gateway": {
                    **gateway,
                    "name": "aws-bridge",
                    "role": "vpn-bridge",
                    "private_ip": "192.168.20.100",
                    "public_address": "198.51.100.20",
                    "eni": "aws-bridge-eni",
                    "tap": "vpntap",
                },
            },
        ],
        "vips": vips
        if vips is not None
        else [
            {
                "name": "ha-vip",
                "address": VIP,
                "vpc": "VIP-VPC",
                "nodes": [{"name": host, "eni": f"{host}-eni"} for host, _, _ in NODES],
            }
        ],
    }
