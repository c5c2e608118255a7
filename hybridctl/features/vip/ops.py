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

Here are the flows the commands call (``move``, ``ensure``, ``status``); their steps are
:mod:`~hybridctl.features.vip.read` (1), :mod:`~hybridctl.features.vip.safety` (2),
:mod:`~hybridctl.features.vip.plan` and :mod:`~hybridctl.features.vip.apply` (3, 4), over the read
model of :mod:`~hybridctl.features.vip.context`. Nothing here prints; results are the dataclasses
of :mod:`~hybridctl.features.vip.results`, which the CLI renders.
"""

from __future__ import annotations

import time
from collections import Counter

from hybridctl.core.errors import PartialFailure, RemoteError
from hybridctl.core.inventory.vips import Vip
from hybridctl.features.vip import safety
from hybridctl.features.vip.apply import (
    VERIFY_TIMEOUT,
    apply_actions,
    disable_source_dest_check,
    ensure_tgw_route,
    verify,
)
from hybridctl.features.vip.aws import PERMISSION_CODES, AwsApi, error_code, name_of
from hybridctl.features.vip.checks import Status, UnsafeError
from hybridctl.features.vip.context import VipContext, is_main, route_target, vip_route
from hybridctl.features.vip.plan import plan_onprem, plan_repoint
from hybridctl.features.vip.read import read_context
from hybridctl.features.vip.results import MoveResult, TableStatus, VipStatus


class VipPartialFailure(PartialFailure):
    """Some writes (or their read-back) failed; ``result`` says what happened to each."""

    def __init__(self, message: str, results: dict[str, str], result: MoveResult) -> None:
        super().__init__(message, results)
        self.result = result

    @property
    def permission(self) -> bool:
        """Every failed write was refused by IAM (retrying elsewhere will not help)."""
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
    result.tgw = ensure_tgw_route(api, ctx)
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
    result.source_dest_check = disable_source_dest_check(api, ctx, ctx.nodes.values())
    actions = plan_repoint(ctx, target.id, create_missing=True)
    onprem_actions, onprem_checks = plan_onprem(ctx)
    result.checks += onprem_checks
    started = time.monotonic()
    outcomes = apply_actions(api, ctx.region, actions + onprem_actions)
    verify(api, ctx, outcomes, actions + onprem_actions, timeout=verify_timeout)
    result.write_seconds = time.monotonic() - started
    result.tables, result.onprem = outcomes[: len(actions)], outcomes[len(actions) :]
    result.tgw = ensure_tgw_route(api, ctx)
    return _finish(result, api, before)


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
