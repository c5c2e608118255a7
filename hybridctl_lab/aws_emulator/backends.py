"""In-process access to the emulator's state (moto's backends), for code in the same process.

The lab's fabric reconciler runs in the lab daemon next to the emulator and reads the
state directly instead of over HTTP. Two levels are offered:

* :func:`fabric_view` returns an immutable snapshot of what a cloud router needs
  (VPCs, subnets, route tables with their subnet associations and resolved next hops,
  ENIs with private IPs and the source/dest check). Prefer this: it does not depend on
  moto's internals.
* :func:`ec2_backend`, :func:`iam_backend`, :func:`budgets_backend` return moto's live
  backend objects for anything else. Hold :data:`STATE_LOCK` while reading them so a
  request being served does not change them under you.

moto keeps its state in module-level globals, so the state is per *process*: every
:class:`~hybridctl_lab.aws_emulator.AwsEmulator` in one process serves the same data.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from typing import Any

DEFAULT_ACCOUNT_ID = "123456789012"
PARTITION = "aws"

#: Serialises every request the emulator serves and every in-process reader. Re-entrant so a
#: subscriber callback or the admin API can take it while already holding it.
STATE_LOCK = threading.RLock()


def ec2_backend(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
    """moto's ``EC2Backend`` for one account and region (created on first use)."""
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id][region]


def iam_backend(account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
    """moto's ``IAMBackend`` (IAM is global: one per account and partition)."""
    from moto.iam.models import iam_backends

    return iam_backends[account_id][PARTITION]


def budgets_backend(account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
    """moto's ``BudgetsBackend`` of the *calling* account (budgets are then keyed by AccountId)."""
    from moto.budgets.models import budgets_backends

    return budgets_backends[account_id][PARTITION]


def reset_state() -> None:
    """Forget every resource in every service (what moto's ``/moto-api/reset`` does)."""
    from moto.moto_api._internal.models import moto_api_backend

    with STATE_LOCK:
        moto_api_backend.reset()


# --------------------------------------------------------------------------- route targets


def route_target_eni(route: Any, backend: Any) -> Any | None:
    """The ENI a VPC route forwards to, as AWS resolves it.

    A route created with ``NetworkInterfaceId`` targets that ENI; one created with
    ``InstanceId`` targets the instance's primary ENI (AWS stores and describes both).
    """
    if route.interface is not None:
        return route.interface
    instance = route.instance
    if instance is not None and getattr(instance, "nics", None):
        return instance.nics.get(0) or next(iter(instance.nics.values()), None)
    return None


def route_state(route: Any, backend: Any) -> str:
    """``blackhole`` when the route's ENI/instance target no longer exists, as on AWS."""
    if route.interface is not None and route.interface.id not in backend.enis:
        return "blackhole"
    instance = route.instance
    if instance is not None and (backend.get_instance_by_id(instance.id) is None or instance.state == "terminated"):
        return "blackhole"
    return "active"


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class EniView:
    eni_id: str
    subnet_id: str
    vpc_id: str
    private_ips: tuple[str, ...]  # primary first
    source_dest_check: bool
    instance_id: str | None
    interface_type: str
    tags: dict[str, str]
    public_ip: str | None = None  # auto-assigned or Elastic IP, if any

    @property
    def primary_ip(self) -> str:
        return self.private_ips[0]


@dataclass(frozen=True)
class RouteView:
    destination: str  # IPv4/IPv6 CIDR, or a prefix list id
    target_type: str  # local | network-interface | instance | gateway | transit-gateway | ...
    target_id: str
    state: str  # active | blackhole
    eni_id: str | None = None  # resolved ENI for network-interface / instance targets
    next_hop_ip: str | None = None  # that ENI's primary private IP


@dataclass(frozen=True)
class RouteTableView:
    route_table_id: str
    vpc_id: str
    main: bool
    subnet_ids: tuple[str, ...]  # explicit associations
    routes: tuple[RouteView, ...]
    tags: dict[str, str]


@dataclass(frozen=True)
class SubnetView:
    subnet_id: str
    vpc_id: str
    cidr: str
    availability_zone: str
    tags: dict[str, str]

    @property
    def gateway_ip(self) -> str:
        """The VPC router's address in this subnet (network + 1), as on AWS."""
        return str(ipaddress.ip_network(self.cidr).network_address + 1)


@dataclass(frozen=True)
class VpcView:
    vpc_id: str
    cidrs: tuple[str, ...]
    tags: dict[str, str]


@dataclass(frozen=True)
class FabricView:
    region: str
    vpcs: dict[str, VpcView]
    subnets: dict[str, SubnetView]
    route_tables: dict[str, RouteTableView]
    enis: dict[str, EniView]

    def route_table_for_subnet(self, subnet_id: str) -> RouteTableView | None:
        """The explicitly associated table, else the VPC's main table (AWS's rule)."""
        for table in self.route_tables.values():
            if subnet_id in table.subnet_ids:
                return table
        vpc_id = self.subnets[subnet_id].vpc_id
        for table in self.route_tables.values():
            if table.main and table.vpc_id == vpc_id:
                return table
        return None

    def enis_in_subnet(self, subnet_id: str) -> list[EniView]:
        return [e for e in self.enis.values() if e.subnet_id == subnet_id]


def _tags(resource: Any) -> dict[str, str]:
    return {t["key"]: t["value"] for t in resource.get_tags()}


def _route_view(route: Any, backend: Any) -> RouteView:
    destination = (
        route.destination_cidr_block
        or route.destination_ipv6_cidr_block
        or (route.destination_prefix_list.id if route.destination_prefix_list else "")
    )
    state = route_state(route, backend)
    eni = route_target_eni(route, backend)
    eni_id = eni.id if eni is not None else None
    next_hop = eni.private_ip_address if eni is not None and state == "active" else None
    if route.local:
        return RouteView(destination, "local", "local", "active")
    if route.interface is not None:
        return RouteView(destination, "network-interface", route.interface.id, state, eni_id, next_hop)
    if route.instance is not None:
        return RouteView(destination, "instance", route.instance.id, state, eni_id, next_hop)
    for kind, target in (
        ("transit-gateway", route.transit_gateway_id),
        ("nat-gateway", route.nat_gateway_id),
        ("vpc-peering-connection", route.vpc_peering_connection_id),
        ("egress-only-internet-gateway", route.egress_only_internet_gateway_id),
        ("carrier-gateway", route.carrier_gateway_id),
        ("gateway", route.gateway_id),
    ):
        if target:
            return RouteView(destination, kind, target, state)
    return RouteView(destination, "unknown", "", "blackhole")


def fabric_view(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> FabricView:
    """A consistent snapshot of one region's network state (taken under :data:`STATE_LOCK`)."""
    with STATE_LOCK:
        backend = ec2_backend(region, account_id)
        vpcs = {
            vpc.id: VpcView(
                vpc.id,
                tuple(
                    [vpc.cidr_block]
                    + [
                        c["cidr_block"]
                        for c in vpc.get_cidr_block_association_set()
                        if c["cidr_block"] != vpc.cidr_block
                        and c.get("cidr_block_state", {}).get("state", "associated") == "associated"
                    ]
                ),
                _tags(vpc),
            )
            for vpc in backend.vpcs.values()
        }
        subnets = {
            s.id: SubnetView(s.id, s.vpc_id, s.cidr_block, s.availability_zone, _tags(s))
            for per_az in backend.subnets.values()
            for s in per_az.values()
        }
        tables = {}
        for rt in backend.route_tables.values():
            tables[rt.id] = RouteTableView(
                route_table_id=rt.id,
                vpc_id=rt.vpc_id,
                main=rt.main_association_id is not None,
                subnet_ids=tuple(t for t in rt._associations.values() if t.startswith("subnet-")),
                routes=tuple(_route_view(r, backend) for r in rt.routes),
                tags=_tags(rt),
            )
        enis = {}
        for eni in backend.enis.values():
            ips = [eni.private_ip_address] + [
                a["PrivateIpAddress"]
                for a in eni.private_ip_addresses
                if a.get("PrivateIpAddress") != eni.private_ip_address
            ]
            enis[eni.id] = EniView(
                eni_id=eni.id,
                subnet_id=eni.subnet.id,
                vpc_id=eni.subnet.vpc_id,
                private_ips=tuple(ip for ip in ips if ip),
                source_dest_check=bool(eni.source_dest_check),
                instance_id=eni.instance.id if eni.instance is not None else None,
                interface_type=eni.interface_type,
                tags=_tags(eni),
                public_ip=getattr(eni, "public_ip", None) or None,
            )
        return FabricView(region, vpcs, subnets, tables, enis)
