"""``hybridctl endpoint ensure``: private access to the EC2 API from the VIP's nodes.

Reference.md section 4 (seeds 000/002): an Interface VPC endpoint ``com.amazonaws.<region>.ec2``
in the nodes' subnets, a security group allowing 443/tcp from the VPC CIDR, the VPC's
``enableDnsSupport`` and ``enableDnsHostnames`` on, and private DNS on, so the nodes' SDK calls
to ``ec2.<region>.amazonaws.com`` resolve to the endpoint and need no internet gateway or NAT.

Idempotent: it reads first (a fixed handful of calls per VPC) and writes only what is missing;
a second run writes nothing. :func:`endpoint_checks` gives the same view as pass/warn/fail for
``doctor``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_network
from typing import Any

from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.vips import Vip
from hybridctl.features.vip.aws import AwsApi, name_of
from hybridctl.features.vip.checks import Check, fail, ok, warn

SG_NAME = "hybridctl-ec2-endpoint"
ENDPOINT_NAME = "hybridctl-ec2"
GONE_STATES = ("deleting", "deleted", "failed", "rejected", "expired")


def service_name(region: str) -> str:
    return f"com.amazonaws.{region}.ec2"


@dataclass
class EndpointState:
    """What exists now around one VPC's EC2 endpoint."""

    region: str
    vpc_id: str
    vpc_cidrs: list[str]
    dns_support: bool
    dns_hostnames: bool
    node_subnets: dict[str, str]  # subnet id -> availability zone, of the VIP nodes
    endpoint: dict[str, Any] | None
    group: dict[str, Any] | None  # our security group (by name), if any
    group_cidrs_443: set[str] = field(default_factory=set)  # CIDRs the endpoint's groups admit on 443/tcp


@dataclass
class EndpointResult:
    region: str
    vpc_id: str
    endpoint_id: str = ""
    security_group_id: str = ""
    changes: list[str] = field(default_factory=list)
    dns_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _vpc(api: AwsApi, region: str, vpc: str) -> dict[str, Any]:
    found = api.pages_by_id_or_name("ec2", "describe_vpcs", "Vpcs", region, [vpc], id_prefix="vpc-", id_filter="vpc-id")
    if len(found) != 1:
        raise RemoteError(f"aws {region}", f"VPC '{vpc}': {len(found)} found", "give the VPC's Name tag or vpc-id")
    return found[0]


def _attr(api: AwsApi, region: str, vpc_id: str, attribute: str) -> bool:
    key = attribute[0].upper() + attribute[1:]
    answer = api.call("ec2", "describe_vpc_attribute", region, VpcId=vpc_id, Attribute=attribute)
    return bool((answer.get(key) or {}).get("Value"))


def _admits_443(rule: dict[str, Any]) -> bool:
    if rule.get("IsEgress"):
        return False
    proto = str(rule.get("IpProtocol", "")).lower()
    if proto in ("-1", "all"):
        return True
    if proto not in ("tcp", "6"):
        return False
    low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
    return low is not None and high is not None and low <= 443 <= high


def read_state(api: AwsApi, vips: list[Vip]) -> EndpointState:
    """Read one VPC's endpoint state; ``vips`` all live in that VPC (their nodes give the subnets)."""
    vip = vips[0]
    region = api.region(vip.region)
    vpc = _vpc(api, region, vip.vpc)
    vpc_id = str(vpc["VpcId"])
    cidrs = [
        a["CidrBlock"]
        for a in vpc.get("CidrBlockAssociationSet") or [{"CidrBlock": vpc["CidrBlock"]}]
        if (a.get("CidrBlockState") or {}).get("State", "associated") == "associated"
    ]
    found = api.pages_by_id_or_name(
        "ec2",
        "describe_network_interfaces",
        "NetworkInterfaces",
        region,
        {n.eni for v in vips for n in v.nodes},
        id_prefix="eni-",
        id_filter="network-interface-id",
        filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
    )
    subnets = {str(e["SubnetId"]): str(e.get("AvailabilityZone", "")) for e in found}
    endpoints = api.pages(
        "ec2",
        "describe_vpc_endpoints",
        "VpcEndpoints",
        region,
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "service-name", "Values": [service_name(region)]},
            {"Name": "vpc-endpoint-type", "Values": ["Interface"]},
        ],
    )
    endpoints = [e for e in endpoints if str(e.get("State", "")).lower() not in GONE_STATES]
    endpoint = endpoints[0] if endpoints else None
    groups = api.pages(
        "ec2",
        "describe_security_groups",
        "SecurityGroups",
        region,
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [SG_NAME]}],
    )
    group = groups[0] if groups else None
    group_ids = {g["GroupId"] for g in (endpoint or {}).get("Groups") or []}
    if group is not None:
        group_ids.add(group["GroupId"])
    admitted: set[str] = set()
    if group_ids:
        rules = api.pages(
            "ec2",
            "describe_security_group_rules",
            "SecurityGroupRules",
            region,
            Filters=[{"Name": "group-id", "Values": sorted(group_ids)}],
        )
        for rule in rules:
            if _admits_443(rule) and rule.get("CidrIpv4"):
                # Which group a rule belongs to matters: only the endpoint's groups count, and
                # ours will be attached by ensure.
                admitted.add(f"{rule['GroupId']}|{rule['CidrIpv4']}")
    return EndpointState(
        region=region,
        vpc_id=vpc_id,
        vpc_cidrs=cidrs,
        dns_support=_attr(api, region, vpc_id, "enableDnsSupport"),
        dns_hostnames=_attr(api, region, vpc_id, "enableDnsHostnames"),
        node_subnets=subnets,
        endpoint=endpoint,
        group=group,
        group_cidrs_443=admitted,
    )


def _covers(admitted: set[str], group_ids: set[str], cidr: str) -> bool:
    want = ip_network(cidr)
    for item in admitted:
        gid, _, source = item.partition("|")
        if gid not in group_ids:
            continue
        net = ip_network(source)
        if isinstance(net, IPv4Network) and isinstance(want, IPv4Network) and want.subnet_of(net):
            return True
    return False


def _one_subnet_per_zone(subnets: dict[str, str]) -> tuple[list[str], list[str]]:
    """An interface endpoint takes one subnet per AZ; nodes sharing an AZ share that subnet's ENI."""
    chosen: dict[str, str] = {}
    skipped = []
    for subnet, zone in sorted(subnets.items()):
        if zone in chosen:
            skipped.append(subnet)
        else:
            chosen[zone] = subnet
    return sorted(chosen.values()), skipped


def ensure(api: AwsApi, vips: list[Vip]) -> EndpointResult:
    """Create or complete the EC2 interface endpoint of the VIPs' VPC (they share one VPC)."""
    state = read_state(api, vips)
    region, vpc_id = state.region, state.vpc_id
    result = EndpointResult(region, vpc_id)
    # Private DNS needs both attributes first; AWS refuses it otherwise.
    for attribute, on in (("EnableDnsSupport", state.dns_support), ("EnableDnsHostnames", state.dns_hostnames)):
        if not on:
            api.call("ec2", "modify_vpc_attribute", region, VpcId=vpc_id, **{attribute: {"Value": True}})
            result.changes.append(f"{vpc_id}: {attribute} on")
    group = state.group
    if group is None:
        group_id = api.call(
            "ec2",
            "create_security_group",
            region,
            GroupName=SG_NAME,
            VpcId=vpc_id,
            Description="hybridctl: HTTPS from the VPC to the EC2 API endpoint",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": SG_NAME}]}],
        )["GroupId"]
        result.changes.append(f"security group {SG_NAME} {group_id} created")
    else:
        group_id = str(group["GroupId"])
    result.security_group_id = group_id
    missing = [c for c in state.vpc_cidrs if not _covers(state.group_cidrs_443, {group_id}, c)]
    if missing:
        api.call(
            "ec2",
            "authorize_security_group_ingress",
            region,
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [
                        {"CidrIp": c, "Description": "hybridctl: HTTPS to the EC2 API endpoint"} for c in missing
                    ],
                }
            ],
        )
        result.changes.append(f"{group_id}: 443/tcp from {', '.join(missing)}")
    subnets, skipped = _one_subnet_per_zone(state.node_subnets)
    if skipped:
        result.notes.append(f"subnets {', '.join(skipped)} share an AZ with another node subnet; the endpoint uses one")
    endpoint = state.endpoint
    if endpoint is None:
        endpoint = api.call(
            "ec2",
            "create_vpc_endpoint",
            region,
            VpcEndpointType="Interface",
            VpcId=vpc_id,
            ServiceName=service_name(region),
            SubnetIds=subnets,
            SecurityGroupIds=[group_id],
            PrivateDnsEnabled=True,
            TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": [{"Key": "Name", "Value": ENDPOINT_NAME}]}],
        )["VpcEndpoint"]
        result.changes.append(f"endpoint {endpoint['VpcEndpointId']} created in {', '.join(subnets)}")
    else:
        have_subnets = set(endpoint.get("SubnetIds") or [])
        have_zones = {state.node_subnets.get(s) for s in have_subnets}
        add_subnets = [s for s in subnets if s not in have_subnets and state.node_subnets[s] not in have_zones]
        have_groups = {g["GroupId"] for g in endpoint.get("Groups") or []}
        modify: dict[str, Any] = {}
        if add_subnets:
            modify["AddSubnetIds"] = add_subnets
        if group_id not in have_groups:
            modify["AddSecurityGroupIds"] = [group_id]
        if not endpoint.get("PrivateDnsEnabled"):
            modify["PrivateDnsEnabled"] = True
        if modify:
            api.call("ec2", "modify_vpc_endpoint", region, VpcEndpointId=endpoint["VpcEndpointId"], **modify)
            result.changes.append(f"endpoint {endpoint['VpcEndpointId']}: {', '.join(sorted(modify))}")
    result.endpoint_id = str(endpoint["VpcEndpointId"])
    result.dns_names = [str(d["DnsName"]) for d in endpoint.get("DnsEntries") or []]
    return result


def endpoint_checks(state: EndpointState) -> list[Check]:
    """The endpoint's state as doctor checks (a missing endpoint is a warning: it is optional)."""
    subject = f"endpoint {state.vpc_id}"
    checks = []
    if state.endpoint is None:
        return [
            warn(
                "endpoint",
                subject,
                f"no interface endpoint {service_name(state.region)}: "
                "nodes need an internet or NAT path to the EC2 API",
                "run `hybridctl endpoint ensure` for a private path",
            )
        ]
    endpoint = state.endpoint
    label = f"{endpoint['VpcEndpointId']}" + (f" ({name_of(endpoint)})" if name_of(endpoint) else "")
    endpoint_state = str(endpoint.get("State", "")).lower()
    if endpoint_state == "available":
        checks.append(ok("endpoint", subject, f"{label} is available"))
    else:
        checks.append(warn("endpoint", subject, f"{label} is {endpoint_state}", "wait until it is available"))
    for attribute, on in (("enableDnsSupport", state.dns_support), ("enableDnsHostnames", state.dns_hostnames)):
        if on:
            checks.append(ok(f"vpc-{attribute}", subject, f"{attribute} is on"))
        else:
            checks.append(
                fail(
                    f"vpc-{attribute}",
                    subject,
                    f"{attribute} is off: private DNS cannot work",
                    "run `hybridctl endpoint ensure`",
                )
            )
    if endpoint.get("PrivateDnsEnabled"):
        checks.append(
            ok("endpoint-private-dns", subject, f"private DNS on: ec2.{state.region}.amazonaws.com resolves to it")
        )
    else:
        checks.append(
            fail(
                "endpoint-private-dns",
                subject,
                "private DNS is off: the SDK's default hostname bypasses the endpoint",
                "run `hybridctl endpoint ensure`",
            )
        )
    covered = set(endpoint.get("SubnetIds") or [])
    covered_zones = {state.node_subnets.get(s) for s in covered}
    uncovered = [s for s, z in state.node_subnets.items() if s not in covered and z not in covered_zones]
    if uncovered:
        checks.append(
            fail(
                "endpoint-subnets",
                subject,
                f"node subnets {', '.join(sorted(uncovered))} have no endpoint ENI in their AZ",
                "run `hybridctl endpoint ensure`",
            )
        )
    else:
        checks.append(ok("endpoint-subnets", subject, "every node's AZ has an endpoint ENI"))
    groups = {g["GroupId"] for g in endpoint.get("Groups") or []}
    missing = [c for c in state.vpc_cidrs if not _covers(state.group_cidrs_443, groups, c)]
    if missing:
        checks.append(
            fail(
                "endpoint-https",
                subject,
                f"the endpoint's security groups do not admit 443/tcp from {', '.join(missing)}",
                "run `hybridctl endpoint ensure`",
            )
        )
    else:
        checks.append(ok("endpoint-https", subject, f"443/tcp admitted from {', '.join(state.vpc_cidrs)}"))
    return checks
