"""``hybridctl iam-policy``: the least-privilege IAM policy for the features an inventory uses.

Each feature lists the API actions hybridctl calls for it, with the resource type each can be
scoped to (``*`` for actions AWS does not scope, such as every ``Describe*``). The policy groups
them into one statement per (feature, resource) and fills region and account into the ARNs.

Two principals: ``operator`` (whoever runs hybridctl: every feature the inventory uses) and
``node`` (the instance role of a VIP node: only what the OCF agent's start/monitor call, which
is reference section 4's ``ec2:Describe*`` + ``ec2:ReplaceRoute`` narrowed to the calls made).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Resource kinds: "*" or an ARN template (region and account filled in).
ANY = "*"
ROUTE_TABLE = "arn:aws:ec2:{region}:{account}:route-table/*"
ENI = "arn:aws:ec2:{region}:{account}:network-interface/*"
VPC = "arn:aws:ec2:{region}:{account}:vpc/*"
SUBNET = "arn:aws:ec2:{region}:{account}:subnet/*"
SECURITY_GROUP = "arn:aws:ec2:{region}:{account}:security-group/*"
SECURITY_GROUP_RULE = "arn:aws:ec2:{region}:{account}:security-group-rule/*"
VPC_ENDPOINT = "arn:aws:ec2:{region}:{account}:vpc-endpoint/*"
TGW_ROUTE_TABLE = "arn:aws:ec2:{region}:{account}:transit-gateway-route-table/*"
TGW_ATTACHMENT = "arn:aws:ec2:{region}:{account}:transit-gateway-attachment/*"
ROLE = "arn:aws:iam::{account}:role/*"
INSTANCE_PROFILE = "arn:aws:iam::{account}:instance-profile/*"
BUDGET = "arn:aws:budgets::{account}:budget/*"


@dataclass(frozen=True)
class Permission:
    action: str
    resources: tuple[str, ...] = (ANY,)


def _p(action: str, *resources: str) -> Permission:
    return Permission(action, resources or (ANY,))


# What the OCF agent on a node calls: start (= move) and monitor.
VIP_NODE = (
    _p("ec2:DescribeVpcs"),
    _p("ec2:DescribeRouteTables"),
    _p("ec2:DescribeNetworkInterfaces"),
    _p("ec2:ReplaceRoute", ROUTE_TABLE),
    # A declared table that lost the route gets it back on start.
    _p("ec2:CreateRoute", ROUTE_TABLE),
)
VIP_NODE_TGW = (
    _p("ec2:DescribeTransitGatewayRouteTables"),
    _p("ec2:DescribeTransitGatewayAttachments"),
    _p("ec2:SearchTransitGatewayRoutes", TGW_ROUTE_TABLE),
    _p("ec2:CreateTransitGatewayRoute", TGW_ROUTE_TABLE, TGW_ATTACHMENT),
    _p("ec2:ReplaceTransitGatewayRoute", TGW_ROUTE_TABLE, TGW_ATTACHMENT),
)
# `vip status|move|ensure` from an operator's machine: the node's calls plus ensure's setup.
VIP_OPERATOR = (*VIP_NODE, _p("ec2:ModifyNetworkInterfaceAttribute", ENI))
ENDPOINT = (
    _p("ec2:DescribeVpcs"),
    _p("ec2:DescribeVpcAttribute"),
    _p("ec2:DescribeNetworkInterfaces"),
    _p("ec2:DescribeVpcEndpoints"),
    _p("ec2:DescribeSecurityGroups"),
    _p("ec2:DescribeSecurityGroupRules"),
    _p("ec2:ModifyVpcAttribute", VPC),
    _p("ec2:CreateSecurityGroup", SECURITY_GROUP, VPC),
    _p("ec2:AuthorizeSecurityGroupIngress", SECURITY_GROUP, SECURITY_GROUP_RULE),
    _p("ec2:CreateVpcEndpoint", VPC_ENDPOINT, VPC, SUBNET, SECURITY_GROUP),
    _p("ec2:ModifyVpcEndpoint", VPC_ENDPOINT, SUBNET, SECURITY_GROUP),
    # Name tags are given at creation (TagSpecifications), which needs CreateTags on them.
    _p("ec2:CreateTags", SECURITY_GROUP, VPC_ENDPOINT),
    # Private DNS associates the endpoint's private hosted zone with the VPC.
    _p("route53:AssociateVPCWithHostedZone"),
)
DOCTOR = (
    _p("ec2:DescribeIamInstanceProfileAssociations"),
    _p("iam:GetInstanceProfile", INSTANCE_PROFILE),
    _p("iam:SimulatePrincipalPolicy", ROLE),
)
# The overlay's AWS adapter (hybridctl/backends/aws.py, read on this file's last update).
OVERLAY = (
    _p("ec2:DescribeVpcs"),
    _p("ec2:DescribeSubnets"),
    _p("ec2:DescribeRouteTables"),
    _p("ec2:DescribeNetworkInterfaces"),
    _p("ec2:DescribeSecurityGroups"),
    _p("ec2:DescribeInstances"),
    _p("ec2:CreateRoute", ROUTE_TABLE),
    _p("ec2:ReplaceRoute", ROUTE_TABLE),
    _p("ec2:DeleteRoute", ROUTE_TABLE),
    _p("ec2:CreateRouteTable", ROUTE_TABLE, VPC),
    _p("ec2:DeleteRouteTable", ROUTE_TABLE),
    _p("ec2:AssociateRouteTable", ROUTE_TABLE, SUBNET),
    _p("ec2:DisassociateRouteTable", ROUTE_TABLE, SUBNET),
    _p("ec2:ReplaceRouteTableAssociation", ROUTE_TABLE, SUBNET),
    _p("ec2:CreateTags", ROUTE_TABLE),
    _p("ec2:ModifyNetworkInterfaceAttribute", ENI),
    _p("ec2:AuthorizeSecurityGroupIngress", SECURITY_GROUP, SECURITY_GROUP_RULE),
    _p("ec2:AuthorizeSecurityGroupEgress", SECURITY_GROUP, SECURITY_GROUP_RULE),
    _p("ec2:RevokeSecurityGroupIngress", SECURITY_GROUP, SECURITY_GROUP_RULE),
    _p("ec2:RevokeSecurityGroupEgress", SECURITY_GROUP, SECURITY_GROUP_RULE),
)
BUDGETS = (_p("budgets:ViewBudget", BUDGET), _p("budgets:ModifyBudget", BUDGET))
# `hybridctl cost` and `hybridctl leaks` (hybridctl/features/cost/): reads only. Cost Explorer scopes nothing;
# `leaks --delete` needs the delete action of each item removed on top (docs/cost.md).
COST = (
    _p("ce:GetCostAndUsage"),
    _p("ce:GetCostAndUsageWithResources"),
    _p("ce:GetCostForecast"),
    _p("ec2:DescribeVpcs"),
    _p("ec2:DescribeNetworkInterfaces"),
    _p("ec2:DescribeInstances"),
    _p("ec2:DescribeAddresses"),
    _p("ec2:DescribeTags"),
)
LEAKS = (
    _p("ec2:DescribeVpcs"),
    _p("ec2:DescribeNetworkInterfaces"),
    _p("ec2:DescribeInstances"),
    _p("ec2:DescribeAddresses"),
    _p("ec2:DescribeTags"),
    _p("ec2:DescribeVolumes"),
    _p("ec2:DescribeNatGateways"),
    _p("ec2:DescribeRouteTables"),
    _p("ec2:DescribeSnapshots"),
    _p("ec2:DescribeImages"),
    _p("ec2:DescribeVpcEndpoints"),  # `down` lists the endpoint `endpoint ensure` made
    _p("elasticloadbalancing:DescribeLoadBalancers"),
    _p("elasticloadbalancing:DescribeTargetGroups"),
    _p("elasticloadbalancing:DescribeTargetHealth"),
    _p("pricing:GetProducts"),  # monthly estimates from the Price List (else a dated table)
)


def features(inventory: Any, role: str = "operator") -> dict[str, tuple[Permission, ...]]:
    """The features ``inventory`` uses, with their permissions, for ``role``."""
    vips = list(getattr(inventory, "vips", []) or [])
    with_tgw = any(v.transit_gateway is not None for v in vips)
    out: dict[str, tuple[Permission, ...]] = {}
    if role == "node":
        if vips:
            out["VipNode"] = VIP_NODE + (VIP_NODE_TGW if with_tgw else ())
        return out
    if role != "operator":
        raise ValueError(f"unknown role {role!r}: operator or node")
    if any(s.kind == "aws" for s in inventory.sites):
        out["Overlay"] = OVERLAY
        out["Cost"] = COST
        out["Leaks"] = LEAKS
    if vips:
        out["Vip"] = VIP_OPERATOR + (VIP_NODE_TGW if with_tgw else ())
        out["Endpoint"] = ENDPOINT
        out["Doctor"] = DOCTOR
    if getattr(inventory, "budgets", None):
        out["Budgets"] = BUDGETS
    return out


def regions(inventory: Any) -> list[str]:
    default = inventory.aws.region if inventory.aws else None
    found = {s.region or default for s in inventory.sites if s.kind == "aws"}
    found |= {v.region or default for v in getattr(inventory, "vips", []) or []}
    return sorted(r for r in found if r) or ["*"]


def policy(inventory: Any, role: str = "operator", account: str = "*") -> dict[str, Any]:
    """The IAM policy document (JSON-ready) for ``role``."""
    statements = []
    for feature, permissions in features(inventory, role).items():
        by_resources: dict[tuple[str, ...], list[str]] = {}
        for permission in permissions:
            resources = tuple(
                sorted(
                    {
                        template.format(region=region, account=account)
                        for template in permission.resources
                        for region in regions(inventory)
                    }
                )
            )
            actions = by_resources.setdefault(resources, [])
            if permission.action not in actions:
                actions.append(permission.action)
        for index, (resources, actions) in enumerate(sorted(by_resources.items(), key=lambda kv: kv[0] != ("*",))):
            statements.append(
                {
                    "Sid": f"Hybridctl{feature}{index}",
                    "Effect": "Allow",
                    "Action": sorted(actions),
                    "Resource": resources[0] if len(resources) == 1 else list(resources),
                }
            )
    return {"Version": "2012-10-17", "Statement": statements}


def actions_of(permissions: tuple[Permission, ...]) -> list[str]:
    return sorted({p.action for p in permissions})
