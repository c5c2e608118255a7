"""Reads: a VIP's VPC, nodes, route tables (and Transit Gateway) from EC2, resolved by id or Name tag.

:func:`read_context` makes a handful of concurrent reads and returns the
:class:`~hybridctl.features.vip.context.VipContext` every later step works on;
:func:`read_holders` is the one filtered read the verification repeats.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network, ip_network
from typing import Any

from hybridctl.backends.aws_lookup import by_id_or_name
from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.vips import ALL_TABLES, Vip, VipNode
from hybridctl.features.vip.aws import AwsApi
from hybridctl.features.vip.context import NodeEni, TgwContext, VipContext, is_main, vip_route


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
    route = search_tgw_route(api, region, str(tables[0]["TransitGatewayRouteTableId"]), vip.destination)
    return tables[0], attachments[0], route


def search_tgw_route(api: AwsApi, region: str, table_id: str, destination: str) -> dict[str, Any] | None:
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
