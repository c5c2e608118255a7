"""What `hybridctl cost` and `hybridctl leaks` do, without rendering: read, parse, decide.

Scope is the overlay's: its AWS region(s) and VPCs, its Azure resource groups. "Managed" is what
hybridctl manages: anything tagged ``managed-by=hybridctl``, the bridge gateways the inventory
declares (instance, ENI, their volumes and public addresses; the Azure NIC, its VM and public IPs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hybridctl.backends.calls import CallCounter
from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.models import AwsSettings, Inventory, Site
from hybridctl.core.secrets import SecretStore
from hybridctl.features.cost import parse
from hybridctl.features.cost.aws import AwsCostApi
from hybridctl.features.cost.azure import COMPUTE_API, NETWORK_API, AzureCostApi
from hybridctl.features.cost.leaks import AwsScan, aws_leaks, azure_leaks
from hybridctl.features.cost.models import DEFAULT_TAG, CloudCost, Leak
from hybridctl.features.cost.pricelist import PriceBook

if TYPE_CHECKING:
    from hybridctl.core.inventory.load import LoadedInventory


def clouds_of(inventory: Inventory, wanted: str | None) -> list[str]:
    """The clouds to report: those asked for, else those the inventory has sites in."""
    have = [c for c in ("aws", "azure") if any(s.kind == c for s in inventory.sites)]
    if wanted in (None, "both"):
        return have
    return [wanted] if wanted else have


def check_clouds(loaded: LoadedInventory, clouds: Sequence[str]) -> None:
    inventory = loaded.inventory
    if "azure" in clouds and inventory.azure is None:
        raise InputError(
            [Problem(str(loaded.path), "azure", "the inventory has no azure section", "add azure.subscription_id")]
        )


def aws_settings(inventory: Inventory) -> AwsSettings:
    return inventory.aws or AwsSettings.model_validate({})


def _aws_sites(inventory: Inventory) -> list[Site]:
    return [s for s in inventory.sites if s.kind == "aws"]


def _azure_sites(inventory: Inventory) -> list[Site]:
    return [s for s in inventory.sites if s.kind == "azure"]


def _region(site: Site, inventory: Inventory, api: AwsCostApi) -> str:
    return site.region or (inventory.aws.region if inventory.aws else None) or api.region()


@dataclass
class Session:
    """The clients of one command run, made on first use; ``counter`` counts every call."""

    loaded: LoadedInventory
    secrets: SecretStore
    counter: CallCounter = field(default_factory=CallCounter)
    _aws: AwsCostApi | None = None
    _azure: AzureCostApi | None = None

    @property
    def inventory(self) -> Inventory:
        return self.loaded.inventory

    def aws(self) -> AwsCostApi:
        if self._aws is None:
            self._aws = AwsCostApi(aws_settings(self.inventory), self.counter)
        return self._aws

    def azure(self) -> AzureCostApi:
        if self._azure is None:
            assert self.inventory.azure is not None
            self._azure = AzureCostApi(self.inventory.azure, self.secrets, self.counter)
        return self._azure

    def close(self) -> None:
        for api in (self._aws, self._azure):
            if api is not None:
                api.close()


# -- what hybridctl manages ------------------------------------------------------------------------------


def _vpc_ids(api: AwsCostApi, region: str, sites: Sequence[Site]) -> list[str]:
    refs = [s.vpc for s in sites if s.vpc]
    if not refs:
        return []
    vpcs = api.api.pages_by_id_or_name(
        "ec2", "describe_vpcs", "Vpcs", region, refs, id_prefix="vpc-", id_filter="vpc-id"
    )
    return sorted({str(v["VpcId"]) for v in vpcs})


def aws_managed(api: AwsCostApi, inventory: Inventory) -> tuple[set[str], set[str]]:
    """(resource keys hybridctl manages, bridge instance ids the inventory declares)."""
    managed: set[str] = set()
    instances: set[str] = set()
    for site in _aws_sites(inventory):
        region = _region(site, inventory, api)
        gateway = site.gateway
        if gateway.eni:
            for eni in api.api.pages_by_id_or_name(
                "ec2",
                "describe_network_interfaces",
                "NetworkInterfaces",
                region,
                [gateway.eni],
                id_prefix="eni-",
                id_filter="network-interface-id",
            ):
                managed.add(str(eni["NetworkInterfaceId"]).lower())
                attachment = eni.get("Attachment") or {}
                if attachment.get("InstanceId"):
                    instances.add(str(attachment["InstanceId"]))
                association = eni.get("Association") or {}
                for key in ("AllocationId", "PublicIp"):
                    if association.get(key):
                        managed.add(str(association[key]).lower())
        if gateway.instance:
            for reservation in api.api.pages_by_id_or_name(
                "ec2",
                "describe_instances",
                "Reservations",
                region,
                [gateway.instance],
                id_prefix="i-",
                id_filter="instance-id",
            ):
                instances.update(str(i["InstanceId"]) for i in reservation.get("Instances") or [])
        if instances:
            for reservation in api.ec2("describe_instances", "Reservations", region, InstanceIds=sorted(instances)):
                for instance in reservation.get("Instances") or []:
                    managed.add(str(instance["InstanceId"]).lower())
                    for mapping in instance.get("BlockDeviceMappings") or []:
                        volume = (mapping.get("Ebs") or {}).get("VolumeId")
                        if volume:
                            managed.add(str(volume).lower())
            for address in api.ec2(
                "describe_addresses",
                "Addresses",
                region,
                Filters=[{"Name": "instance-id", "Values": sorted(instances)}],
            ):
                managed.update(str(address[k]).lower() for k in ("AllocationId", "PublicIp") if address.get(k))
        for tag in api.ec2(
            "describe_tags",
            "Tags",
            region,
            Filters=[{"Name": "key", "Values": ["managed-by"]}, {"Name": "value", "Values": ["hybridctl"]}],
        ):
            managed.add(str(tag["ResourceId"]).lower())
    return managed, instances


def azure_managed(api: AzureCostApi, inventory: Inventory) -> set[str]:
    """Ids (lower case) of what hybridctl manages in Azure.

    The bridge NIC, the VM it belongs to (its ``virtualMachine``; else the VM named as the gateway's
    ``instance`` or ``name`` in the site's group), that VM's disks, the NIC's public IPs, and
    anything tagged managed-by=hybridctl.
    """
    managed: set[str] = set()
    for site in _azure_sites(inventory):
        rg = site.resource_group
        if not rg:
            continue
        gateway = site.gateway
        vms = {
            f"{api.scope(rg)}/providers/Microsoft.Compute/virtualMachines/{gateway.instance or gateway.name}".lower()
        }
        if gateway.nic:
            nic = api.get(f"{api.scope(rg)}/providers/Microsoft.Network/networkInterfaces/{gateway.nic}", NETWORK_API)
            if nic is not None:
                managed.add(str(nic["id"]).lower())
                props = nic.get("properties") or {}
                vm = (props.get("virtualMachine") or {}).get("id")
                if vm:
                    vms.add(str(vm).lower())
                for config in props.get("ipConfigurations") or []:
                    ip = ((config.get("properties") or {}).get("publicIPAddress") or {}).get("id")
                    if ip:
                        managed.add(str(ip).lower())
        managed |= vms
        for provider, version in (
            ("Microsoft.Network/routeTables", NETWORK_API),
            ("Microsoft.Network/publicIPAddresses", NETWORK_API),
            ("Microsoft.Compute/disks", COMPUTE_API),
        ):
            for item in api.list(rg, provider, version):
                owner = str(item.get("managedBy") or "").lower()
                if (item.get("tags") or {}).get("managed-by") == "hybridctl" or (owner and owner in vms):
                    managed.add(str(item["id"]).lower())
    return managed


# -- cost ----------------------------------------------------------------------------------------------


def aws_cost(session: Session, since: dt.date, today: dt.date, group_by: str, tag_key: str) -> CloudCost:
    api = session.aws()
    start = min(since, today.replace(day=1))
    pages = api.usage(parse.aws_usage_params(start, today, [("DIMENSION", "SERVICE")]))
    totals, unit = parse.parse_aws_usage(pages)
    notes: list[str] = []
    managed, _ = aws_managed(api, session.inventory)
    services = sorted({r.service for r in totals if r.service and since <= r.day <= today})
    resources: list[Any] = []
    earliest = today - dt.timedelta(days=parse.AWS_RESOURCE_DAYS - 1)
    if services:
        window = max(since, earliest)
        flt = {"Dimensions": {"Key": "SERVICE", "Values": services}}
        resource_pages = api.usage_with_resources(
            parse.aws_usage_params(window, today, [("DIMENSION", "SERVICE"), ("DIMENSION", "RESOURCE_ID")], flt)
        )
        resources, _ = parse.parse_aws_usage(resource_pages)
        if since < earliest:
            notes.append(
                f"AWS keeps resource-level cost for 14 days: the managed split and per-resource rows cover "
                f"{earliest.isoformat()} to {today.isoformat()}"
            )
    tagged: list[Any] = []
    if group_by == "tag":
        tagged, _ = parse.parse_aws_usage(api.usage(parse.aws_usage_params(since, today, [("TAG", tag_key)])))
    forecast_rest: Decimal | None = Decimal(0)
    params = parse.aws_forecast_params(today)
    if params is not None:
        answer = api.forecast(params)
        if answer is None:
            forecast_rest = None
            notes.append("Cost Explorer has too little history to forecast this month yet")
        else:
            forecast_rest = parse.parse_aws_forecast(answer)
    report = parse.summarize(
        "aws",
        "account",
        unit,
        since,
        today,
        group_by,
        totals=totals,
        resources=resources,
        tagged=tagged,
        managed_ids=managed,
        tag_key=tag_key,
        forecast_rest=forecast_rest,
        notes=notes,
    )
    if forecast_rest is not None and params is not None:
        days = (parse.month_end(today) - today).days
        report.forecast_daily = {today + dt.timedelta(days=n): forecast_rest / days for n in range(1, days + 1)}
    report.budget_amounts, report.thresholds = parse.thresholds_for("aws", session.inventory.budgets, unit)
    return report


def azure_cost(
    session: Session, since: dt.date, today: dt.date, group_by: str, tag_key: str, resource_group: str | None
) -> CloudCost:
    api = session.azure()
    scope = api.scope(resource_group)
    start = min(since, today.replace(day=1))
    pages = api.query(
        scope, parse.azure_query_body(start, today, [("Dimension", "ServiceName"), ("Dimension", "ResourceId")])
    )
    rows, currency = parse.parse_azure_rows(pages)
    tagged: list[Any] = []
    if group_by == "tag":
        tagged, tag_currency = parse.parse_azure_rows(
            api.query(scope, parse.azure_query_body(since, today, [("TagKey", tag_key)]))
        )
        currency = currency or tag_currency
    notes: list[str] = []
    forecast_rest: Decimal | None = Decimal(0)
    forecast_daily: dict[dt.date, Decimal] = {}
    body = parse.azure_forecast_body(today)
    if body is not None:
        answer = api.forecast(scope, body)
        if answer is None:
            forecast_rest = None
            notes.append("Cost Management has too little history to forecast this month yet")
        else:
            forecast_daily, forecast_currency = parse.parse_azure_forecast(answer)
            currency = currency or forecast_currency
            forecast_rest = sum(forecast_daily.values(), Decimal(0))
    if currency is None:
        currency = "USD"
        notes.append("no cost rows yet: the billing currency is unknown (USD assumed)")
    managed = azure_managed(api, session.inventory)
    report = parse.summarize(
        "azure",
        "resource-group:" + resource_group if resource_group else "subscription",
        currency,
        since,
        today,
        group_by,
        totals=rows,
        resources=rows,
        tagged=tagged,
        managed_ids=managed,
        tag_key=tag_key,
        forecast_rest=forecast_rest,
        forecast_daily=forecast_daily,
        notes=notes,
    )
    report.budget_amounts, report.thresholds = parse.thresholds_for("azure", session.inventory.budgets, currency)
    return report


def cost_report(
    session: Session,
    clouds: Sequence[str],
    *,
    since: dt.date,
    today: dt.date,
    group_by: str,
    tag_key: str = DEFAULT_TAG,
    azure_resource_group: str | None = None,
) -> list[CloudCost]:
    out = []
    for cloud in clouds:
        if cloud == "aws":
            out.append(aws_cost(session, since, today, group_by, tag_key))
        else:
            out.append(azure_cost(session, since, today, group_by, tag_key, azure_resource_group))
    return out


# -- leaks ---------------------------------------------------------------------------------------------


def aws_scan(session: Session, region: str, sites: Sequence[Site]) -> AwsScan:
    api = session.aws()
    scan = AwsScan(region)
    vpcs = _vpc_ids(api, region, sites)
    by_vpc = [{"Name": "vpc-id", "Values": vpcs}] if vpcs else []
    scan.addresses = api.ec2("describe_addresses", "Addresses", region)
    scan.volumes = api.ec2("describe_volumes", "Volumes", region)
    if vpcs:
        scan.instances = [
            i for r in api.ec2("describe_instances", "Reservations", region, Filters=by_vpc) for i in r["Instances"]
        ]
        scan.nat_gateways = api.ec2("describe_nat_gateways", "NatGateways", region, Filter=by_vpc)
        scan.route_tables = api.ec2("describe_route_tables", "RouteTables", region, Filters=by_vpc)
        scan.load_balancers = [
            lb for lb in api.elbv2("describe_load_balancers", "LoadBalancers", region) if lb.get("VpcId") in vpcs
        ]
        for lb in scan.load_balancers:
            arn = str(lb["LoadBalancerArn"])
            groups = api.elbv2("describe_target_groups", "TargetGroups", region, LoadBalancerArn=arn)
            scan.target_groups[arn] = groups
            for group in groups:
                health = api.call("elbv2", "describe_target_health", region, TargetGroupArn=group["TargetGroupArn"])
                scan.targets[str(group["TargetGroupArn"])] = list(health.get("TargetHealthDescriptions") or [])
    scan.snapshots = api.ec2("describe_snapshots", "Snapshots", region, OwnerIds=["self"])
    scan.images = api.ec2("describe_images", "Images", region, Owners=["self"])
    _, scan.declared_instances = aws_managed(api, session.inventory)
    return scan


def find_leaks(session: Session, clouds: Sequence[str], *, now: dt.datetime, snapshot_days: int) -> list[Leak]:
    inventory = session.inventory
    out: list[Leak] = []
    if "aws" in clouds:
        regions: dict[str, list[Site]] = {}
        for site in _aws_sites(inventory):
            regions.setdefault(_region(site, inventory, session.aws()), []).append(site)
        book = PriceBook(session.aws())
        for region, sites in sorted(regions.items()):
            out += aws_leaks(aws_scan(session, region, sites), now=now, snapshot_days=snapshot_days, price=book.monthly)
    if "azure" in clouds:
        api = session.azure()
        for rg in sorted({s.resource_group for s in _azure_sites(inventory) if s.resource_group}):
            out += azure_leaks(
                rg,
                api.list(rg, "Microsoft.Network/publicIPAddresses", NETWORK_API),
                api.list(rg, "Microsoft.Compute/disks", COMPUTE_API),
            )
    return out


def leftovers(session: Session, clouds: Sequence[str]) -> list[Leak]:
    """What hybridctl created that still bills (for `down` to list): in use or not.

    AWS: the interface endpoint `endpoint ensure` makes (Name ``hybridctl-ec2``) and any Elastic IP,
    volume, NAT gateway or snapshot tagged managed-by=hybridctl; Azure: public IPs and disks so
    tagged. Unused ones appear in `hybridctl leaks` too, with the command that removes them.
    """
    from hybridctl.features.vip.endpoint import ENDPOINT_NAME

    inventory = session.inventory
    out: list[Leak] = []
    if "aws" in clouds:
        api = session.aws()
        book = PriceBook(api)
        regions: dict[str, list[Site]] = {}
        for site in _aws_sites(inventory):
            regions.setdefault(_region(site, inventory, api), []).append(site)
        mine = [{"Name": "tag:managed-by", "Values": ["hybridctl"]}]
        for region, sites in sorted(regions.items()):
            vpcs = _vpc_ids(api, region, sites)
            if vpcs:
                for endpoint in api.ec2(
                    "describe_vpc_endpoints",
                    "VpcEndpoints",
                    region,
                    Filters=[{"Name": "vpc-id", "Values": vpcs}, {"Name": "tag:Name", "Values": [ENDPOINT_NAME]}],
                ):
                    if endpoint.get("State", "available").lower() in ("deleted", "deleting"):
                        continue
                    zones = max(1, len(endpoint.get("SubnetIds") or []))
                    hour, source = book.monthly("vpc_endpoint_hour", region, 0)
                    out.append(
                        Leak(
                            "aws",
                            "vpc-endpoint",
                            str(endpoint["VpcEndpointId"]),
                            ENDPOINT_NAME,
                            region,
                            hour * zones,
                            "USD",
                            source,
                            f"`hybridctl endpoint ensure` created it; an interface endpoint bills per "
                            f"hour in each of its {zones} subnet(s)",
                            f"aws ec2 delete-vpc-endpoints --region {region} "
                            f"--vpc-endpoint-ids {endpoint['VpcEndpointId']}",
                            True,
                        )
                    )
            scan = AwsScan(region)
            scan.addresses = api.ec2("describe_addresses", "Addresses", region, Filters=mine)
            scan.volumes = api.ec2("describe_volumes", "Volumes", region, Filters=mine)
            scan.nat_gateways = api.ec2("describe_nat_gateways", "NatGateways", region, Filter=mine)
            scan.snapshots = api.ec2("describe_snapshots", "Snapshots", region, OwnerIds=["self"], Filters=mine)
            # Everything tagged as hybridctl's is listed, in use or not: pretend nothing uses it.
            for item in scan.addresses:
                item.pop("AssociationId", None)
                item.pop("NetworkInterfaceId", None)
                item.pop("InstanceId", None)
            for item in scan.volumes:
                item["State"] = "available"
            found = aws_leaks(scan, now=dt.datetime.now(dt.UTC), snapshot_days=0, price=book.monthly)
            out += [_created(leak) for leak in found]
    if "azure" in clouds:
        api_az = session.azure()
        for rg in sorted({s.resource_group for s in _azure_sites(inventory) if s.resource_group}):
            ips = [
                {**i, "properties": {k: v for k, v in (i.get("properties") or {}).items() if k != "ipConfiguration"}}
                for i in api_az.list(rg, "Microsoft.Network/publicIPAddresses", NETWORK_API)
                if (i.get("tags") or {}).get("managed-by") == "hybridctl"
            ]
            disks = [
                {**d, "managedBy": None, "properties": {**(d.get("properties") or {}), "diskState": "Unattached"}}
                for d in api_az.list(rg, "Microsoft.Compute/disks", COMPUTE_API)
                if (d.get("tags") or {}).get("managed-by") == "hybridctl"
            ]
            out += [_created(leak) for leak in azure_leaks(rg, ips, disks)]
    return out


def _created(leak: Leak) -> Leak:
    return replace(leak, why=f"hybridctl created it (tagged managed-by=hybridctl) and it still bills: {leak.why}")


def delete_leak(session: Session, leak: Leak) -> None:
    """Remove one listed leak with the call its ``remove`` command makes."""
    if leak.cloud == "azure":
        api_version = COMPUTE_API if leak.kind == "disk" else NETWORK_API
        session.azure().delete(leak.id, api_version)
        return
    api = session.aws()
    region = leak.where
    calls: dict[str, tuple[str, str, dict[str, Any]]] = {
        "elastic-ip": ("ec2", "release_address", {"AllocationId": leak.id}),
        "volume": ("ec2", "delete_volume", {"VolumeId": leak.id}),
        "stopped-instance": ("ec2", "terminate_instances", {"InstanceIds": [leak.id]}),
        "nat-gateway": ("ec2", "delete_nat_gateway", {"NatGatewayId": leak.id}),
        "load-balancer": ("elbv2", "delete_load_balancer", {"LoadBalancerArn": leak.id}),
        "snapshot": ("ec2", "delete_snapshot", {"SnapshotId": leak.id}),
    }
    service, op, kwargs = calls[leak.kind]
    api.call(service, op, region, **kwargs)


__all__ = [
    "Session",
    "aws_managed",
    "azure_managed",
    "check_clouds",
    "clouds_of",
    "cost_report",
    "delete_leak",
    "find_leaks",
    "leftovers",
]
