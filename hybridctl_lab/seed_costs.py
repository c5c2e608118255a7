"""The lab's bill: a few forgotten resources in each cloud and some weeks of spend, for `cost` and `leaks`.

Runs after :mod:`hybridctl_lab.seed` built the bare clouds, through the same real APIs (boto3
against the AWS emulator; the ARM emulator's request path for Azure), plus the two things no
public API can do: the spend itself (billing data: :meth:`AwsEmulator.seed_cost_usage`,
:func:`extensions.seed_costs`) and a disk attached to the bridge VM, which the emulator has no
VM for (:func:`extensions.attach_disk`, what a VM attach leaves).

Leaks (what `hybridctl leaks` must find): an Elastic IP associated with nothing, a 20 GiB volume
attached to nothing, a stopped instance ``lab-stopped`` holding its volume; in Azure a Standard
public IP and a 32 GiB disk attached to nothing. In use (must not be listed): the bridge's
Elastic IP (associated with its ENI) and the bridge VM's OS disk.

Spend: :data:`DAYS` days up to yesterday, per resource, at list prices (AWS in USD, Azure in
JPY), split between what hybridctl manages (the bridge instance / VM, its volume and address)
and the rest (test hosts, the leaks).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hybridctl_lab import seed
from hybridctl_lab.azure_emulator import extensions

DAYS = 20
AWS_IDLE_EIP = "lab-idle-eip"
AWS_BRIDGE_EIP = "aws-bridge-eip"
AWS_IDLE_VOLUME = "lab-idle-volume"
AWS_STOPPED = "lab-stopped"
AZURE_IDLE_IP = "lab-idle-pip"
AZURE_IDLE_DISK = "lab-idle-disk"
AZURE_BRIDGE_DISK = "azure-bridge-osdisk"
AZURE_BRIDGE_VM = "azure-bridge"  # the gateway's name: `cost` counts the VM of that name as hybridctl's
AZURE_CURRENCY = "JPY"

EC2 = "Amazon Elastic Compute Cloud - Compute"
EBS = "EC2 - Other"
VPC = "Amazon Virtual Private Cloud"


@dataclass
class CostSeed:
    aws: dict[str, str] = field(default_factory=dict)  # name -> id
    azure: dict[str, str] = field(default_factory=dict)


def _name(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def seed_aws_leaks(ec2: Any, aws: seed.AwsSeed) -> dict[str, str]:
    out: dict[str, str] = {}
    bridge = ec2.allocate_address(Domain="vpc", TagSpecifications=_name("elastic-ip", AWS_BRIDGE_EIP))
    ec2.associate_address(AllocationId=bridge["AllocationId"], NetworkInterfaceId=aws.bridge_eni_id)
    out[AWS_BRIDGE_EIP] = bridge["AllocationId"]
    idle = ec2.allocate_address(Domain="vpc", TagSpecifications=_name("elastic-ip", AWS_IDLE_EIP))
    out[AWS_IDLE_EIP] = idle["AllocationId"]
    volume = ec2.create_volume(
        AvailabilityZone=seed.AWS_REGION + "a",
        Size=20,
        VolumeType="gp3",
        TagSpecifications=_name("volume", AWS_IDLE_VOLUME),
    )
    out[AWS_IDLE_VOLUME] = volume["VolumeId"]
    subnet = next(iter(aws.subnet_ids.values()))
    reservation = ec2.run_instances(
        ImageId=seed.AWS_IMAGE_ID,
        InstanceType=seed.AWS_INSTANCE_TYPE,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        TagSpecifications=_name("instance", AWS_STOPPED),
    )
    instance = reservation["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance])
    out[AWS_STOPPED] = instance
    return out


def seed_azure_leaks(emulator: Any) -> dict[str, str]:
    rg, loc = seed.AZURE_RESOURCE_GROUP, seed.AZURE_LOCATION
    out = {
        AZURE_IDLE_IP: str(extensions.create_public_ip(emulator, rg, AZURE_IDLE_IP, loc)["id"]),
        AZURE_IDLE_DISK: str(extensions.create_disk(emulator, rg, AZURE_IDLE_DISK, loc, size_gb=32)["id"]),
    }
    os_disk = extensions.create_disk(emulator, rg, AZURE_BRIDGE_DISK, loc, size_gb=30, sku="Premium_LRS")
    vm_id = f"{emulator.arm.rg_id(rg)}/providers/Microsoft.Compute/virtualMachines/{AZURE_BRIDGE_VM}"
    extensions.attach_disk(emulator.arm, str(os_disk["id"]), vm_id)
    out[AZURE_BRIDGE_DISK] = str(os_disk["id"])
    out[AZURE_BRIDGE_VM] = vm_id
    return out


def _root_volumes(ec2: Any, instance_ids: list[str]) -> dict[str, str]:
    """instance id -> its first EBS volume id."""
    out = {}
    for reservation in ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]:
        for instance in reservation["Instances"]:
            for mapping in instance.get("BlockDeviceMappings") or []:
                if (mapping.get("Ebs") or {}).get("VolumeId"):
                    out[instance["InstanceId"]] = mapping["Ebs"]["VolumeId"]
                    break
    return out


def aws_line_items(
    aws: seed.AwsSeed, leaks: dict[str, str], roots: dict[str, str], today: dt.date, days: int = DAYS
) -> list[dict[str, Any]]:
    """Per day and resource, at list prices (t3.micro, gp3, public IPv4) in the lab's region."""
    region = seed.AWS_REGION
    compute = {aws.instances[seed.AWS_BRIDGE_INSTANCE]: "0.3264"}  # t3.micro 0.0136/h
    compute.update({i: "0.3264" for n, i in aws.instances.items() if n != seed.AWS_BRIDGE_INSTANCE})
    storage = {volume: "0.0256" for volume in roots.values()}  # 8 GiB gp3 at 0.096/GB-month
    storage[leaks[AWS_IDLE_VOLUME]] = "0.064"
    addresses = {leaks[AWS_BRIDGE_EIP]: "0.12", leaks[AWS_IDLE_EIP]: "0.12"}  # 0.005/h
    items = []
    for n in range(1, days + 1):
        day = (today - dt.timedelta(days=n)).isoformat()
        for service, costs in ((EC2, compute), (EBS, storage), (VPC, addresses)):
            for resource, amount in costs.items():
                items.append(
                    {"date": day, "amount": amount, "service": service, "region": region, "resource_id": resource}
                )
    return items


def azure_rows(subscription_id: str, leaks: dict[str, str], today: dt.date, days: int = DAYS) -> list[dict[str, Any]]:
    rg = f"/subscriptions/{subscription_id}/resourceGroups/{seed.AZURE_RESOURCE_GROUP}"
    vnet = f"{rg}/providers/Microsoft.Network/virtualNetworks/{seed.AZURE_VNET}"
    daily = [
        ("Virtual Machines", leaks[AZURE_BRIDGE_VM], 62),  # B1s
        ("Storage", leaks[AZURE_BRIDGE_DISK], 18),
        ("Storage", leaks[AZURE_IDLE_DISK], 14),
        ("Virtual Network", leaks[AZURE_IDLE_IP], 19),
        ("Bandwidth", vnet, 4),
    ]
    return [
        {
            "date": (today - dt.timedelta(days=n)).isoformat(),
            "cost": cost,
            "service": service,
            "resource_id": resource,
            "location": seed.AZURE_LOCATION,
            "currency": AZURE_CURRENCY,
        }
        for n in range(1, days + 1)
        for service, resource, cost in daily
    ]


def seed_costs(
    ec2: Any, aws_emulator: Any, azure_emulator: Any, aws: seed.AwsSeed, today: dt.date | None = None
) -> CostSeed:
    """The leaks in both clouds and the spend of the last :data:`DAYS` days."""
    today = today or dt.datetime.now(dt.UTC).date()
    out = CostSeed(seed_aws_leaks(ec2, aws), seed_azure_leaks(azure_emulator))
    roots = _root_volumes(ec2, sorted(aws.instances.values()))
    aws_emulator.seed_cost_usage(aws_line_items(aws, out.aws, roots, today))
    extensions.seed_costs(azure_emulator.arm, azure_rows(azure_emulator.subscription_id, out.azure, today))
    return out


__all__ = ["DAYS", "CostSeed", "seed_costs"]
