"""The AWS backend: source/dest check, security group rules, VPC routes and subnet associations.

Reads are a fixed handful of paginated EC2 calls per region, filtered by the sites' VPCs
(describe_vpcs, describe_subnets, describe_route_tables, describe_network_interfaces,
describe_security_groups, plus describe_instances only for gateways named by an instance Name
tag), whatever the number of routes. Every call goes through one wrapper
(:class:`hybridctl.backends.clouds.AwsApi`) that counts it, lets botocore retry it (``aws.retry_mode`` /
``aws.max_attempts``) and turns failures into :class:`~hybridctl.core.errors.RemoteError` with a hint.
docs/cloud-adapters.md has the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from ipaddress import ip_network
from typing import TYPE_CHECKING, Any

from hybridctl.backends.base import NoProgress, Outcome, Progress, ReadResult
from hybridctl.backends.cloudcommon import (
    AWS_RULE_MARK,
    CLOUD_FLAGS,
    MANAGED_TAG,
    TABLE_LAYER,
    CloudBackend,
    apply_flag,
    apply_site_changes,
    association_resource,
    cloud_item,
    flag_resource,
    journal_detail,
    network_field,
    route_resource,
    rule_resource,
    site_field,
    table_field,
    unresolved,
)
from hybridctl.backends.clouds import AwsApi, Hints, name_of
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import Change
from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.models import AwsSettings, Inventory, Site
from hybridctl.core.planner.desired import (
    AssociationItem,
    CloudRouteTable,
    DesiredState,
    Resource,
    RouteItem,
    RuleItem,
)

if TYPE_CHECKING:
    from hybridctl.features.engine import Context

FLAG = CLOUD_FLAGS["aws"]
# Characters AWS accepts in a security group rule description (anything else is refused).
_DESCRIPTION_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*")
HINTS = Hints(
    permission="grant the IAM identity {action} (docs/cloud-adapters.md lists every permission)",
    rerun="run `hybridctl routes diff` and apply again",
)


def aws_description(name: str, why: str) -> str:
    """``hybridctl: <rule name>: <why>`` within AWS's 255 characters and character set."""
    clean = "".join(ch if ch in _DESCRIPTION_OK else " " for ch in why)
    return f"{AWS_RULE_MARK} {name}: {' '.join(clean.split())}"[:255].rstrip()


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


def ip_permission(protocol: str, port: str, peer: str, description: str | None = None) -> dict[str, Any]:
    """The IpPermission for a rule (the inverse of :func:`protocol_port` plus the peer)."""
    perm: dict[str, Any] = {"IpProtocol": "-1" if protocol == "all" else protocol}
    if protocol != "all":
        if port == "*":
            low, high = (-1, -1) if protocol == "icmp" else (0, 65535)
        else:
            first, _, last = port.partition("-")
            low, high = int(first), int(last or first)
        perm.update({"FromPort": low, "ToPort": high})
    extra = {"Description": description} if description else {}
    if peer.startswith("sg:"):
        perm["UserIdGroupPairs"] = [{"GroupId": peer[3:], **extra}]
    elif ":" in peer:
        perm["Ipv6Ranges"] = [{"CidrIpv6": peer, **extra}]
    else:
        perm["IpRanges"] = [{"CidrIp": peer, **extra}]
    return perm


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
class _Site:
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


class AwsBackend(CloudBackend[_Site]):
    """:class:`~hybridctl.backends.base.Backend` for the ``aws`` sites of an inventory."""

    name = "aws"

    def __init__(self, inventory: Inventory, journal: Journal) -> None:
        super().__init__(inventory, journal)
        self.settings = inventory.aws or AwsSettings.model_validate({})
        # Every EC2 call goes through this one wrapper: it counts, retries, pages and translates.
        self.api = AwsApi(self.settings, hints=HINTS, on_call=self._count.add)

    # -- clients and the one call wrapper ----------------------------------------------------------

    def region_of(self, site: Site) -> str:
        region = site.region or self.settings.region
        if not region:
            raise RemoteError(f"aws {site.name}", f"{site_field(site, '.region')}: no region", "set aws.region")
        return region

    _group_of = region_of  # sites are read a region at a time

    def client(self, region: str) -> Any:
        return self.api.client("ec2", region)

    def call(self, region: str, op: str, **kwargs: Any) -> dict[str, Any]:
        return self.api.call("ec2", op, region, **kwargs)

    def pages(self, region: str, op: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self.api.pages("ec2", op, key, region, **kwargs)

    # -- Backend -------------------------------------------------------------------------------

    def close(self) -> None:
        self.api.close()

    # -- reading -------------------------------------------------------------------------------

    def _read_group(self, region: str, sites: list[Site], desired: DesiredState, result: ReadResult) -> None:
        vpcs = self._resolve_vpcs(region, sites)
        vpc_ids = sorted({v for v in vpcs.values()})
        if not vpc_ids:
            return
        by_vpc = [{"Name": "vpc-id", "Values": vpc_ids}]
        subnets = self.pages(region, "describe_subnets", "Subnets", Filters=by_vpc)
        tables = self.pages(region, "describe_route_tables", "RouteTables", Filters=by_vpc)
        enis = self.pages(region, "describe_network_interfaces", "NetworkInterfaces", Filters=by_vpc)
        groups = self.pages(region, "describe_security_groups", "SecurityGroups", Filters=by_vpc)
        instance_names = sorted(
            {
                s.gateway.instance
                for s in sites
                if s.name in vpcs
                and s.gateway.instance
                and not s.gateway.eni
                and not s.gateway.instance.startswith("i-")
            }
        )
        instances: list[dict[str, Any]] = []
        if instance_names:
            reservations = self.pages(
                region,
                "describe_instances",
                "Reservations",
                Filters=[*by_vpc, {"Name": "tag:Name", "Values": instance_names}],
            )
            instances = [i for r in reservations for i in r.get("Instances", [])]
        built: list[_Site] = []
        for site in sites:
            if site.name not in vpcs:
                continue
            try:
                state = self._resolve_site(site, region, vpcs[site.name], subnets, tables, enis, groups, instances)
                state.specs = {t.name: t for t in desired.route_tables if t.site == site.name}
                self._resolve_tables(state)
            except RemoteError as error:
                self._failures[site.name] = str(error)
                continue
            built.append(state)
        # A route is hybridctl's when it targets the gateway of any AWS site sharing the VPC.
        gateways: dict[str, set[str]] = {}
        for state in built:
            gateways.setdefault(state.vpc_id, set()).update(state.gateway_ids)
        for state in built:
            self._state[state.site.name] = state
            result.resources.extend(self._resources(state, desired, gateways[state.vpc_id]))

    def _resolve_vpcs(self, region: str, sites: list[Site]) -> dict[str, str]:
        """site -> vpc id; sites whose VPC does not resolve go to the failures."""
        found = self.api.pages_by_id_or_name(
            "ec2",
            "describe_vpcs",
            "Vpcs",
            region,
            {s.vpc for s in sites if s.vpc},
            id_prefix="vpc-",
            id_filter="vpc-id",
        )
        out: dict[str, str] = {}
        for site in sites:
            matches = [v for v in found if site.vpc in (v["VpcId"], name_of(v))]
            if len(matches) == 1:
                out[site.name] = str(matches[0]["VpcId"])
            elif not matches:
                self._failures[site.name] = str(
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
                self._failures[site.name] = str(
                    RemoteError(
                        f"aws {site.name}",
                        f"{site_field(site, '.vpc')}: {len(matches)} VPCs are named '{site.vpc}' ({ids_text})",
                        "write the vpc-id instead of the name",
                    )
                )
        return out

    @staticmethod
    def _pick(
        site: Site, candidates: list[dict[str, Any]], wanted: str, id_key: str, what: str, field_text: str, hint: str
    ) -> dict[str, Any]:
        matches = [c for c in candidates if wanted == c.get(id_key)]
        if not matches:
            matches = [c for c in candidates if wanted == name_of(c)]
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

    def _resolve_site(
        self,
        site: Site,
        region: str,
        vpc_id: str,
        subnets: list[dict[str, Any]],
        tables: list[dict[str, Any]],
        enis: list[dict[str, Any]],
        groups: list[dict[str, Any]],
        instances: list[dict[str, Any]],
    ) -> _Site:
        state = _Site(site, region, vpc_id)
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
            subnet = self._pick(site, mine, wanted, "SubnetId", "subnet", network_field(site, network.name, attr), hint)
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
                state.eni = self._pick(
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
                        self._pick(
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
            state.groups[group] = self._pick(
                site,
                mine_groups,
                group,
                "GroupId",
                "security group",
                site_field(site, attr),
                "use the group name, its Name tag or its sg-id",
            )
        return state

    def _resolve_tables(self, state: _Site) -> None:
        site = state.site
        for name, spec in state.specs.items():
            tables = list(state.vpc_tables.values())
            wanted = spec.table_id or name
            matches = [t for t in tables if wanted == t["RouteTableId"]] or [t for t in tables if wanted == name_of(t)]
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

    def _table_label(self, state: _Site, table_id: str) -> str:
        for name, table in state.tables.items():
            if table is not None and table["RouteTableId"] == table_id:
                return name
        table = state.vpc_tables.get(table_id)
        return (name_of(table) if table else None) or table_id

    def _resources(self, state: _Site, desired: DesiredState, gateway_ids: set[str]) -> list[Resource]:
        site = state.site
        out: list[Resource] = []
        for flag in desired.flags:
            if flag.site == site.name and flag.name == FLAG and state.eni is not None:
                flag_found = replace(flag, value=bool(state.eni.get("SourceDestCheck", True)), why="")
                out.append(flag_resource(flag_found, True))
        for group_text, group in state.groups.items():
            for egress, perms in ((False, group.get("IpPermissions")), (True, group.get("IpPermissionsEgress"))):
                for perm in perms or []:
                    out.extend(self._rule_items(state, group_text, group, perm, egress))
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
                owned = bool(targets & gateway_ids) or self.journal.was_created("cloud-route", key)
                out.append(route_resource(replace(found, target=label), owned, label))
        main = next(
            (t for t in state.vpc_tables.values() if any(a.get("Main") for a in t.get("Associations") or [])), None
        )
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
                item = AssociationItem(site.name, self._table_label(state, table_id), network)
                key = (item.site, item.table, item.subnet)
                out.append(association_resource(item, self.journal.was_created("cloud-association", key)))
            elif main is not None:
                state.assoc[network] = (None, str(main["RouteTableId"]))
                item = AssociationItem(site.name, self._table_label(state, str(main["RouteTableId"])), network)
                # The implicit use of the main table is nobody's creation.
                out.append(association_resource(item, False, implicit="true"))
        return out

    def _rule_items(
        self, state: _Site, group_text: str, group: dict[str, Any], perm: dict[str, Any], egress: bool
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

    # -- applying ------------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], desired: DesiredState, progress: Progress) -> list[Outcome]:
        progress = progress or NoProgress()
        if not self._read_once:
            self.read(desired)

        def apply_one(change: Change) -> None:
            state = self._state[cloud_item(change).site]
            if change.layer == "flag":
                self._apply_flag(state, change)
            elif change.layer == "security-rule":
                self._apply_rule(state, change)
            elif change.layer == "cloud-route":
                self._apply_route(state, change)
            elif change.layer == "cloud-association":
                self._apply_association(state, change)
            else:
                raise RemoteError(f"aws {state.site.name}", f"layer {change.layer} is not the AWS backend's")

        outcomes = apply_site_changes(
            [c for c in changes if self.owns(c)],
            "aws",
            self._state,
            self._failures,
            apply_one,
            progress,
            lambda site, table: self._drop_table_if_empty(self._state[site], table, progress),
        )
        self._read_once = False  # state changed: the next apply reads again unless read() is called
        return outcomes

    def _apply_flag(self, state: _Site, change: Change) -> None:
        assert state.eni is not None
        eni_id = str(state.eni["NetworkInterfaceId"])
        apply_flag(
            self.journal,
            change,
            lambda value: self.call(
                state.region,
                "modify_network_interface_attribute",
                NetworkInterfaceId=eni_id,
                SourceDestCheck={"Value": value},
            ),
        )

    def _apply_rule(self, state: _Site, change: Change) -> None:
        rule = cloud_item(change)
        assert isinstance(rule, RuleItem)
        verb = "egress" if rule.direction == "outbound" else "ingress"
        group = state.groups.get(rule.group)
        if group is None:
            raise RemoteError(f"aws {state.site.name}", f"security group '{rule.group}' was not resolved")
        group_id = str(group["GroupId"])
        if change.action == "delete":
            self.call(
                state.region,
                f"revoke_security_group_{verb}",
                GroupId=group_id,
                IpPermissions=[ip_permission(rule.protocol, rule.port, rule.peer)],
            )
            return
        description = aws_description(rule.name, change.why)
        perm = ip_permission(rule.protocol, rule.port, rule.peer, description)
        if change.action == "create":
            self.call(state.region, f"authorize_security_group_{verb}", GroupId=group_id, IpPermissions=[perm])
        else:  # an owned rule with another name: only its description differs
            self.call(
                state.region,
                f"update_security_group_rule_descriptions_{verb}",
                GroupId=group_id,
                IpPermissions=[perm],
            )

    def _gateway_target(self, state: _Site, item: RouteItem) -> dict[str, str]:
        """The target of a planned route: the site's gateway as resolved, by ENI or instance."""
        planned = item.route
        if planned is None or planned.target != state.gateway_ref or state.eni is None:
            raise RemoteError(
                f"aws {state.site.name}", f"route target {item.target} is not the site's gateway {state.gateway_ref}"
            )
        if planned.target_kind == "instance" and state.instance_id:
            return {"InstanceId": state.instance_id}
        return {"NetworkInterfaceId": str(state.eni["NetworkInterfaceId"])}

    def _ensure_table(self, state: _Site, name: str) -> str:
        table = state.tables.get(name)
        if table is not None:
            return str(table["RouteTableId"])
        spec = state.specs.get(name)
        if spec is None or not spec.create:
            raise unresolved(
                f"aws {state.site.name}",
                table_field(state.site, name),
                "route table",
                name,
                f"in VPC {state.vpc_id}",
                "set create: true to let hybridctl create it",
            )
        created = self.call(
            state.region,
            "create_route_table",
            VpcId=state.vpc_id,
            TagSpecifications=[
                {
                    "ResourceType": "route-table",
                    "Tags": [{"Key": "Name", "Value": name}, {"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1]}],
                }
            ],
        )["RouteTable"]
        self.journal.created(TABLE_LAYER, (state.site.name, name), {"id": created["RouteTableId"]})
        state.tables[name] = created
        state.vpc_tables[str(created["RouteTableId"])] = created
        return str(created["RouteTableId"])

    def _apply_route(self, state: _Site, change: Change) -> None:
        route = cloud_item(change)
        assert isinstance(route, RouteItem)
        prefix = route.destination
        if change.action == "delete":
            table = state.tables.get(route.table)
            if table is None:
                return
            self.call(state.region, "delete_route", RouteTableId=table["RouteTableId"], DestinationCidrBlock=prefix)
            self.journal.forget("cloud-route", change.key)
            return
        table_id = self._ensure_table(state, route.table)
        target = self._gateway_target(state, route)
        op = "create_route" if change.action == "create" else "replace_route"
        self.call(state.region, op, RouteTableId=table_id, DestinationCidrBlock=prefix, **target)
        self.journal.created("cloud-route", change.key, {"table": table_id})

    def _apply_association(self, state: _Site, change: Change) -> None:
        association = cloud_item(change)
        assert isinstance(association, AssociationItem)
        table_name, network = association.table, association.subnet
        subnet = state.subnets.get(network)
        if subnet is None:
            raise RemoteError(f"aws {state.site.name}", f"subnet of network {network} was not resolved")
        assoc_id, current_table = state.assoc.get(network, (None, ""))
        if change.action == "delete":
            detail = journal_detail(self.journal, "cloud-association", change.key)
            before = detail.get("previous")
            if assoc_id is None:
                self.journal.forget("cloud-association", change.key)
                return
            if before and before in state.vpc_tables:
                self.call(state.region, "replace_route_table_association", AssociationId=assoc_id, RouteTableId=before)
            else:
                self.call(state.region, "disassociate_route_table", AssociationId=assoc_id)
            self.journal.forget("cloud-association", change.key)
            state.assoc[network] = (None, "")
            return
        table_id = self._ensure_table(state, table_name)
        if assoc_id is not None:
            new_id = self.call(
                state.region, "replace_route_table_association", AssociationId=assoc_id, RouteTableId=table_id
            )["NewAssociationId"]
            previous: str | None = current_table
        else:
            new_id = self.call(
                state.region, "associate_route_table", SubnetId=subnet["SubnetId"], RouteTableId=table_id
            )["AssociationId"]
            previous = None
        self.journal.created("cloud-association", change.key, {"previous": previous, "subnet": subnet["SubnetId"]})
        state.assoc[network] = (str(new_id), table_id)

    def _drop_table_if_empty(self, state: _Site, name: str, progress: Progress) -> Outcome | None:
        """After deletes: remove a table hybridctl created once nothing uses it and no foreign route is in it."""
        created = journal_detail(self.journal, TABLE_LAYER, (state.site.name, name))
        table = state.tables.get(name)
        if not created or table is None:
            return None
        target = f"aws {state.site.name}"
        try:
            current = self.pages(
                state.region, "describe_route_tables", "RouteTables", RouteTableIds=[table["RouteTableId"]]
            )
            if not current:
                self.journal.forget(TABLE_LAYER, (state.site.name, name))
                return None
            routes = [r for r in current[0].get("Routes") or [] if r.get("GatewayId") != "local"]
            if routes or current[0].get("Associations"):
                return None
            progress.step(target, f"- route table {name} (created by hybridctl, now empty)")
            self.call(state.region, "delete_route_table", RouteTableId=table["RouteTableId"])
            self.journal.forget(TABLE_LAYER, (state.site.name, name))
            state.tables[name] = None
        except RemoteError as error:
            return Outcome(target, None, False, f"route table {name}: {error}")
        return None


def backend_for(context: Context) -> AwsBackend | None:
    """The engine's factory: an AWS backend when the inventory has AWS sites."""
    inventory = context.loaded.inventory
    if not any(site.kind == "aws" for site in inventory.sites):
        return None
    return AwsBackend(inventory, context.journal)


__all__ = [
    "AwsBackend",
    "aws_description",
    "backend_for",
    "ip_permission",
    "protocol_port",
    "route_label",
    "rule_name_of",
]
