"""The AWS backend's pure half: one region's read responses -> resolved sites and Resources.

hybridctl/backends/aws.py reads (:class:`AwsRead`: the responses of the fixed handful of EC2
list calls of one region) and applies; everything in between is here and does no I/O, like the
host side's parsers (hoststate.py): resolve the inventory's names against the objects read, and
turn them into Resources keyed and typed like the planner's. tests/unit/test_aws_parse.py runs
it on responses captured from the lab's AWS emulator (tests/fixtures/aws/read_*.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from ipaddress import ip_network
from typing import Any

from hybridctl.backends.aws_lookup import by_id_or_name, name_of
from hybridctl.backends.cloudcommon import (
    AWS_RULE_MARK,
    CLOUD_FLAGS,
    Parsed,
    RawRead,
    WasCreated,
    association_resource,
    flag_resource,
    network_field,
    route_resource,
    rule_resource,
    site_field,
    table_field,
    unresolved,
)
from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.models import Site
from hybridctl.core.planner.desired import AssociationItem, CloudRouteTable, DesiredState, Resource, RouteItem, RuleItem

FLAG = CLOUD_FLAGS["aws"]


@dataclass
class AwsRead(RawRead):
    """What one region's read returned: the raw EC2 responses (lists of objects), nothing else."""

    region: str
    vpcs: list[dict[str, Any]] = field(default_factory=list)
    subnets: list[dict[str, Any]] = field(default_factory=list)
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    network_interfaces: list[dict[str, Any]] = field(default_factory=list)
    security_groups: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)


def rule_name_of(description: str) -> str:
    """The rule name in a hybridctl description (``""`` when there is none)."""
    rest = description[len(AWS_RULE_MARK) :].strip()
    name, sep, _ = rest.partition(":")
    return name.strip() if sep and " " not in name.strip() else ""


def protocol_port(perm: dict[str, Any]) -> tuple[str, str]:
    """(protocol, port) of an IpPermission in the planner's spelling."""
    proto = str(perm.get("IpProtocol", "-1")).lower()
    proto = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp"}.get(proto, proto)
    if proto == "all":
        return "all", "*"
    low, high = perm.get("FromPort"), perm.get("ToPort")
    if low is None or low == -1 or (proto in ("tcp", "udp") and low == 0 and high == 65535):
        return proto, "*"
    return proto, str(low) if low == high else f"{low}-{high}"


def route_label(route: dict[str, Any]) -> str:
    """``type:id`` of a route's target, for targets that are not the site's gateway.

    A route to an instance's ENI comes back from AWS with both ``NetworkInterfaceId`` and
    ``InstanceId``; the ENI is what the route really targets (an instance may have several).
    """
    if route.get("NetworkInterfaceId"):
        return f"eni:{route['NetworkInterfaceId']}"
    if route.get("InstanceId"):
        return f"instance:{route['InstanceId']}"
    gateway = str(route.get("GatewayId") or "")
    if gateway == "local":
        return "local:"
    if gateway.startswith("igw-"):
        return f"internet:{gateway}"
    if gateway.startswith("vgw-"):
        return f"vpn-gateway:{gateway}"
    if gateway:
        return f"gateway:{gateway}"
    for field_name, kind in (
        ("NatGatewayId", "nat-gateway"),
        ("TransitGatewayId", "transit-gateway"),
        ("VpcPeeringConnectionId", "peering"),
        ("EgressOnlyInternetGatewayId", "egress-only-gateway"),
        ("CarrierGatewayId", "carrier-gateway"),
        ("LocalGatewayId", "local-gateway"),
        ("CoreNetworkArn", "core-network"),
    ):
        if route.get(field_name):
            return f"{kind}:{route[field_name]}"
    return "unknown:"


@dataclass
class AwsSite:
    """One AWS site as last read: resolved ids and what apply needs to act on them."""

    site: Site
    region: str
    vpc_id: str
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)  # network name -> subnet
    tables: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # table name -> table / missing
    specs: dict[str, CloudRouteTable] = field(default_factory=dict)
    vpc_tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # every table of the VPC by id
    eni: dict[str, Any] | None = None  # the gateway's ENI (primary ENI of its instance)
    instance_id: str | None = None
    gateway_ref: str = ""  # the gateway's ENI or instance as the inventory writes it (resolved above)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # group as written -> SG
    # subnet name -> (explicit association id or None, table id it uses)
    assoc: dict[str, tuple[str | None, str]] = field(default_factory=dict)

    @property
    def gateway_label(self) -> str:
        """The planner's target label for this site's gateway ("" when no route is planned).

        A route read that targets the gateway is shown with it, so that it compares equal with
        the planned route; the label is the planner's (CloudRoute.target_label), never rebuilt.
        """
        return next((r.target_label for spec in self.specs.values() for r in spec.routes), "")

    @property
    def gateway_ids(self) -> set[str]:
        ids = {self.instance_id} if self.instance_id else set()
        if self.eni is not None:
            ids.add(str(self.eni["NetworkInterfaceId"]))
        return ids


AwsParsed = Parsed[AwsSite]  # the sites' state for apply, their items, the failures


def instance_names(sites: Sequence[Site], vpcs: dict[str, str]) -> list[str]:
    """Gateways named by an instance Name tag (not an id, not an ENI): the only instances read."""
    return sorted(
        {
            s.gateway.instance
            for s in sites
            if s.name in vpcs and s.gateway.instance and not s.gateway.eni and not s.gateway.instance.startswith("i-")
        }
    )


def parse_region(read: AwsRead, sites: Sequence[Site], desired: DesiredState, was_created: WasCreated) -> AwsParsed:
    """Resolve ``sites`` against ``read`` and list their actual items. Pure."""
    parsed = AwsParsed()
    vpcs = resolve_vpcs(read.region, sites, read.vpcs, parsed.failures)
    built: list[AwsSite] = []
    for site in sites:
        if site.name not in vpcs:
            continue
        try:
            state = resolve_site(
                site,
                read.region,
                vpcs[site.name],
                read.subnets,
                read.route_tables,
                read.network_interfaces,
                read.security_groups,
                read.instances,
            )
            state.specs = {t.name: t for t in desired.route_tables if t.site == site.name}
            resolve_tables(state)
        except RemoteError as error:
            parsed.failures[site.name] = str(error)
            continue
        built.append(state)
    # A route is hybridctl's when it targets the gateway of any AWS site sharing the VPC.
    gateways: dict[str, set[str]] = {}
    for state in built:
        gateways.setdefault(state.vpc_id, set()).update(state.gateway_ids)
    for state in built:
        parsed.states[state.site.name] = state
        parsed.resources.extend(site_resources(state, desired, gateways[state.vpc_id], was_created))
    return parsed


def resolve_vpcs(
    region: str, sites: Sequence[Site], found: list[dict[str, Any]], failures: dict[str, str]
) -> dict[str, str]:
    """site -> vpc id; sites whose VPC does not resolve go to ``failures``."""
    out: dict[str, str] = {}
    for site in sites:
        matches = by_id_or_name(found, str(site.vpc), id_key="VpcId")
        if len(matches) == 1:
            out[site.name] = str(matches[0]["VpcId"])
        elif not matches:
            failures[site.name] = str(
                unresolved(
                    f"aws {site.name}",
                    site_field(site, ".vpc"),
                    "VPC",
                    str(site.vpc),
                    f"in {region}",
                    "use the VPC's Name tag or its vpc-id, and check the region",
                )
            )
        else:
            ids_text = ", ".join(str(v["VpcId"]) for v in matches)
            failures[site.name] = str(
                RemoteError(
                    f"aws {site.name}",
                    f"{site_field(site, '.vpc')}: {len(matches)} VPCs are named '{site.vpc}' ({ids_text})",
                    "write the vpc-id instead of the name",
                )
            )
    return out


def pick(
    site: Site, candidates: list[dict[str, Any]], wanted: str, id_key: str, what: str, field_text: str, hint: str
) -> dict[str, Any]:
    matches = by_id_or_name(candidates, wanted, id_key=id_key)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise unresolved(f"aws {site.name}", field_text, what, wanted, f"in VPC of site {site.name}", hint)
    listed = ", ".join(str(m[id_key]) for m in matches)
    raise RemoteError(
        f"aws {site.name}",
        f"{field_text}: {len(matches)} objects ({what}) are named '{wanted}' ({listed})",
        "write the id instead of the name",
    )


def resolve_site(
    site: Site,
    region: str,
    vpc_id: str,
    subnets: list[dict[str, Any]],
    tables: list[dict[str, Any]],
    enis: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    instances: list[dict[str, Any]],
) -> AwsSite:
    state = AwsSite(site, region, vpc_id)
    mine = [s for s in subnets if s.get("VpcId") == vpc_id]
    for network in site.networks:
        if not network.overlay or network.route_table is None:
            continue
        wanted = network.id or network.name
        attr = "id" if network.id else "name"
        same_cidr = [s for s in mine if s.get("CidrBlock") == str(network.cidr)]
        hint = "set the subnet's Name tag to the network name, or networks[].id to its subnet-id"
        if same_cidr:
            hint = f"subnet {same_cidr[0]['SubnetId']} has {network.cidr}: set networks[{network.name}].id to it"
        subnet = pick(site, mine, wanted, "SubnetId", "subnet", network_field(site, network.name, attr), hint)
        if subnet.get("CidrBlock") != str(network.cidr):
            raise RemoteError(
                f"aws {site.name}",
                f"{network_field(site, network.name, 'cidr')}: {network.cidr} but subnet {subnet['SubnetId']} "
                f"is {subnet.get('CidrBlock')}",
                "correct the cidr or the subnet reference",
            )
        state.subnets[network.name] = subnet
    state.vpc_tables = {str(t["RouteTableId"]): t for t in tables if t.get("VpcId") == vpc_id}
    gw = site.gateway
    if gw.eni or gw.instance:  # any role: routes target it, bridges also get the flag
        mine_enis = [e for e in enis if e.get("VpcId") == vpc_id]
        if gw.eni:
            state.eni = pick(
                site,
                mine_enis,
                gw.eni,
                "NetworkInterfaceId",
                "network interface",
                site_field(site, ".gateway.eni"),
                "tag the ENI with Name or write its eni-id",
            )
            state.instance_id = (state.eni.get("Attachment") or {}).get("InstanceId")
            state.gateway_ref = gw.eni
        else:
            instance_id = str(gw.instance)
            if not instance_id.startswith("i-"):
                instance_id = str(
                    pick(
                        site,
                        [i for i in instances if i.get("VpcId") == vpc_id],
                        str(gw.instance),
                        "InstanceId",
                        "instance",
                        site_field(site, ".gateway.instance"),
                        "tag the instance with Name or write its instance id",
                    )["InstanceId"]
                )
            primary = [
                e
                for e in mine_enis
                if (e.get("Attachment") or {}).get("InstanceId") == instance_id
                and (e.get("Attachment") or {}).get("DeviceIndex") == 0
            ]
            if not primary:
                raise unresolved(
                    f"aws {site.name}",
                    site_field(site, ".gateway.instance"),
                    "instance",
                    str(gw.instance),
                    f"with a network interface in VPC {vpc_id}",
                    "write the id of an instance running in the site's VPC",
                )
            state.eni = primary[0]
            state.instance_id = instance_id
            state.gateway_ref = str(gw.instance)
        addresses = {a.get("PrivateIpAddress") for a in state.eni.get("PrivateIpAddresses") or []}
        addresses.add(state.eni.get("PrivateIpAddress"))
        if str(gw.private_ip) not in addresses:
            raise RemoteError(
                f"aws {site.name}",
                f"{site_field(site, '.gateway.private_ip')}: {gw.private_ip} is not an address of "
                f"{state.eni['NetworkInterfaceId']} ({state.eni.get('PrivateIpAddress')})",
                "correct private_ip or the gateway's eni/instance",
            )
    mine_groups = [g for g in groups if g.get("VpcId") == vpc_id]
    for group, attr in (
        (gw.security_group, ".gateway.security_group"),
        (site.workload_security_group, ".workload_security_group"),
    ):
        if not group:
            continue
        by_name = [g for g in mine_groups if group == g.get("GroupName")]
        if len(by_name) == 1:
            state.groups[group] = by_name[0]
            continue
        state.groups[group] = pick(
            site,
            mine_groups,
            group,
            "GroupId",
            "security group",
            site_field(site, attr),
            "use the group name, its Name tag or its sg-id",
        )
    return state


def resolve_tables(state: AwsSite) -> None:
    site = state.site
    for name, spec in state.specs.items():
        tables = list(state.vpc_tables.values())
        wanted = spec.table_id or name
        matches = by_id_or_name(tables, wanted, id_key="RouteTableId")
        if len(matches) > 1:
            listed = ", ".join(str(t["RouteTableId"]) for t in matches)
            raise RemoteError(
                f"aws {site.name}",
                f"{table_field(site, name)}: {len(matches)} route tables are named '{name}' ({listed})",
                f"set route_tables[{name}].id",
            )
        if matches:
            state.tables[name] = matches[0]
        elif spec.create and not spec.table_id:
            state.tables[name] = None  # created by the first change that needs it
        else:
            attr = "id" if spec.table_id else "name"
            raise unresolved(
                f"aws {site.name}",
                table_field(site, name, attr),
                "route table",
                wanted,
                f"in VPC {state.vpc_id}",
                "tag the table with Name, write its rtb-id, or set create: true",
            )


def table_label(state: AwsSite, table_id: str) -> str:
    for name, table in state.tables.items():
        if table is not None and table["RouteTableId"] == table_id:
            return name
    table = state.vpc_tables.get(table_id)
    return (name_of(table) if table else None) or table_id


def site_resources(
    state: AwsSite, desired: DesiredState, gateway_ids: set[str], was_created: WasCreated
) -> list[Resource]:
    """The site's actual items, keyed and typed like the planner's (``state.assoc`` is filled on the way)."""
    site = state.site
    out: list[Resource] = []
    for flag in desired.flags:
        if flag.site == site.name and flag.name == FLAG and state.eni is not None:
            flag_found = replace(flag, value=bool(state.eni.get("SourceDestCheck", True)), why="")
            out.append(flag_resource(flag_found, True))
    for group_text, group in state.groups.items():
        for egress, perms in ((False, group.get("IpPermissions")), (True, group.get("IpPermissionsEgress"))):
            for perm in perms or []:
                out.extend(rule_items(state, group_text, group, perm, egress))
    for name, table in state.tables.items():
        if table is None:
            continue
        for route in table.get("Routes") or []:
            prefix = route.get("DestinationCidrBlock")
            if not prefix:
                continue  # IPv6 and prefix-list destinations never collide with the overlay
            found = RouteItem(site.name, name, str(ip_network(prefix)), route_label(route))
            key = (site.name, name, found.destination)
            targets = {route.get("NetworkInterfaceId"), route.get("InstanceId")} - {None}
            label = (state.gateway_label or found.target) if targets & state.gateway_ids else found.target
            owned = bool(targets & gateway_ids) or was_created("cloud-route", key)
            out.append(route_resource(replace(found, target=label), owned, label))
    main = next((t for t in state.vpc_tables.values() if any(a.get("Main") for a in t.get("Associations") or [])), None)
    wanted_subnets = {s for spec in state.specs.values() for s in spec.subnets}
    for network, subnet in state.subnets.items():
        if network not in wanted_subnets:
            continue
        explicit = [
            (str(a["RouteTableAssociationId"]), str(t["RouteTableId"]))
            for t in state.vpc_tables.values()
            for a in t.get("Associations") or []
            if a.get("SubnetId") == subnet["SubnetId"]
        ]
        if explicit:
            assoc_id, table_id = explicit[0]
            state.assoc[network] = (assoc_id, table_id)
            item = AssociationItem(site.name, table_label(state, table_id), network)
            key = (item.site, item.table, item.subnet)
            out.append(association_resource(item, was_created("cloud-association", key)))
        elif main is not None:
            state.assoc[network] = (None, str(main["RouteTableId"]))
            item = AssociationItem(site.name, table_label(state, str(main["RouteTableId"])), network)
            # The implicit use of the main table is nobody's creation.
            out.append(association_resource(item, False, implicit="true"))
    return out


def rule_items(
    state: AwsSite, group_text: str, group: dict[str, Any], perm: dict[str, Any], egress: bool
) -> list[Resource]:
    protocol, port = protocol_port(perm)
    direction = "outbound" if egress else "inbound"
    peers: list[tuple[str, str]] = []
    peers += [(str(r["CidrIp"]), str(r.get("Description") or "")) for r in perm.get("IpRanges") or []]
    peers += [(str(r["CidrIpv6"]), str(r.get("Description") or "")) for r in perm.get("Ipv6Ranges") or []]
    peers += [(f"sg:{p['GroupId']}", str(p.get("Description") or "")) for p in perm.get("UserIdGroupPairs") or []]
    peers += [(f"pl:{p['PrefixListId']}", str(p.get("Description") or "")) for p in perm.get("PrefixListIds") or []]
    out = []
    for peer, description in peers:
        owned = description.startswith(AWS_RULE_MARK)
        name = rule_name_of(description) if owned else description
        item = RuleItem(state.site.name, group_text, direction, protocol, port, peer, name)
        out.append(rule_resource(item, owned, name, "aws"))
    return out


__all__ = [
    "AwsParsed",
    "AwsRead",
    "AwsSite",
    "instance_names",
    "parse_region",
    "protocol_port",
    "resolve_vpcs",
    "route_label",
    "rule_name_of",
]
