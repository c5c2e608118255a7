"""Pure detection of resources that bill while doing nothing, from the clouds' own describe answers.

Each rule lists a resource only when the answer itself shows it unused: an Elastic IP without
an association, a volume in state ``available``, a stopped instance (not one the inventory
declares) that still holds volumes, a NAT gateway no route of its VPC points at, a load balancer
whose target groups have no registered target (or that has none), a snapshot older than the
cut-off that no image of the account uses; in Azure a public IP without an IP configuration or
NAT gateway, and a managed disk in state ``Unattached``. Anything else is left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hybridctl.backends.clouds import name_of, tags
from hybridctl.features.cost import prices
from hybridctl.features.cost.models import Leak

MANAGED = ("managed-by", "hybridctl")


def _managed(obj_tags: Mapping[str, str]) -> bool:
    return obj_tags.get(MANAGED[0]) == MANAGED[1]


def _age_days(value: Any, now: dt.datetime) -> int:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return (now - moment).days
    return 0


@dataclass
class AwsScan:
    """What the AWS reads returned for one region (and the overlay's VPCs)."""

    region: str
    addresses: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)  # in the overlay's VPCs
    nat_gateways: list[dict[str, Any]] = field(default_factory=list)
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    load_balancers: list[dict[str, Any]] = field(default_factory=list)
    target_groups: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # LB arn -> groups
    targets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # TG arn -> TargetHealthDescriptions
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    declared_instances: set[str] = field(default_factory=set)  # bridge instance ids the inventory declares


Pricer = Callable[[str, str, int | float], tuple[Decimal, str]]


def _table_price(item: str, region: str, size_gb: int | float = 0) -> tuple[Decimal, str]:
    return prices.aws_monthly(item, region, size_gb)


def aws_leaks(scan: AwsScan, *, now: dt.datetime, snapshot_days: int, price: Pricer = _table_price) -> list[Leak]:
    """``price(item, region, size_gb)``: monthly USD and its source (the Price List, else the table)."""
    region = scan.region
    where = region
    out: list[Leak] = []
    volume_by_id = {v["VolumeId"]: v for v in scan.volumes}

    for address in scan.addresses:
        if address.get("AssociationId") or address.get("NetworkInterfaceId") or address.get("InstanceId"):
            continue
        alloc = str(address.get("AllocationId") or address.get("PublicIp"))
        monthly, source = price("public_ipv4_hour", region, 0)
        out.append(
            Leak(
                "aws",
                "elastic-ip",
                alloc,
                name_of(address) or str(address.get("PublicIp", "")),
                where,
                monthly,
                "USD",
                source,
                f"Elastic IP {address.get('PublicIp')} is associated with nothing; AWS bills every public IPv4 address",
                f"aws ec2 release-address --region {region} --allocation-id {alloc}",
                _managed(tags(address)),
            )
        )

    for volume in scan.volumes:
        if volume.get("State") != "available":
            continue
        size = int(volume.get("Size") or 0)
        kind = str(volume.get("VolumeType") or "gp3")
        monthly, source = price(prices.ebs_item(kind), region, size)
        out.append(
            Leak(
                "aws",
                "volume",
                volume["VolumeId"],
                name_of(volume) or "",
                where,
                monthly,
                "USD",
                source,
                f"{size} GiB {kind} volume is attached to no instance (state available)",
                f"aws ec2 delete-volume --region {region} --volume-id {volume['VolumeId']}",
                _managed(tags(volume)),
            )
        )

    ips_by_instance: dict[str, int] = {}
    for address in scan.addresses:
        if address.get("InstanceId"):
            ips_by_instance[str(address["InstanceId"])] = ips_by_instance.get(str(address["InstanceId"]), 0) + 1
    for instance in scan.instances:
        state = str((instance.get("State") or {}).get("Name"))
        instance_id = str(instance.get("InstanceId"))
        if state != "stopped" or instance_id in scan.declared_instances:
            continue
        attached = [
            m["Ebs"]["VolumeId"]
            for m in instance.get("BlockDeviceMappings") or []
            if (m.get("Ebs") or {}).get("VolumeId")
        ]
        if not attached:
            continue
        monthly = Decimal(0)
        source = prices.SOURCE
        sizes = []
        for volume_id in attached:
            volume = volume_by_id.get(volume_id, {})
            size = int(volume.get("Size") or 0)
            sizes.append(f"{volume_id} ({size} GiB)")
            cost, source = price(prices.ebs_item(str(volume.get("VolumeType") or "gp3")), region, size)
            monthly += cost
        ip_cost, _ = price("public_ipv4_hour", region, 0)
        monthly += ip_cost * ips_by_instance.get(instance_id, 0)
        out.append(
            Leak(
                "aws",
                "stopped-instance",
                instance_id,
                name_of(instance) or "",
                where,
                monthly,
                "USD",
                source,
                f"instance is stopped but still holds {', '.join(sizes)}, billed while it computes nothing",
                f"aws ec2 terminate-instances --region {region} --instance-ids {instance_id}",
                _managed(tags(instance)),
            )
        )

    routed: set[str] = set()
    for table in scan.route_tables:
        for route in table.get("Routes") or []:
            if route.get("NatGatewayId"):
                routed.add(str(route["NatGatewayId"]))
    for nat in scan.nat_gateways:
        if nat.get("State") not in ("available", "pending") or nat["NatGatewayId"] in routed:
            continue
        monthly, source = price("nat_gateway_hour", region, 0)
        out.append(
            Leak(
                "aws",
                "nat-gateway",
                nat["NatGatewayId"],
                name_of(nat) or "",
                where,
                monthly,
                "USD",
                source,
                f"no route of {nat.get('VpcId')} sends traffic to this NAT gateway; it bills by the hour",
                f"aws ec2 delete-nat-gateway --region {region} --nat-gateway-id {nat['NatGatewayId']}",
                _managed(tags(nat)),
            )
        )

    for lb in scan.load_balancers:
        arn = str(lb["LoadBalancerArn"])
        groups = scan.target_groups.get(arn, [])
        registered = sum(len(scan.targets.get(str(g["TargetGroupArn"]), [])) for g in groups)
        if registered:
            continue
        item = "nlb_hour" if lb.get("Type") == "network" else "alb_hour"
        monthly, source = price(item, region, 0)
        why = "has no target group" if not groups else "none of its target groups has a registered target"
        out.append(
            Leak(
                "aws",
                "load-balancer",
                arn,
                str(lb.get("LoadBalancerName", "")),
                where,
                monthly,
                "USD",
                source,
                f"load balancer {why}: nothing behind it",
                f"aws elbv2 delete-load-balancer --region {region} --load-balancer-arn {arn}",
                False,
            )
        )

    in_images = {
        str((m.get("Ebs") or {}).get("SnapshotId"))
        for image in scan.images
        for m in image.get("BlockDeviceMappings") or []
        if (m.get("Ebs") or {}).get("SnapshotId")
    }
    for snap in scan.snapshots:
        age = _age_days(snap.get("StartTime"), now)
        if age < snapshot_days or snap["SnapshotId"] in in_images or snap.get("State") != "completed":
            continue
        size = int(snap.get("VolumeSize") or 0)
        monthly, source = price("ebs_snapshot_gb", region, size)
        out.append(
            Leak(
                "aws",
                "snapshot",
                snap["SnapshotId"],
                name_of(snap) or "",
                where,
                monthly,
                "USD",
                source + "; at most: snapshots are incremental",
                f"snapshot is {age} days old (over {snapshot_days}) and no image of the account uses it",
                f"aws ec2 delete-snapshot --region {region} --snapshot-id {snap['SnapshotId']}",
                _managed(tags(snap)),
            )
        )
    return out


def azure_leaks(
    resource_group: str, public_ips: Iterable[dict[str, Any]], disks: Iterable[dict[str, Any]]
) -> list[Leak]:
    out: list[Leak] = []
    for ip in public_ips:
        props = ip.get("properties") or {}
        if props.get("ipConfiguration") or props.get("natGateway"):
            continue
        sku = str((ip.get("sku") or {}).get("name") or "Basic")
        if sku.lower() == "basic" and str(props.get("publicIPAllocationMethod", "")).lower() == "dynamic":
            continue  # a dynamic Basic address without a configuration holds no address and bills nothing
        item = "public_ip_standard_hour" if sku.lower() == "standard" else "public_ip_basic_hour"
        monthly, source = prices.azure_monthly(item, str(ip.get("location", "")))
        out.append(
            Leak(
                "azure",
                "public-ip",
                str(ip["id"]),
                str(ip["name"]),
                resource_group,
                monthly,
                "USD",
                source,
                f"{sku} public IP {props.get('ipAddress', '')} is attached to no NIC, load balancer or NAT gateway",
                f"az network public-ip delete --resource-group {resource_group} --name {ip['name']}",
                _managed(ip.get("tags") or {}),
            )
        )
    for disk in disks:
        props = disk.get("properties") or {}
        if disk.get("managedBy") or str(props.get("diskState", "")).lower() != "unattached":
            continue
        size = int(props.get("diskSizeGB") or 0)
        sku = str((disk.get("sku") or {}).get("name") or "Standard_LRS")
        monthly, source = prices.azure_monthly(prices.azure_disk_item(sku), str(disk.get("location", "")), size)
        out.append(
            Leak(
                "azure",
                "disk",
                str(disk["id"]),
                str(disk["name"]),
                resource_group,
                monthly,
                "USD",
                source,
                f"{size} GiB {sku} managed disk is attached to no VM (diskState Unattached)",
                f"az disk delete --resource-group {resource_group} --name {disk['name']} --yes",
                _managed(disk.get("tags") or {}),
            )
        )
    return out


def select(leaks: Iterable[Leak], names: Collection[str]) -> tuple[list[Leak], list[str]]:
    """The leaks ``names`` designate (by id, name, or the last segment of an ARM id), and the names matching none."""
    chosen: list[Leak] = []
    unknown: list[str] = []
    pool = list(leaks)
    for name in names:
        low = name.lower()
        found = [
            leak for leak in pool if low in (leak.id.lower(), leak.name.lower(), leak.id.rsplit("/", 1)[-1].lower())
        ]
        if not found:
            unknown.append(name)
        for leak in found:
            if leak not in chosen:
                chosen.append(leak)
    return chosen, unknown


__all__ = ["AwsScan", "aws_leaks", "azure_leaks", "select"]
