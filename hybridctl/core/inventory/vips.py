"""Inventory models of the ``vips:`` section: an HA virtual IP moved between nodes by route table.

A VIP here is an address *outside* every CIDR of its VPC (reference.md section 4): clients reach
it because route tables send ``VIP/32`` to the active node's ENI, and failover rewrites those
routes. Optionally a Transit Gateway route table carries ``VIP/32`` to the VPC's attachment so
on-prem clients reach it too (section 5).

These models must not import :mod:`hybridctl.core.inventory.models` (which imports them): they repeat
the two tiny name patterns instead. Field-level checks live here, so pydantic errors come back
through :func:`hybridctl.core.inventory.load.parse_inventory` with file/line/field/fix like any other;
checks across entries (unique names and addresses) are in :mod:`hybridctl.core.inventory.validate`.
The VIPs themselves are read, moved and watched in :mod:`hybridctl.features.vip`.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
VipName = Annotated[str, Field(pattern=_NAME_PATTERN, max_length=64)]
ALL_TABLES: Literal["all"] = "all"


class _Strict(BaseModel):
    # Same policy as the rest of the inventory: unknown keys are errors.
    model_config = ConfigDict(extra="forbid", frozen=True)


class VipNode(_Strict):
    """A cluster node that can hold the VIP: the ENI the routes point at when it is active."""

    name: VipName = Field(description="Node name (the cluster manager's node name; the OCF agent's `node`).")
    eni: str = Field(description="The node's ENI: its Name tag or eni-id. Routes to the VIP target it.")
    interface: str | None = Field(
        None, description="OS interface the OCF agent adds VIP/32 to on this node (e.g. eth0 or lo); none: not managed."
    )

    @field_validator("eni")
    @classmethod
    def _eni(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the ENI is empty: give its Name tag or eni-id")
        return value


class TransitGatewaySpec(_Strict):
    """Reference section 5: on-prem reaches the VPC through a Transit Gateway."""

    route_table: str = Field(description="Transit Gateway route table (Name tag or tgw-rtb-id) that gets VIP/32.")
    attachment: str = Field(description="The VPC's attachment (Name tag or tgw-attach-id) VIP/32 points to.")
    onprem_networks: list[IPv4Network] = Field(
        default_factory=list,
        description="On-prem networks: the VIP's route tables get NETWORK -> the Transit Gateway (replies go home).",
    )

    @field_validator("onprem_networks", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        if isinstance(value, list):
            for item in value:
                if isinstance(item, str) and "/" not in item:
                    raise ValueError(f"'{item}' has no prefix length: write it as a.b.c.d/len")
        return value


class Vip(_Strict):
    """One virtual IP, its VPC, the nodes that may hold it and the tables that carry it."""

    name: VipName
    address: IPv4Address = Field(description="The virtual IP. Must lie outside every CIDR of the VPC.")
    vpc: str = Field(description="The VPC's Name tag or vpc-id.")
    region: str | None = Field(None, description="Default: aws.region.")
    nodes: list[VipNode] = Field(min_length=1, description="Nodes that may hold the VIP, by preference.")
    route_tables: Literal["all"] | list[str] = Field(
        default=ALL_TABLES,
        description="Route tables (Name tag or rtb-id) that must hold VIP/32, or 'all' for every table of the VPC.",
    )
    transit_gateway: TransitGatewaySpec | None = None
    allow_collisions: bool = Field(
        False,
        description="Proceed even when a route table of another VPC in the account and region routes this VIP "
        "(those tables are never touched).",
    )
    monitor_interval: float = Field(
        10.0, ge=0, le=3600, description="OCF monitor: reuse the last API answer for this many seconds."
    )

    @field_validator("route_tables", mode="before")
    @classmethod
    def _tables(cls, value: object) -> object:
        if isinstance(value, list):
            if not value:
                raise ValueError("no route table listed: list at least one, or write 'all'")
            names = [str(v) for v in value]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"route table {', '.join(repeated)} listed twice: list each table once")
        return value

    @model_validator(mode="after")
    def _unique_nodes(self) -> Vip:
        for attr in ("name", "eni"):
            values = [getattr(n, attr) for n in self.nodes]
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"node {attr} {', '.join(repeated)} is used twice: give every node its own {attr}")
        return self

    @property
    def destination(self) -> str:
        """The route destination: ``VIP/32``."""
        return f"{self.address}/32"

    def node(self, name: str) -> VipNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)
