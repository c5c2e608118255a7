"""VIP operations: read where the VIP is routed, check it is safe to change, repoint, verify.

The failover path (``move``, the OCF agent's ``start``) is built for a short outage window:

1. read, concurrently: the VPC, the ENIs of the nodes, every route table of the account and
   region that routes ``VIP/32`` (our VPC's holders and other VPCs' collisions), every table of
   the VPC, and the Transit Gateway route when one is declared;
2. safety checks (pure, :mod:`hybridctl.features.vip.safety`): nothing is written if one fails;
3. one ``ReplaceRoute`` (or ``CreateRoute`` where a declared table lacks the route) per table,
   **all in parallel**: with N tables the window is about one API round trip, not N;
4. read back with one filtered ``DescribeRouteTables`` until every table points at the new ENI
   (EC2 is eventually consistent), bounded in time.

Nothing here prints; results are dataclasses the CLI renders.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_network
from typing import Any

from hybridctl.backends.aws_lookup import by_id_or_name
from hybridctl.core.errors import PartialFailure, RemoteError
from hybridctl.features.vip import safety
from hybridctl.features.vip.aws import AwsApi, AwsCallError, error_code, name_of
from hybridctl.features.vip.checks import Check, Status, UnsafeError
from hybridctl.features.vip.models import ALL_TABLES, Vip, VipNode

MAX_PARALLEL = 32
VERIFY_TIMEOUT = 15.0


# --------------------------------------------------------------------------- read model


@dataclass(frozen=True)
class NodeEni:
    """A node and its ENI as EC2 describes it."""

    node: VipNode
    eni: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.eni["NetworkInterfaceId"])

    @property
    def vpc_id(self) -> str:
        return str(self.eni.get("VpcId", ""))

    @property
    def subnet_id(self) -> str:
        return str(self.eni.get("SubnetId", ""))

    @property
    def source_dest_check(self) -> bool:
        return bool(self.eni.get("SourceDestCheck", True))

    @property
    def instance_id(self) -> str | None:
        attachment = self.eni.get("Attachment") or {}
        return attachment.get("InstanceId")

    @property
    def attached(self) -> bool:
        return (self.eni.get("Attachment") or {}).get("Status") == "attached"

    @property
    def private_ip(self) -> str:
        return str(self.eni.get("PrivateIpAddress", ""))


@dataclass(frozen=True)
class TgwContext:
    route_table_id: str
    transit_gateway_id: str
    attachment_id: str
    attachment_vpc: str
    attachment_state: str
    route: dict[str, Any] | None  # the VIP/32 route of the TGW table, as SearchTransitGatewayRoutes shows it

    @property
    def route_attachment(self) -> str | None:
        if self.route is None:
            return None
        attachments = self.route.get("TransitGatewayAttachments") or []
        return str(attachments[0]["TransitGatewayAttachmentId"]) if attachments else None

    @property
    def route_ok(self) -> bool:
        return (
            self.route is not None
            and self.route.get("State") == "active"
            and self.route_attachment == self.attachment_id
        )


@dataclass
class VipContext:
    """Everything the checks and the planner need about one VIP, read from EC2."""

    vip: Vip
    region: str
    vpc_id: str
    vpc_cidrs: tuple[IPv4Network, ...]
    owner_id: str
    tables: dict[str, dict[str, Any]]  # every route table of the VPC, by id
    wanted: list[str]  # ids of the tables that must hold VIP/32
    nodes: dict[str, NodeEni]  # node name -> ENI
    collisions: list[dict[str, Any]]  # tables of other VPCs routing VIP/32
    tgw: TgwContext | None = None
    read_seconds: float = 0.0

    def node_of_eni(self, eni_id: str | None) -> str | None:
        for name, node in self.nodes.items():
            if node.id == eni_id:
                return name
        return None

    def holders(self) -> dict[str, dict[str, Any]]:
        """Tables of the VPC that route VIP/32 -> their VIP route."""
        out = {}
        for table_id, table in self.tables.items():
            route = vip_route(table, self.vip.destination)
            if route is not None:
                out[table_id] = route
        return out

    def active_node(self) -> str | None:
        """The node most VIP routes point at (``None``: none does)."""
        counts = Counter(self.node_of_eni(r.get("NetworkInterfaceId")) for r in self.holders().values())
        counts.pop(None, None)
        return counts.most_common(1)[0][0] if counts else None

    def table_label(self, table_id: str) -> str:
        table = self.tables.get(table_id) or {}
        name = name_of(table)
        if name:
            return f"{table_id} ({name})"
        return f"{table_id} (main)" if is_main(table) else table_id


def vip_route(table: dict[str, Any], destination: str) -> dict[str, Any] | None:
    for route in table.get("Routes") or []:
        if route.get("DestinationCidrBlock") == destination:
            return dict(route)
    return None


def is_main(table: dict[str, Any]) -> bool:
    return any(a.get("Main") for a in table.get("Associations") or [])


def route_target(route: dict[str, Any] | None) -> str:
    """The id a route points at, whatever its kind (``""``: no route)."""
    if route is None:
        return ""
    for key in (
        "NetworkInterfaceId",
        "InstanceId",
        "TransitGatewayId",
        "GatewayId",
        "NatGatewayId",
        "VpcPeeringConnectionId",
        "LocalGatewayId",
        "CarrierGatewayId",
        "EgressOnlyInternetGatewayId",
    ):
        if route.get(key):
            return str(route[key])
    return "?"


def _filters(values: dict[str, Iterable[str]]) -> list[dict[str, Any]]:
    return [{"Name": name, "Values": list(v)} for name, v in values.items()]


def vip_field(vip: Vip, *parts: str) -> str:
    return f"vips[{vip.name}]" + "".join(parts)


def _unresolved(vip: Vip, region: str, field_: str, what: str, value: str, fix: str) -> RemoteError:
    return RemoteError(f"vip {vip.name}", f"{field_}: no {what} '{value}' in {region}", fix)


def read_context(api: AwsApi, vip: Vip, *, with_collisions: bool = True) -> VipContext:
    """Resolve a VIP's VPC, nodes, tables (and TGW) with a handful of concurrent reads."""
    started = time.monotonic()
    region = api.region(vip.region)
    dest = vip.destination

    def holders_anywhere() -> list[dict[str, Any]]:
        # Region-wide on purpose: other VPCs routing the same VIP are the collision check.
        return api.pages(
            "ec2",
            "describe_route_tables",
            "RouteTables",
            region,
            Filters=_filters({"route.destination-cidr-block": [dest]}),
        )

    def enis() -> list[dict[str, Any]]:
        return api.pages_by_id_or_name(
            "ec2",
            "describe_network_interfaces",
            "NetworkInterfaces",
            region,
            [n.eni for n in vip.nodes],
            id_prefix="eni-",
            id_filter="network-interface-id",
        )

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="vip-read") as pool:
        vpcs_f = pool.submit(
            api.pages_by_id_or_name,
            "ec2",
            "describe_vpcs",
            "Vpcs",
            region,
            [vip.vpc],
            id_prefix="vpc-",
            id_filter="vpc-id",
        )
        holders_f = pool.submit(holders_anywhere) if with_collisions else None
        enis_f = pool.submit(enis)
        tables_f = (
            pool.submit(
                api.pages,
                "ec2",
                "describe_route_tables",
                "RouteTables",
                region,
                Filters=_filters({"vpc-id": [vip.vpc]}),
            )
            if vip.vpc.startswith("vpc-")
            else None
        )
        tgw_f = pool.submit(_read_tgw_parts, api, vip, region) if vip.transit_gateway else None
        vpcs = vpcs_f.result()
        if not vpcs:
            raise _unresolved(vip, region, vip_field(vip, ".vpc"), "VPC", vip.vpc, "give the VPC's Name tag or vpc-id")
        if len(vpcs) > 1:
            raise RemoteError(
                f"vip {vip.name}",
                f"{vip_field(vip, '.vpc')}: {len(vpcs)} VPCs are named '{vip.vpc}' in {region}",
                "use the vpc-id instead",
            )
        vpc = vpcs[0]
        vpc_id = str(vpc["VpcId"])
        if tables_f is None:
            tables_f = pool.submit(
                api.pages, "ec2", "describe_route_tables", "RouteTables", region, Filters=_filters({"vpc-id": [vpc_id]})
            )
        tables = {str(t["RouteTableId"]): t for t in tables_f.result()}
        found_enis = enis_f.result()
        holders = holders_f.result() if holders_f is not None else []
        tgw_parts = tgw_f.result() if tgw_f is not None else None

    cidrs = tuple(
        ip_network(a["CidrBlock"])
        for a in vpc.get("CidrBlockAssociationSet") or [{"CidrBlock": vpc["CidrBlock"]}]
        if (a.get("CidrBlockState") or {}).get("State", "associated") in ("associated", "associating")
    )
    nodes = {n.name: NodeEni(n, _pick_eni(vip, region, n, found_enis, vpc_id)) for n in vip.nodes}
    wanted = _wanted_tables(vip, region, tables)
    collisions = [t for t in holders if t.get("VpcId") != vpc_id]
    tgw = None
    if tgw_parts is not None:
        tgw = _tgw_context(api, vip, region, *tgw_parts)
    return VipContext(
        vip=vip,
        region=region,
        vpc_id=vpc_id,
        vpc_cidrs=tuple(c for c in cidrs if isinstance(c, IPv4Network)),
        owner_id=str(vpc.get("OwnerId", "")),
        tables=tables,
        wanted=wanted,
        nodes=nodes,
        collisions=collisions,
        tgw=tgw,
        read_seconds=time.monotonic() - started,
    )


def _pick_eni(vip: Vip, region: str, node: VipNode, found: list[dict[str, Any]], vpc_id: str) -> dict[str, Any]:
    matches = {str(e["NetworkInterfaceId"]): e for e in by_id_or_name(found, node.eni, id_key="NetworkInterfaceId")}
    field_ = vip_field(vip, f".nodes[{node.name}].eni")
    if not matches:
        raise _unresolved(vip, region, field_, "ENI", node.eni, "give the ENI's Name tag or eni-id")
    if len(matches) > 1:
        # Same Name tag in several places: the one in the VIP's VPC is meant, if it is alone.
        inside = [e for e in matches.values() if e.get("VpcId") == vpc_id]
        if len(inside) != 1:
            raise RemoteError(
                f"vip {vip.name}", f"{field_}: {len(matches)} ENIs are named '{node.eni}'", "use the eni-id instead"
            )
        return inside[0]
    return next(iter(matches.values()))


def _wanted_tables(vip: Vip, region: str, tables: dict[str, dict[str, Any]]) -> list[str]:
    if vip.route_tables == ALL_TABLES:
        return sorted(tables)
    out: list[str] = []
    items = list(tables.values())
    for name in vip.route_tables:
        matches = by_id_or_name(items, name, id_key="RouteTableId")
        if not matches and name.lower() == "main":
            matches = [t for t in items if is_main(t)]
        if not matches:
            raise _unresolved(
                vip,
                region,
                vip_field(vip, ".route_tables"),
                f"route table of {vip.vpc} named",
                name,
                "give a route table's Name tag or rtb-id (or 'main'), or write 'all'",
            )
        if len(matches) > 1:
            raise RemoteError(
                f"vip {vip.name}",
                f"{vip_field(vip, '.route_tables')}: {len(matches)} tables are named '{name}'",
                "use the rtb-id instead",
            )
        out.append(str(matches[0]["RouteTableId"]))
    return out


def _read_tgw_parts(api: AwsApi, vip: Vip, region: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    spec = vip.transit_gateway
    assert spec is not None
    tables = api.pages_by_id_or_name(
        "ec2",
        "describe_transit_gateway_route_tables",
        "TransitGatewayRouteTables",
        region,
        [spec.route_table],
        id_prefix="tgw-rtb-",
        id_filter="transit-gateway-route-table-id",
    )
    tables = [t for t in tables if t.get("State") not in ("deleting", "deleted")]
    if len(tables) != 1:
        raise _unresolved(
            vip,
            region,
            vip_field(vip, ".transit_gateway.route_table"),
            "single Transit Gateway route table",
            spec.route_table,
            "give its Name tag or tgw-rtb-id",
        )
    attachments = api.pages_by_id_or_name(
        "ec2",
        "describe_transit_gateway_attachments",
        "TransitGatewayAttachments",
        region,
        [spec.attachment],
        id_prefix="tgw-attach-",
        id_filter="transit-gateway-attachment-id",
    )
    attachments = [a for a in attachments if a.get("State") not in ("deleting", "deleted")]
    if len(attachments) != 1:
        raise _unresolved(
            vip,
            region,
            vip_field(vip, ".transit_gateway.attachment"),
            "single Transit Gateway attachment",
            spec.attachment,
            "give its Name tag or tgw-attach-id",
        )
    route = _search_tgw_route(api, region, str(tables[0]["TransitGatewayRouteTableId"]), vip.destination)
    return tables[0], attachments[0], route


def _search_tgw_route(api: AwsApi, region: str, table_id: str, destination: str) -> dict[str, Any] | None:
    found = (
        api.call(
            "ec2",
            "search_transit_gateway_routes",
            region,
            TransitGatewayRouteTableId=table_id,
            Filters=[{"Name": "route-search.exact-match", "Values": [destination]}],
        ).get("Routes")
        or []
    )
    return dict(found[0]) if found else None


def _tgw_context(
    api: AwsApi, vip: Vip, region: str, table: dict[str, Any], attachment: dict[str, Any], route: dict[str, Any] | None
) -> TgwContext:
    return TgwContext(
        route_table_id=str(table["TransitGatewayRouteTableId"]),
        transit_gateway_id=str(table["TransitGatewayId"]),
        attachment_id=str(attachment["TransitGatewayAttachmentId"]),
        attachment_vpc=str(attachment.get("ResourceId", "")) if attachment.get("ResourceType") == "vpc" else "",
        attachment_state=str(attachment.get("State", "")),
        route=route,
    )


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class TableAction:
    """One route write: ``replace`` / ``create`` ``destination`` in ``table_id`` to ``target``."""

    table_id: str
    label: str
    op: str  # "replace" | "create"
    destination: str
    target: dict[str, str]  # {"NetworkInterfaceId": ...} or {"TransitGatewayId": ...}
    before: str  # what the route pointed at ("" when missing)


def plan_repoint(ctx: VipContext, eni_id: str, *, create_missing: bool = True) -> list[TableAction]:
    """The VIP route writes that make every holder and every declared table point at ``eni_id``.

    Tables of the VPC that hold the VIP but are not declared are repointed too: leaving one
    behind would split the traffic between two nodes.
    """
    actions = []
    for table_id in sorted(ctx.tables):
        route = vip_route(ctx.tables[table_id], ctx.vip.destination)
        if route is not None:
            if route.get("NetworkInterfaceId") == eni_id and route.get("State", "active") == "active":
                continue
            op = "replace"
        elif table_id in ctx.wanted and create_missing:
            op = "create"
        else:
            continue
        actions.append(
            TableAction(
                table_id,
                ctx.table_label(table_id),
                op,
                ctx.vip.destination,
                {"NetworkInterfaceId": eni_id},
                route_target(route),
            )
        )
    return actions


def plan_onprem(ctx: VipContext) -> tuple[list[TableAction], list[Check]]:
    """Reference section 5: each declared table routes the on-prem networks to the TGW.

    Only missing routes are created: a route for the same prefix that points elsewhere may be
    another feature's (the overlay routes on-prem networks to its bridge), so it is reported.
    """
    actions: list[TableAction] = []
    checks: list[Check] = []
    spec = ctx.vip.transit_gateway
    if spec is None or ctx.tgw is None:
        return actions, checks
    for network in spec.onprem_networks:
        dest = str(network)
        for table_id in ctx.wanted:
            route = vip_route(ctx.tables[table_id], dest)
            target = route_target(route)
            if route is None:
                actions.append(
                    TableAction(
                        table_id,
                        ctx.table_label(table_id),
                        "create",
                        dest,
                        {"TransitGatewayId": ctx.tgw.transit_gateway_id},
                        "",
                    )
                )
            elif target != ctx.tgw.transit_gateway_id:
                checks.append(
                    Check(
                        "onprem-route",
                        ctx.table_label(table_id),
                        Status.warn,
                        f"{dest} goes to {target}, not to the Transit Gateway {ctx.tgw.transit_gateway_id}",
                        "left as is: remove that route if on-prem should come back through the Transit Gateway",
                    )
                )
    return actions, checks


# --------------------------------------------------------------------------- execute


@dataclass
class TableOutcome:
    table_id: str
    label: str
    op: str
    destination: str
    before: str
    after: str = ""
    ok: bool = False
    error: str = ""
    seconds: float = 0.0
    code: str | None = None  # the AWS error code when the write failed

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _is_race(op: str, exc: AwsCallError) -> bool:
    """The route appeared (create) or vanished (replace) since it was read."""
    if op == "create_route":
        return exc.code == "RouteAlreadyExists"
    # AWS answers ReplaceRoute on a missing route with InvalidParameterValue "There is no route
    # defined for '...' in the route table. Use CreateRoute instead."
    return exc.code == "InvalidRoute.NotFound" or (
        exc.code == "InvalidParameterValue" and "Use CreateRoute" in exc.message
    )


def _write_route(api: AwsApi, region: str, action: TableAction) -> str:
    """Run one action; on a race (route appeared / vanished since the read) switch verb once."""
    kwargs = {"RouteTableId": action.table_id, "DestinationCidrBlock": action.destination, **action.target}
    first, second = ("replace_route", "create_route") if action.op == "replace" else ("create_route", "replace_route")
    try:
        api.call("ec2", first, region, **kwargs)
        return action.op
    except AwsCallError as exc:
        if not _is_race(first, exc):
            raise
    api.call("ec2", second, region, **kwargs)
    return second.removesuffix("_route")


def apply_actions(api: AwsApi, region: str, actions: list[TableAction], *, parallel: bool = True) -> list[TableOutcome]:
    """Run route writes, all at once (``parallel``) or one by one. Never raises per table."""

    def run(action: TableAction) -> TableOutcome:
        outcome = TableOutcome(action.table_id, action.label, action.op, action.destination, action.before)
        started = time.monotonic()
        try:
            outcome.op = _write_route(api, region, action)
            outcome.ok = True
        except RemoteError as exc:
            outcome.error = str(exc)
            outcome.code = error_code(exc)
        outcome.seconds = time.monotonic() - started
        return outcome

    if not actions:
        return []
    if not parallel or len(actions) == 1:
        return [run(a) for a in actions]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(actions)), thread_name_prefix="vip-write") as pool:
        return list(pool.map(run, actions))


def read_holders(api: AwsApi, ctx: VipContext, destinations: Iterable[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(table id, destination) -> route, for the VPC's tables holding any of ``destinations`` (one call)."""
    dests = sorted(set(destinations))
    tables = api.pages(
        "ec2",
        "describe_route_tables",
        "RouteTables",
        ctx.region,
        Filters=_filters({"vpc-id": [ctx.vpc_id], "route.destination-cidr-block": dests}),
    )
    out = {}
    for table in tables:
        for dest in dests:
            route = vip_route(table, dest)
            if route is not None:
                out[(str(table["RouteTableId"]), dest)] = route
    return out


def verify(
    api: AwsApi,
    ctx: VipContext,
    outcomes: list[TableOutcome],
    actions: list[TableAction],
    *,
    timeout: float = VERIFY_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Read back until every written route shows its new target and is active, or ``timeout``."""
    expected = {
        (a.table_id, a.destination): next(iter(a.target.values()))
        for a, o in zip(actions, outcomes, strict=True)
        if o.ok
    }
    by_key = {(o.table_id, o.destination): o for o in outcomes}
    deadline = time.monotonic() + timeout
    delay = 0.1
    while expected:
        seen = read_holders(api, ctx, {d for _, d in expected})
        for key, target in list(expected.items()):
            route = seen.get(key)
            if route is not None and route_target(route) == target and route.get("State", "active") == "active":
                by_key[key].after = target
                del expected[key]
            else:
                by_key[key].after = route_target(route)
        if not expected or time.monotonic() >= deadline:
            break
        sleep(delay)
        delay = min(delay * 2, 1.0)
    for key in expected:
        outcome = by_key[key]
        outcome.ok = False
        outcome.error = f"read back: still -> {outcome.after or 'no route'} after {timeout:.0f}s"


# --------------------------------------------------------------------------- operations


@dataclass
class TgwOutcome:
    route_table_id: str
    attachment_id: str
    before: str
    op: str  # "none" | "create" | "replace"
    ok: bool
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class MoveResult:
    vip: str
    node: str
    eni_id: str
    region: str
    vpc_id: str
    tables: list[TableOutcome] = field(default_factory=list)
    onprem: list[TableOutcome] = field(default_factory=list)
    tgw: TgwOutcome | None = None
    source_dest_check: dict[str, str] = field(default_factory=dict)  # eni -> "disabled" / error
    checks: list[Check] = field(default_factory=list)
    read_seconds: float = 0.0
    write_seconds: float = 0.0  # first write sent -> every route verified: the traffic switch
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            all(t.ok for t in self.tables + self.onprem)
            and (self.tgw is None or self.tgw.ok)
            and all(v == "disabled" for v in self.source_dest_check.values())
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "vip": self.vip,
            "node": self.node,
            "eni": self.eni_id,
            "region": self.region,
            "vpc": self.vpc_id,
            "ok": self.ok,
            "tables": [t.as_dict() for t in self.tables],
            "onprem_routes": [t.as_dict() for t in self.onprem],
            "transit_gateway": self.tgw.as_dict() if self.tgw else None,
            "source_dest_check": self.source_dest_check,
            "checks": [c.as_dict() for c in self.checks],
            "read_seconds": round(self.read_seconds, 4),
            "write_seconds": round(self.write_seconds, 4),
            "calls": self.calls,
        }


def _ensure_tgw_route(api: AwsApi, ctx: VipContext) -> TgwOutcome | None:
    tgw = ctx.tgw
    if tgw is None:
        return None
    before = tgw.route_attachment or ("blackhole" if tgw.route is not None else "")
    if tgw.route_ok:
        return TgwOutcome(tgw.route_table_id, tgw.attachment_id, before, "none", True)
    # A propagated route cannot be replaced, but a static one for the same prefix hides it.
    op = "replace" if tgw.route is not None and tgw.route.get("Type") == "static" else "create"
    kwargs = {
        "TransitGatewayRouteTableId": tgw.route_table_id,
        "DestinationCidrBlock": ctx.vip.destination,
        "TransitGatewayAttachmentId": tgw.attachment_id,
    }
    try:
        api.call("ec2", f"{op}_transit_gateway_route", ctx.region, **kwargs)
        after = _search_tgw_route(api, ctx.region, tgw.route_table_id, ctx.vip.destination)
        attachments = (after or {}).get("TransitGatewayAttachments") or []
        ok = bool(attachments) and attachments[0].get("TransitGatewayAttachmentId") == tgw.attachment_id
        return TgwOutcome(tgw.route_table_id, tgw.attachment_id, before, op, ok, "" if ok else "read back differs")
    except RemoteError as exc:
        return TgwOutcome(tgw.route_table_id, tgw.attachment_id, before, op, False, str(exc))


def _disable_source_dest_check(api: AwsApi, ctx: VipContext, nodes: Iterable[NodeEni]) -> dict[str, str]:
    out = {}
    for node in nodes:
        if not node.source_dest_check:
            continue
        try:
            api.call(
                "ec2",
                "modify_network_interface_attribute",
                ctx.region,
                NetworkInterfaceId=node.id,
                SourceDestCheck={"Value": False},
            )
            out[node.id] = "disabled"
        except RemoteError as exc:
            out[node.id] = str(exc)
    return out


class VipPartialFailure(PartialFailure):
    """Some writes (or their read-back) failed; ``result`` says what happened to each."""

    def __init__(self, message: str, results: dict[str, str], result: MoveResult) -> None:
        super().__init__(message, results)
        self.result = result

    @property
    def permission(self) -> bool:
        """Every failed write was refused by IAM (retrying elsewhere will not help)."""
        from hybridctl.features.vip.aws import PERMISSION_CODES

        failed = [t for t in self.result.tables + self.result.onprem if not t.ok]
        return bool(failed) and all(t.code in PERMISSION_CODES for t in failed)


def _finish(result: MoveResult, api: AwsApi, before: Counter[str]) -> MoveResult:
    result.calls = dict(sorted((api.calls - before).items()))
    if not result.ok:
        failed = {t.label: t.error for t in result.tables + result.onprem if not t.ok}
        if result.tgw is not None and not result.tgw.ok:
            failed[f"transit gateway {result.tgw.route_table_id}"] = result.tgw.error
        failed.update({eni: err for eni, err in result.source_dest_check.items() if err != "disabled"})
        raise VipPartialFailure(f"vip {result.vip}: {len(failed)} change(s) failed", failed, result)
    return result


def move(
    api: AwsApi,
    vip: Vip,
    node_name: str,
    *,
    allow_collisions: bool = False,
    create_missing: bool = True,
    parallel: bool = True,
    ctx: VipContext | None = None,
    verify_timeout: float = VERIFY_TIMEOUT,
) -> MoveResult:
    """Point every table holding (or meant to hold) the VIP at ``node_name``'s ENI, then verify.

    Raises :class:`UnsafeError` (nothing written) when a safety check fails, and
    :class:`PartialFailure` (``.result`` holds the :class:`MoveResult`) when a write or the
    read-back fails.
    """
    try:
        vip.node(node_name)
    except KeyError:
        raise RemoteError(
            f"vip {vip.name}", f"no node '{node_name}'", f"use one of {', '.join(n.name for n in vip.nodes)}"
        ) from None
    before = Counter(api.calls)
    ctx = ctx or read_context(api, vip)
    target = ctx.nodes[node_name]
    checks = safety.run(ctx, target, allow_collisions=allow_collisions or vip.allow_collisions)
    failed = [c for c in checks if c.status is Status.fail]
    if failed:
        raise UnsafeError(vip.name, failed)
    result = MoveResult(vip.name, node_name, target.id, ctx.region, ctx.vpc_id, checks=checks)
    result.read_seconds = ctx.read_seconds
    actions = plan_repoint(ctx, target.id, create_missing=create_missing)
    started = time.monotonic()
    result.tables = apply_actions(api, ctx.region, actions, parallel=parallel)
    verify(api, ctx, result.tables, actions, timeout=verify_timeout)
    result.write_seconds = time.monotonic() - started
    result.tgw = _ensure_tgw_route(api, ctx)
    return _finish(result, api, before)


def ensure(
    api: AwsApi,
    vip: Vip,
    node_name: str | None = None,
    *,
    allow_collisions: bool = False,
    verify_timeout: float = VERIFY_TIMEOUT,
) -> MoveResult:
    """Idempotent setup: source/dest check off on every node, VIP/32 in every declared table
    (to ``node_name``, else the node most tables point at, else the first node), the TGW route
    and the on-prem routes to the TGW. A second run writes nothing."""
    before = Counter(api.calls)
    ctx = read_context(api, vip)
    node_name = node_name or ctx.active_node() or vip.nodes[0].name
    if node_name not in ctx.nodes:
        raise RemoteError(
            f"vip {vip.name}", f"no node '{node_name}'", f"use one of {', '.join(n.name for n in vip.nodes)}"
        )
    target = ctx.nodes[node_name]
    # Every check but the one ensure itself fixes runs before the first write.
    checks = safety.run(ctx, target, allow_collisions=allow_collisions or vip.allow_collisions, source_dest_check=False)
    failed = [c for c in checks if c.status is Status.fail]
    if failed:
        raise UnsafeError(vip.name, failed)
    result = MoveResult(vip.name, node_name, target.id, ctx.region, ctx.vpc_id, checks=checks)
    result.read_seconds = ctx.read_seconds
    result.source_dest_check = _disable_source_dest_check(api, ctx, ctx.nodes.values())
    actions = plan_repoint(ctx, target.id, create_missing=True)
    onprem_actions, onprem_checks = plan_onprem(ctx)
    result.checks += onprem_checks
    started = time.monotonic()
    outcomes = apply_actions(api, ctx.region, actions + onprem_actions)
    verify(api, ctx, outcomes, actions + onprem_actions, timeout=verify_timeout)
    result.write_seconds = time.monotonic() - started
    result.tables, result.onprem = outcomes[: len(actions)], outcomes[len(actions) :]
    result.tgw = _ensure_tgw_route(api, ctx)
    return _finish(result, api, before)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class TableStatus:
    table_id: str
    name: str | None
    main: bool
    wanted: bool
    target: str  # "" when the table does not route the VIP
    node: str | None
    state: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class VipStatus:
    vip: str
    address: str
    region: str
    vpc_id: str
    active_node: str | None
    tables: list[TableStatus]
    checks: list[Check]
    tgw: dict[str, object] | None
    calls: dict[str, int]

    @property
    def in_sync(self) -> bool:
        """Every declared table holds the VIP, every holder points at one node, and it is active."""
        if self.active_node is None:
            return False
        for table in self.tables:
            if table.wanted and not table.target:
                return False
            if table.target and (table.node != self.active_node or table.state != "active"):
                return False
        return self.tgw is None or bool(self.tgw.get("ok"))

    def as_dict(self) -> dict[str, object]:
        return {
            "vip": self.vip,
            "address": self.address,
            "region": self.region,
            "vpc": self.vpc_id,
            "active_node": self.active_node,
            "in_sync": self.in_sync,
            "tables": [t.as_dict() for t in self.tables],
            "transit_gateway": self.tgw,
            "checks": [c.as_dict() for c in self.checks],
            "calls": self.calls,
        }


def status(api: AwsApi, vip: Vip) -> VipStatus:
    """Where the VIP is routed, and every safety check against its current node (reads only)."""
    before = Counter(api.calls)
    ctx = read_context(api, vip)
    active = ctx.active_node()
    tables = []
    for table_id in sorted(ctx.tables):
        table = ctx.tables[table_id]
        route = vip_route(table, vip.destination)
        tables.append(
            TableStatus(
                table_id,
                name_of(table),
                is_main(table),
                table_id in ctx.wanted,
                route_target(route),
                ctx.node_of_eni((route or {}).get("NetworkInterfaceId")),
                str((route or {}).get("State", "")),
            )
        )
    target = ctx.nodes[active] if active else None
    checks = safety.run(ctx, target, allow_collisions=vip.allow_collisions)
    onprem = plan_onprem(ctx)
    checks += onprem[1]
    tgw = None
    if ctx.tgw is not None:
        tgw = {
            "route_table": ctx.tgw.route_table_id,
            "attachment": ctx.tgw.attachment_id,
            "route_to": ctx.tgw.route_attachment,
            "state": (ctx.tgw.route or {}).get("State"),
            "ok": ctx.tgw.route_ok,
            "onprem_routes_missing": [f"{a.label} {a.destination}" for a in onprem[0]],
        }
    return VipStatus(
        vip.name,
        str(vip.address),
        ctx.region,
        ctx.vpc_id,
        active,
        tables,
        checks,
        tgw,
        dict(sorted((api.calls - before).items())),
    )


def error_is(exc: BaseException, *codes: str) -> bool:
    return error_code(exc) in codes
