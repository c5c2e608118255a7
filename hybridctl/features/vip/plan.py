"""Plan: the route writes that repoint a VIP, and the on-prem routes to the Transit Gateway (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from hybridctl.features.vip.checks import Check, Status
from hybridctl.features.vip.context import VipContext, route_target, vip_route


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
