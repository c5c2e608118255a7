"""The AWS backend: source/dest check, security group rules, VPC routes and subnet associations.

A region is read once (:meth:`AwsBackend.read_region`): a fixed handful of paginated EC2 calls,
filtered by the sites' VPCs (describe_vpcs, describe_subnets, describe_route_tables,
describe_network_interfaces, describe_security_groups, plus describe_instances only for gateways
named by an instance Name tag), whatever the number of routes. What they return goes, as it is,
to the pure parser (hybridctl/backends/aws_parse.py), which resolves the inventory's names and
lists the Resources; this module then applies the changes. Every call goes through one wrapper
(:class:`hybridctl.backends.clouds.AwsApi`) that counts it, lets botocore retry it (``aws.retry_mode`` /
``aws.max_attempts``) and turns failures into :class:`~hybridctl.core.errors.RemoteError` with a hint.
docs/cloud-adapters.md has the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hybridctl.backends.aws_parse import (
    AwsRead,
    AwsSite,
    instance_names,
    parse_region,
    protocol_port,
    resolve_vpcs,
    route_label,
    rule_name_of,
)
from hybridctl.backends.base import NoProgress, Outcome, Progress, ReadResult
from hybridctl.backends.cloudcommon import (
    AWS_RULE_MARK,
    CLOUD_FLAGS,
    MANAGED_TAG,
    TABLE_LAYER,
    CloudBackend,
    apply_flag,
    apply_site_changes,
    cloud_item,
    in_parallel,
    journal_detail,
    site_field,
    table_field,
    unresolved,
)
from hybridctl.backends.clouds import AwsApi, Hints
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import Change
from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.models import AwsSettings, Inventory, Site
from hybridctl.core.planner.desired import (
    AssociationItem,
    DesiredState,
    RouteItem,
    RuleItem,
)

if TYPE_CHECKING:
    from hybridctl.backends.context import Context

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


class AwsBackend(CloudBackend[AwsSite]):
    """:class:`~hybridctl.backends.base.Backend` for the ``aws`` sites of an inventory."""

    name = "aws"

    def __init__(self, inventory: Inventory, journal: Journal) -> None:
        super().__init__(inventory, journal)
        self.settings = inventory.aws or AwsSettings.model_validate({})
        # Every EC2 call goes through this one wrapper: it counts, retries, pages and translates.
        self.api = AwsApi(self.settings, hints=HINTS, on_call=self.counter.add)
        # Optional observer of every region's read (the fixture capture script records them).
        self.recorder: Callable[[AwsRead], None] | None = None

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
        read = self.read_region(region, sites)
        if self.recorder is not None:
            self.recorder(read)
        parsed = parse_region(read, sites, desired, self.journal.was_created)
        self._failures.update(parsed.failures)
        self._state.update(parsed.states)
        result.resources.extend(parsed.resources)

    def read_region(self, region: str, sites: Sequence[Site]) -> AwsRead:
        """The one read of a region: the sites' VPCs, then every list call filtered by them."""
        vpcs = self.api.pages_by_id_or_name(
            "ec2",
            "describe_vpcs",
            "Vpcs",
            region,
            {s.vpc for s in sites if s.vpc},
            id_prefix="vpc-",
            id_filter="vpc-id",
        )
        read = AwsRead(region, vpcs)
        resolved = resolve_vpcs(region, sites, vpcs, {})
        vpc_ids = sorted(set(resolved.values()))
        if not vpc_ids:
            return read
        by_vpc = [{"Name": "vpc-id", "Values": vpc_ids}]
        # Four independent round trips: at once (the read is on every command's critical path).
        read.subnets, read.route_tables, read.network_interfaces, read.security_groups = in_parallel(
            lambda: self.pages(region, "describe_subnets", "Subnets", Filters=by_vpc),
            lambda: self.pages(region, "describe_route_tables", "RouteTables", Filters=by_vpc),
            lambda: self.pages(region, "describe_network_interfaces", "NetworkInterfaces", Filters=by_vpc),
            lambda: self.pages(region, "describe_security_groups", "SecurityGroups", Filters=by_vpc),
        )
        names = instance_names(sites, resolved)
        if names:
            reservations = self.pages(
                region,
                "describe_instances",
                "Reservations",
                Filters=[*by_vpc, {"Name": "tag:Name", "Values": names}],
            )
            read.instances = [i for r in reservations for i in r.get("Instances", [])]
        return read

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

    def _apply_flag(self, state: AwsSite, change: Change) -> None:
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

    def _apply_rule(self, state: AwsSite, change: Change) -> None:
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

    def _gateway_target(self, state: AwsSite, item: RouteItem) -> dict[str, str]:
        """The target of a planned route: the site's gateway as resolved, by ENI or instance."""
        planned = item.route
        if planned is None or planned.target != state.gateway_ref or state.eni is None:
            raise RemoteError(
                f"aws {state.site.name}", f"route target {item.target} is not the site's gateway {state.gateway_ref}"
            )
        if planned.target_kind == "instance" and state.instance_id:
            return {"InstanceId": state.instance_id}
        return {"NetworkInterfaceId": str(state.eni["NetworkInterfaceId"])}

    def _ensure_table(self, state: AwsSite, name: str) -> str:
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

    def _apply_route(self, state: AwsSite, change: Change) -> None:
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

    def _apply_association(self, state: AwsSite, change: Change) -> None:
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

    def _drop_table_if_empty(self, state: AwsSite, name: str, progress: Progress) -> Outcome | None:
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
    "AwsRead",
    "aws_description",
    "backend_for",
    "ip_permission",
    "protocol_port",
    "route_label",
    "rule_name_of",
]
