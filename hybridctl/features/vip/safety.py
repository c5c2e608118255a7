"""Safety checks run before any VIP change (pure: they read a :class:`~hybridctl.features.vip.context.VipContext`).

- ``vip-outside-vpc``: a VIP inside a VPC CIDR is shadowed by the ``local`` route, so the route
  table cannot steer it (reference.md section 4: "outside every VPC CIDR").
- ``collision``: another VPC of the same account and region routes the same ``VIP/32``. Vendors'
  failover agents then monitor and rewrite that entry too and fail to start (seed 003's known
  issue); hybridctl never touches other VPCs, lists the offenders and refuses unless told.
- ``eni-in-vpc``: a route can only target an ENI of the table's VPC.
- ``source-dest-check``: the node receives packets for an address that is not its own, which
  EC2 drops while the ENI's source/destination check is on.
- ``eni-attached`` (warn): a route to a detached ENI is a blackhole.
- ``tgw-attachment``: the declared attachment must be the VIP's VPC's.
"""

from __future__ import annotations

from hybridctl.features.vip.aws import name_of
from hybridctl.features.vip.checks import Check, fail, ok, warn
from hybridctl.features.vip.context import NodeEni, VipContext, route_target, vip_route


def vip_outside_vpc(ctx: VipContext) -> Check:
    subject = f"vip {ctx.vip.name}"
    inside = [str(c) for c in ctx.vpc_cidrs if ctx.vip.address in c]
    if inside:
        return fail(
            "vip-outside-vpc",
            subject,
            f"{ctx.vip.address} lies inside {', '.join(inside)}, a CIDR of {ctx.vpc_id}: the local route wins",
            "choose an address outside every CIDR of the VPC (e.g. outside 10.0.0.0/16 for VPC 10.0.0.0/16)",
        )
    return ok("vip-outside-vpc", subject, f"{ctx.vip.address} is outside {', '.join(map(str, ctx.vpc_cidrs))}")


def collisions(ctx: VipContext, allow: bool) -> Check:
    subject = f"vip {ctx.vip.name}"
    if not ctx.collisions:
        return ok("collision", subject, f"no other VPC in {ctx.region} routes {ctx.vip.destination}")
    offenders = []
    for table in sorted(ctx.collisions, key=lambda t: str(t["RouteTableId"])):
        name = name_of(table)
        label = f"{table['RouteTableId']}" + (f" ({name})" if name else "")
        target = route_target(vip_route(table, ctx.vip.destination))
        offenders.append(f"{label} in {table.get('VpcId')} -> {target}")
    message = f"{len(offenders)} route table(s) of other VPCs in {ctx.region} also route {ctx.vip.destination}"
    fix = (
        "use a VIP unique in the account and region, or delete those routes; "
        "`allow_collisions: true` / --allow-collisions proceeds (those tables are never touched)"
    )
    if allow:
        return warn("collision", subject, message + " (allowed)", fix, *offenders)
    return fail("collision", subject, message, fix, *offenders)


def eni_checks(ctx: VipContext, node: NodeEni, *, source_dest_check: bool = True) -> list[Check]:
    subject = f"node {node.node.name} ({node.id})"
    out = []
    if node.vpc_id != ctx.vpc_id:
        out.append(
            fail(
                "eni-in-vpc",
                subject,
                f"the ENI is in {node.vpc_id}, not in the VIP's VPC {ctx.vpc_id}",
                f"give vips[{ctx.vip.name}].nodes[{node.node.name}].eni an ENI of {ctx.vpc_id}",
            )
        )
    else:
        out.append(ok("eni-in-vpc", subject, f"in {ctx.vpc_id}, subnet {node.subnet_id}"))
    if source_dest_check:
        if node.source_dest_check:
            out.append(
                fail(
                    "source-dest-check",
                    subject,
                    "source/destination check is on: EC2 drops packets for the VIP at this ENI",
                    f"run `hybridctl vip ensure {ctx.vip.name}` (turns it off on every node), or "
                    f"aws ec2 modify-network-interface-attribute --network-interface-id {node.id} "
                    "--no-source-dest-check",
                )
            )
        else:
            out.append(ok("source-dest-check", subject, "source/destination check is off"))
    if not node.attached:
        out.append(
            warn(
                "eni-attached",
                subject,
                "the ENI is not attached to an instance: routes to it are blackholes",
                "attach it to the node's instance",
            )
        )
    return out


def tgw_attachment(ctx: VipContext) -> list[Check]:
    if ctx.tgw is None:
        return []
    subject = f"vip {ctx.vip.name} transit gateway"
    if ctx.tgw.attachment_vpc != ctx.vpc_id:
        return [
            fail(
                "tgw-attachment",
                subject,
                f"attachment {ctx.tgw.attachment_id} is not a VPC attachment of {ctx.vpc_id}",
                f"give vips[{ctx.vip.name}].transit_gateway.attachment the VPC attachment of {ctx.vpc_id}",
            )
        ]
    return [
        ok("tgw-attachment", subject, f"{ctx.tgw.attachment_id} attaches {ctx.vpc_id} ({ctx.tgw.attachment_state})")
    ]


def run(
    ctx: VipContext, target: NodeEni | None, *, allow_collisions: bool = False, source_dest_check: bool = True
) -> list[Check]:
    """Every check for a change towards ``target`` (``None``: checks that need no node)."""
    checks = [vip_outside_vpc(ctx), collisions(ctx, allow_collisions)]
    if target is not None:
        checks += eni_checks(ctx, target, source_dest_check=source_dest_check)
    checks += tgw_attachment(ctx)
    return checks
