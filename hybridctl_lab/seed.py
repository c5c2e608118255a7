"""The lab's clouds as a user has them before running hybridctl: the reference VPC and VNet, bare.

Seeding goes through the emulators' real APIs (boto3 against the AWS emulator, the Azure
emulator's seeding helpers, which run the same validation as ARM requests), so the state
is exactly what those APIs would hold. Names follow ``inventory/reference.yaml``;
addresses come from :func:`hybridctl_lab.topology.build_topology` (nothing here states one).

What "bare" means, as in the source (reference.md section 1) before the overlay exists:

- AWS: VPC ``Hybrid-VPC`` (192.168.20.0/24 + associated 192.168.21.0/24), subnets
  ``Hybrid-Subnet`` (AZ a) and ``Hybrid-Subnet-Dammy`` (AZ c), route table ``Hybrid-RT``
  associated with Hybrid-Subnet only (Dammy stays on the main table), an internet gateway
  with 0.0.0.0/0 in the main table and in Hybrid-RT (a foreign route hybridctl must leave
  alone), the bridge instance whose ENI is tagged ``aws-bridge-eni`` (source/dest check on,
  as AWS creates it), one test instance per subnet, security groups ``aws-bridge-sg`` and
  ``hybrid-workloads``.
- AWS, next to it: reference.md section 4's VPC ``VIP-VPC`` (10.0.0.0/16, Subnet-1a/-2a/-2c,
  tables Main / Route-A / Route-C holding ``20.0.0.100/32 -> node1-eni``, ENIs ``client-eni``,
  ``node1-eni``, ``node2-eni`` with source/dest check off on the nodes), built by
  :func:`hybridctl_lab.vip_scenario.build`, the same builder the VIP tests and benchmark use.
- Azure: resource group ``hybrid-rg``, VNet ``Hybrid-VNet`` with ``Hybrid_Subnet`` and
  ``Hybrid_Subnet_Dammy``, NIC ``azure-bridge-nic`` (IP forwarding off) with NSG
  ``azure-bridge-nsg``, one test NIC per subnet, and no route table (hybridctl creates
  ``Hybrid-RT``).

This module is light to import (the inventory generator reads its constants); boto3 and
the emulators are only needed by the seeding functions.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridctl_lab import vip_scenario as scenario
from hybridctl_lab.topology import VIP_SITE, Host, Topology

if TYPE_CHECKING:
    from hybridctl_lab.azure_emulator import AzureEmulator

# --------------------------------------------------------------------------- names and identity

AWS_REGION = "ap-northeast-1"
AZURE_LOCATION = "japaneast"

VPC_NAME = "Hybrid-VPC"
AWS_ROUTE_TABLE = "Hybrid-RT"
AWS_IGW_NAME = "Hybrid-IGW"
AWS_BRIDGE_ENI = "aws-bridge-eni"
AWS_BRIDGE_INSTANCE = "aws-bridge"
AWS_BRIDGE_SG = "aws-bridge-sg"
AWS_WORKLOAD_SG = "hybrid-workloads"
# Any id works (moto does not validate AMIs by default); this one just reads like Debian 12.
AWS_IMAGE_ID = "ami-0d52744d6551d851e"
AWS_INSTANCE_TYPE = "t3.micro"
VIP_VPC_NAME = "VIP-VPC"  # reference.md section 4 (inventory/vip-lab.yaml names it)
# Lab site -> the Name tag of the VPC standing behind its fabric (the reconciler's lookup);
# extra sites (s1, s2, ...) have theirs from :func:`aws_site_names`.
AWS_VPC_NAMES = {"aws": VPC_NAME, VIP_SITE: VIP_VPC_NAME}

AZURE_RESOURCE_GROUP = "hybrid-rg"
AZURE_VNET = "Hybrid-VNet"
AZURE_ROUTE_TABLE = "Hybrid-RT"  # not seeded: hybridctl creates it
AZURE_BRIDGE_NIC = "azure-bridge-nic"
AZURE_BRIDGE_NSG = "azure-bridge-nsg"

# Dummy AWS keys: the emulator accepts any and serves account 123456789012. Not secrets.
AWS_ACCESS_KEY_ID = "AKIAHYBRIDCTLLAB0000"
AWS_SECRET_ACCESS_KEY = "hybridctl-lab-dummy-secret-key-not-a-secret"

# Pinned Azure identity, so the committed inventory/lab.yaml stays valid across labs
# (the emulator would otherwise make random ids on first start). The client *secret* is
# not pinned: it is generated per lab directory into LAB_DIR/azure/client_secret (0600).
_ID_NAMESPACE = uuid.UUID("6f0a3a52-8f1e-4c55-9f4e-2b1d7c6e0a11")
AZURE_SUBSCRIPTION_ID = str(uuid.uuid5(_ID_NAMESPACE, "subscription"))
AZURE_TENANT_ID = str(uuid.uuid5(_ID_NAMESPACE, "tenant"))
AZURE_CLIENT_ID = str(uuid.uuid5(_ID_NAMESPACE, "client"))

AWS_DIR = "aws"
AZURE_DIR = "azure"
AWS_CREDENTIALS = "aws/credentials"
AZURE_CLIENT_SECRET = "azure/client_secret"
AZURE_CA_BUNDLE = "azure/tls/ca.pem"


@dataclass(frozen=True)
class AwsSiteNames:
    """The Name tags of one AWS overlay site's resources (the reference site's, or an extra site's)."""

    vpc: str
    route_table: str
    igw: str
    bridge_eni: str
    bridge_instance: str
    bridge_sg: str
    workload_sg: str


def aws_site_names(site: str) -> AwsSiteNames:
    """``aws``: the reference names (Hybrid-VPC, aws-bridge-eni, ...); an extra site ``s3``:
    the same pattern under its own name (S3-VPC, s3-bridge-eni, ...), so N sites never share one."""
    if site == "aws":
        return AwsSiteNames(
            VPC_NAME, AWS_ROUTE_TABLE, AWS_IGW_NAME, AWS_BRIDGE_ENI, AWS_BRIDGE_INSTANCE, AWS_BRIDGE_SG, AWS_WORKLOAD_SG
        )
    up = site.upper()
    return AwsSiteNames(
        f"{up}-VPC",
        f"{up}-RT",
        f"{up}-IGW",
        f"{site}-bridge-eni",
        f"{site}-bridge",
        f"{site}-bridge-sg",
        f"{site}-workloads",
    )


def aws_vpc_name(site: str) -> str:
    """The Name tag of the VPC behind lab site ``site``'s fabric."""
    return AWS_VPC_NAMES.get(site) or aws_site_names(site).vpc


def short_name(host: Host) -> str:
    """hl-aws-h20 -> aws-h20: the cloud resource / inventory name of a lab host."""
    return host.name.removeprefix("hl-")


def aws_instance_name(host: Host) -> str:
    return aws_site_names(host.site).bridge_instance if host.role == "bridge" else short_name(host)


def azure_nic_name(host: Host) -> str:
    return AZURE_BRIDGE_NIC if host.role == "bridge" else f"{short_name(host)}-nic"


# --------------------------------------------------------------------------- credential files


@dataclass(frozen=True)
class CredentialFiles:
    aws_credentials: Path
    azure_client_secret: Path

    def read_azure_secret(self) -> str:
        return self.azure_client_secret.read_text().strip()


def _private_file(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def ensure_credentials(lab_dir: Path) -> CredentialFiles:
    """Write LAB_DIR/aws/credentials (dummy keys) and, once, LAB_DIR/azure/client_secret (0600).

    The inventory references them (``aws.credentials_file``, ``azure.client_secret: file:``);
    the secret never appears in argv or logs: the daemon reads the same file.
    """
    aws = lab_dir / AWS_CREDENTIALS
    _private_file(
        aws,
        "# hybridctl lab: dummy keys for the AWS emulator (it accepts any)\n"
        f"[default]\naws_access_key_id = {AWS_ACCESS_KEY_ID}\naws_secret_access_key = {AWS_SECRET_ACCESS_KEY}\n",
    )
    azure = lab_dir / AZURE_CLIENT_SECRET
    if not azure.is_file() or not azure.read_text().strip():
        _private_file(azure, secrets.token_urlsafe(32) + "\n")
    else:
        os.chmod(azure, 0o600)
    return CredentialFiles(aws, azure)


# --------------------------------------------------------------------------- AWS


@dataclass
class AwsSeed:
    """Ids of what :func:`seed_aws` created (tests and the reconciler's notes use them)."""

    vpc_id: str = ""
    subnet_ids: dict[str, str] = field(default_factory=dict)  # subnet name -> id
    main_route_table_id: str = ""
    route_table_id: str = ""  # Hybrid-RT
    igw_id: str = ""
    security_groups: dict[str, str] = field(default_factory=dict)  # group name -> id
    bridge_eni_id: str = ""
    instances: dict[str, str] = field(default_factory=dict)  # Name tag -> instance id


def _tags(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def seed_aws(ec2: Any, topology: Topology, site_name: str = "aws") -> AwsSeed:
    """Create the bare reference VPC through the EC2 API (``ec2`` is a boto3 EC2 client).

    ``site_name``: an extra site (s1, ...) is seeded the same way under its own names
    (:func:`aws_site_names`), so every site costs hybridctl the same calls."""
    site = topology.site(site_name)
    names = aws_site_names(site_name)
    subnets = site.subnets
    out = AwsSeed()
    vpc = ec2.create_vpc(CidrBlock=str(site.networks[0]), TagSpecifications=_tags("vpc", names.vpc))["Vpc"]
    out.vpc_id = vpc["VpcId"]
    for extra in site.networks[1:]:
        ec2.associate_vpc_cidr_block(VpcId=out.vpc_id, CidrBlock=str(extra))
    zones = ("a", "c", "d")  # the source puts Dammy in another AZ
    for i, subnet in enumerate(subnets):
        created = ec2.create_subnet(
            VpcId=out.vpc_id,
            CidrBlock=str(subnet.cidr),
            AvailabilityZone=AWS_REGION + zones[i % len(zones)],
            TagSpecifications=_tags("subnet", subnet.name),
        )["Subnet"]
        out.subnet_ids[subnet.name] = created["SubnetId"]

    igw = ec2.create_internet_gateway(TagSpecifications=_tags("internet-gateway", names.igw))["InternetGateway"]
    out.igw_id = igw["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=out.igw_id, VpcId=out.vpc_id)
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [out.vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]
    out.main_route_table_id = main["RouteTableId"]
    ec2.create_route(RouteTableId=out.main_route_table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=out.igw_id)
    table = ec2.create_route_table(VpcId=out.vpc_id, TagSpecifications=_tags("route-table", names.route_table))
    out.route_table_id = table["RouteTable"]["RouteTableId"]
    # A foreign route in the table hybridctl manages: it must leave it alone.
    ec2.create_route(RouteTableId=out.route_table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=out.igw_id)
    # As in the source: only Hybrid-Subnet is associated; Dammy stays on the main table.
    ec2.associate_route_table(RouteTableId=out.route_table_id, SubnetId=out.subnet_ids[subnets[0].name])

    for name, why in ((names.bridge_sg, "SoftEther bridge"), (names.workload_sg, "hybrid workloads")):
        group = ec2.create_security_group(
            GroupName=name, Description=why, VpcId=out.vpc_id, TagSpecifications=_tags("security-group", name)
        )
        out.security_groups[name] = group["GroupId"]
    # How the user reaches the bridge today (a foreign rule hybridctl leaves alone).
    ec2.authorize_security_group_ingress(
        GroupId=out.security_groups[names.bridge_sg],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh (lab seed)"}],
            }
        ],
    )

    subnet_of = {s.cidr: out.subnet_ids[s.name] for s in subnets}
    for host in topology.hosts_of(site_name):
        nic = host.nics[0]
        assert nic.address is not None
        subnet_id = subnet_of[nic.address.network]
        if host.role == "bridge":
            eni = ec2.create_network_interface(
                SubnetId=subnet_id,
                PrivateIpAddress=str(nic.address.ip),
                Groups=[out.security_groups[names.bridge_sg]],
                Description="SoftEther VPN Bridge",
                TagSpecifications=_tags("network-interface", names.bridge_eni),
            )["NetworkInterface"]
            out.bridge_eni_id = eni["NetworkInterfaceId"]
            interfaces: list[dict[str, Any]] = [{"DeviceIndex": 0, "NetworkInterfaceId": out.bridge_eni_id}]
        else:
            interfaces = [
                {
                    "DeviceIndex": 0,
                    "SubnetId": subnet_id,
                    "PrivateIpAddress": str(nic.address.ip),
                    "Groups": [out.security_groups[names.workload_sg]],
                }
            ]
        name = aws_instance_name(host)
        reservation = ec2.run_instances(
            ImageId=AWS_IMAGE_ID,
            InstanceType=AWS_INSTANCE_TYPE,
            MinCount=1,
            MaxCount=1,
            NetworkInterfaces=interfaces,
            TagSpecifications=_tags("instance", name),
        )
        out.instances[name] = reservation["Instances"][0]["InstanceId"]
    return out


def extra_site_names(topology: Topology) -> tuple[str, ...]:
    """The extra AWS sites of ``topology`` (s1, s2, ...): the cloud sites beyond the reference ones."""
    reference = {"aws", "azure", VIP_SITE}
    return tuple(s.name for s in topology.cloud_sites if s.name not in reference)


def seed_extra_sites(ec2: Any, topology: Topology) -> dict[str, AwsSeed]:
    """Seed every extra site's VPC bare, as :func:`seed_aws` seeds the reference one."""
    return {name: seed_aws(ec2, topology, name) for name in extra_site_names(topology)}


VIP_NODE_ROLE = "vip-node"  # the role and its instance profile, one name (as the console makes them)
# Reference section 4: each node's instance role allows ec2:Describe* and ec2:ReplaceRoute.
# ec2:CreateRoute too: hybridctl's agent puts a lost VIP route back on start (hybridctl.features.vip.iam
# VIP_NODE), and `doctor` simulates exactly those calls.
VIP_NODE_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["ec2:ReplaceRoute", "ec2:CreateRoute"], "Resource": "*"},
    ],
}


def seed_vip(ec2: Any, iam: Any, topology: Topology) -> scenario.VipVpc:
    """Create reference section 4's VPC (``VIP-VPC``) with :func:`hybridctl_lab.vip_scenario.build`.

    The VIP nodes' source/dest check is off and the VIP routes to node1, as the seeds'
    cluster leaves it after setup: the VIP answers from the first ``lab up``. Each node's
    instance has the ``vip-node`` instance profile associated (state ``associated``), its role
    allowing :data:`VIP_NODE_POLICY`, so ``hybridctl doctor -i inventory/vip-lab.yaml --no-overlay`` finds
    what the seeds' nodes have. The topology's ``vip`` site is derived from the same scenario
    constants; a mismatch is a bug, caught here.
    """
    site = topology.site(VIP_SITE)
    want = {(s.name, str(s.cidr)) for s in site.subnets}
    if want != {(name, cidr) for name, cidr, _az, _table in scenario.SUBNETS}:  # pragma: no cover - derived
        raise ValueError("the lab's vip site and hybridctl_lab.vip_scenario disagree on the subnets")
    # With instances (~0.1 s of the ~0.3 s this costs): the nodes are instances in the seeds,
    # and `vip` / `doctor` look at the ENIs' attachments and the instances' profiles.
    built = scenario.build(ec2, vpc_name=VIP_VPC_NAME, source_dest_check=False, with_instances=True)
    scenario.node_role(iam, ec2, built, VIP_NODE_POLICY, role=VIP_NODE_ROLE)
    return built


# --------------------------------------------------------------------------- Azure


@dataclass
class AzureSeed:
    resource_group_id: str = ""
    vnet_id: str = ""
    subnet_ids: dict[str, str] = field(default_factory=dict)  # subnet name -> ARM id
    nsg_id: str = ""
    nic_ids: dict[str, str] = field(default_factory=dict)  # NIC name -> ARM id


def seed_azure(emulator: AzureEmulator, topology: Topology) -> AzureSeed:
    """Create the bare reference VNet with the emulator's seeding helpers (ARM validation applies)."""
    site = topology.site("azure")
    rg, loc = AZURE_RESOURCE_GROUP, AZURE_LOCATION
    out = AzureSeed()
    out.resource_group_id = str(emulator.create_resource_group(rg, loc)["id"])
    nsg = emulator.create_network_security_group(
        rg,
        AZURE_BRIDGE_NSG,
        loc,
        rules=[
            {
                "name": "ssh-lab-seed",
                "protocol": "Tcp",
                "sourcePortRange": "*",
                "destinationPortRange": "22",
                "sourceAddressPrefix": "*",
                "destinationAddressPrefix": "*",
                "access": "Allow",
                "priority": 1000,
                "direction": "Inbound",
                "description": "how the user reaches the bridge today (a foreign rule)",
            }
        ],
    )
    out.nsg_id = str(nsg["id"])
    vnet = emulator.create_virtual_network(
        rg,
        AZURE_VNET,
        loc,
        [str(n) for n in site.networks],
        subnets={s.name: str(s.cidr) for s in site.subnets},
    )
    out.vnet_id = str(vnet["id"])
    out.subnet_ids = {s.name: f"{out.vnet_id}/subnets/{s.name}" for s in site.subnets}
    subnet_of = {s.cidr: out.subnet_ids[s.name] for s in site.subnets}
    for host in topology.hosts_of("azure"):
        nic = host.nics[0]
        assert nic.address is not None
        name = azure_nic_name(host)
        properties: dict[str, Any] = {
            "enableIPForwarding": False,  # as Azure creates a NIC; the bridge needs it on
            "ipConfigurations": [
                {
                    "name": "ipconfig1",
                    "properties": {
                        "subnet": {"id": subnet_of[nic.address.network]},
                        "privateIPAllocationMethod": "Static",
                        "privateIPAddress": str(nic.address.ip),
                        "primary": True,
                    },
                }
            ],
        }
        if host.role == "bridge":
            properties["networkSecurityGroup"] = {"id": out.nsg_id}
        created = emulator.put(
            emulator.network_id(rg, "networkInterfaces", name), {"location": loc, "properties": properties}
        )
        out.nic_ids[name] = str(created["id"])
    return out
