"""The read model of one VIP: its VPC, the nodes' ENIs, the route tables and the Transit Gateway.

What :func:`hybridctl.features.vip.read.read_context` builds from EC2's answers and every later
step reads: the safety checks (:mod:`hybridctl.features.vip.safety`), the planner
(:mod:`hybridctl.features.vip.plan`) and the status. Pure: no call is made here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from hybridctl.core.inventory.vips import Vip, VipNode
from hybridctl.features.vip.aws import name_of


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
