"""Apply: route writes (all tables in parallel), their read-back, the Transit Gateway route, the ENIs' flag.

Every write goes through :class:`~hybridctl.features.vip.aws.AwsApi`; a failure is recorded in
its outcome, never raised per table, so the caller reports every table at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from hybridctl.core.errors import RemoteError
from hybridctl.features.vip.aws import AwsApi, AwsCallError, error_code
from hybridctl.features.vip.context import NodeEni, VipContext, route_target
from hybridctl.features.vip.plan import TableAction
from hybridctl.features.vip.read import read_holders, search_tgw_route
from hybridctl.features.vip.results import TableOutcome, TgwOutcome

MAX_PARALLEL = 32
VERIFY_TIMEOUT = 15.0


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


def ensure_tgw_route(api: AwsApi, ctx: VipContext) -> TgwOutcome | None:
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
        after = search_tgw_route(api, ctx.region, tgw.route_table_id, ctx.vip.destination)
        attachments = (after or {}).get("TransitGatewayAttachments") or []
        ok = bool(attachments) and attachments[0].get("TransitGatewayAttachmentId") == tgw.attachment_id
        return TgwOutcome(tgw.route_table_id, tgw.attachment_id, before, op, ok, "" if ok else "read back differs")
    except RemoteError as exc:
        return TgwOutcome(tgw.route_table_id, tgw.attachment_id, before, op, False, str(exc))


def disable_source_dest_check(api: AwsApi, ctx: VipContext, nodes: Iterable[NodeEni]) -> dict[str, str]:
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
