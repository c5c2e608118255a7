"""The planner: inventory -> desired state. Pure: no I/O, no clock, no randomness.

Every route is derived from CIDRs, never copied from a hand-written list:

- cloud route tables of site S: every other site's overlay networks -> S's gateway
  (AWS: the ENI or instance; Azure: VirtualAppliance next hop = the gateway's private IP);
- the vpn-server's L3 switch: every bridge site's networks -> that bridge's transit address;
- each bridge host: every other site's networks via the switch's transit address on its tap;
- on-prem LAN clients: every other site's networks and the transit net via their gateway.

Large inventories stay fast: prefixes are computed once and shared between hosts, and tables
over their limit are summarized with integer interval arithmetic (exact merges only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from hybridctl.core.hostfiles import host_files
from hybridctl.core.inventory.addressing import AddressingError, TransitPlan, assign_transit
from hybridctl.core.inventory.models import Inventory, Site, tap_device
from hybridctl.core.planner.desired import (
    ClientRoutes,
    CloudRoute,
    CloudRouteTable,
    DesiredState,
    Flag,
    HostAddress,
    HostPlan,
    HostRoute,
    SecurityRule,
    TargetKind,
)
from hybridctl.core.planner.names import azure_route_name, rule_name
from hybridctl.core.secrets import SecretRef
from hybridctl.core.softether.model import (
    Cascade,
    Hub,
    HubUser,
    L3Interface,
    L3Route,
    L3Switch,
    LocalBridge,
    SoftEtherConfig,
)

DEFAULT_SERVER_HUB = "DEFAULT"
DEFAULT_BRIDGE_HUB = "BRIDGE"
DEFAULT_TAP = "vpntap"


def admin_secret(gateway: str) -> str:
    return f"admin/{gateway}"


def hub_user_secret(hub: str, user: str) -> str:
    return f"hub-user/{hub}/{user}"


def cascade_user(site: str) -> str:
    return f"bridge-{site}"


@dataclass(frozen=True)
class _Prefix:
    """An overlay network, with the text shared by every route that targets it."""

    site: str
    network: IPv4Network
    label: str  # "site/network"


def _overlay_prefixes(inventory: Inventory) -> list[_Prefix]:
    out = [
        _Prefix(site.name, net.cidr, f"{site.name}/{net.name}")
        for site in inventory.sites
        for net in site.networks
        if net.overlay
    ]
    out.sort(key=lambda p: p.network)
    return out


def _ranges(prefixes: Sequence[_Prefix]) -> list[tuple[int, int]]:
    """Merged [start, end] integer ranges covering ``prefixes`` (which must be sorted, disjoint)."""
    merged: list[list[int]] = []
    for prefix in prefixes:
        start = int(prefix.network.network_address)
        end = int(prefix.network.broadcast_address)
        if merged and merged[-1][1] + 1 == start:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _subtract(ranges: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in ranges:
        pieces = [(start, end)]
        for hole_start, hole_end in holes:
            next_pieces = []
            for a, b in pieces:
                if hole_end < a or hole_start > b:
                    next_pieces.append((a, b))
                    continue
                if a < hole_start:
                    next_pieces.append((a, hole_start - 1))
                if hole_end < b:
                    next_pieces.append((hole_end + 1, b))
            pieces = next_pieces
        out.extend(pieces)
    return out


def _range_to_cidrs(start: int, end: int) -> list[IPv4Network]:
    """Exact CIDR cover of an integer range (what ipaddress.summarize_address_range does, fast)."""
    out = []
    while start <= end:
        align = start & -start if start else 1 << 32
        span = end - start + 1
        size = min(align, 1 << (span.bit_length() - 1))
        out.append(IPv4Network((start, 32 - (size.bit_length() - 1))))
        start += size
    return out


class _Planner:
    def __init__(self, inventory: Inventory) -> None:
        self.inv = inventory
        self.transit: TransitPlan = assign_transit(inventory)
        self.server = inventory.server_site
        self.prefixes = _overlay_prefixes(inventory)
        self.all_ranges = _ranges(self.prefixes)
        self.by_site: dict[str, list[_Prefix]] = {}
        for prefix in self.prefixes:
            self.by_site.setdefault(prefix.site, []).append(prefix)
        self.secrets: dict[str, SecretRef] = {}
        self.transit_hub = inventory.transit.hub
        self.switch_if = IPv4Interface(f"{self.transit.switch}/{inventory.transit.cidr.prefixlen}")

    # -- helpers -------------------------------------------------------------------------------
    def secret(self, name: str, spec: str) -> str:
        self.secrets.setdefault(name, SecretRef(name, spec))
        return name

    def remote(self, site: str) -> list[_Prefix]:
        """Overlay networks of every other site, sorted."""
        return [p for p in self.prefixes if p.site != site]

    def remote_summarized(self, site: str, limit: int) -> tuple[list[IPv4Network], bool]:
        count = len(self.prefixes) - len(self.by_site.get(site, []))
        if count <= limit:
            return [p.network for p in self.remote(site)], False
        own = _ranges(self.by_site.get(site, []))
        cidrs = [c for a, b in _subtract(self.all_ranges, own) for c in _range_to_cidrs(a, b)]
        if len(cidrs) > limit:
            raise AddressingError(
                f"site '{site}' needs {count} overlay routes per route table, {len(cidrs)} even summarized, "
                f"over the limit of {limit}",
                site,
                "raise route_limit to your account quota, or renumber sites into contiguous blocks",
            )
        return cidrs, True

    def gateway_lan_address(self, site: Site) -> IPv4Address:
        """Where an on-prem site's LAN clients send overlay traffic."""
        gw = site.gateway
        if gw.role == "vpn-server" and gw.switch_address is not None:
            return gw.switch_address.ip
        return gw.private_ip

    # -- layers --------------------------------------------------------------------------------
    def route_tables(self) -> list[CloudRouteTable]:
        tables: list[CloudRouteTable] = []
        for site in self.inv.sites:
            if site.kind == "onprem":
                continue
            gw = site.gateway
            provider: Literal["aws", "azure"] = "aws" if site.kind == "aws" else "azure"
            if provider == "aws":
                default_limit = self.inv.aws.route_limit if self.inv.aws else 500
                kind: TargetKind = "eni" if gw.eni else "instance"
                target = gw.eni or gw.instance or ""
            else:
                default_limit = self.inv.azure.route_limit if self.inv.azure else 400
                kind = "virtual-appliance"
                target = str(gw.private_ip)
            limit = site.route_limit or default_limit
            prefixes, summarized = self.remote_summarized(site.name, limit)
            labels = {p.network: p.label for p in self.remote(site.name)} if not summarized else {}
            routes = tuple(
                CloudRoute(
                    prefix=prefix,
                    target_kind=kind,
                    target=target,
                    name=azure_route_name(prefix),
                    why=f"{labels.get(prefix, 'remote sites (summarized)')} is reached through {gw.name}",
                )
                for prefix in prefixes
            )
            for table in site.route_tables:
                members = [n for n in site.networks if n.overlay and n.route_table == table.name]
                if not members:
                    continue
                tables.append(
                    CloudRouteTable(
                        site=site.name,
                        provider=provider,
                        name=table.name,
                        table_id=table.id,
                        create=table.create or provider == "azure",
                        subnets=tuple(n.name for n in members),
                        subnet_cidrs=tuple(n.cidr for n in members),
                        routes=routes,
                        summarized=summarized,
                    )
                )
        return tables

    def flags(self) -> list[Flag]:
        flags: list[Flag] = []
        for site in self.bridge_cloud_sites():
            gw = site.gateway
            if site.kind == "aws":
                flags.append(
                    Flag(
                        site.name,
                        gw.name,
                        "source_dest_check",
                        False,
                        gw.eni or gw.instance or gw.name,
                        f"{gw.name} forwards packets for other sites; AWS drops them while the check is on",
                    )
                )
            else:
                flags.append(
                    Flag(
                        site.name,
                        gw.name,
                        "ip_forwarding",
                        True,
                        gw.nic or gw.name,
                        f"{gw.name} forwards packets for other sites; Azure drops them without IP forwarding",
                    )
                )
        return flags

    def bridge_cloud_sites(self) -> list[Site]:
        return [s for s in self.inv.bridge_sites if s.kind in ("aws", "azure")]

    def security_rules(self) -> list[SecurityRule]:
        rules: list[SecurityRule] = []
        for site in self.inv.sites:
            if site.kind == "onprem":
                continue
            provider: Literal["aws", "azure"] = "aws" if site.kind == "aws" else "azure"
            gw = site.gateway
            if gw.security_group:
                for net in site.networks:
                    if not net.overlay:
                        continue
                    rules.append(
                        SecurityRule(
                            site.name,
                            provider,
                            gw.security_group,
                            "inbound",
                            "all",
                            None,
                            str(net.cidr),
                            f"hosts in {net.name} send overlay traffic through {gw.name}",
                            rule_name("from", net.name),
                        )
                    )
            if site.workload_security_group:
                for prefix in self.remote(site.name):
                    rules.append(
                        SecurityRule(
                            site.name,
                            provider,
                            site.workload_security_group,
                            "inbound",
                            "all",
                            None,
                            str(prefix.network),
                            f"hosts in {prefix.label} reach this site's workloads over the overlay",
                            rule_name("from", prefix.label.replace("/", "-")),
                        )
                    )
        server_gw = self.server.gateway
        for site in self.inv.bridge_sites:
            peer = site.gateway.public_address or "0.0.0.0/0"
            rules.append(
                SecurityRule(
                    self.server.name,
                    "manual",
                    "router/firewall in front of " + server_gw.name,
                    "inbound",
                    "tcp",
                    server_gw.vpn_port,
                    peer,
                    f"{site.gateway.name} cascades to the VPN server"
                    + ("" if site.gateway.public_address else " (declare its public_address to narrow this)"),
                    rule_name("cascade", site.name),
                )
            )
        return rules

    def server_host(self) -> HostPlan:
        site = self.server
        gw = site.gateway
        lan_hub = gw.hub or DEFAULT_SERVER_HUB
        assert gw.switch_address is not None and gw.lan_device is not None  # validated
        lan_users = tuple(HubUser(u.name, self.secret(hub_user_secret(lan_hub, u.name), u.password)) for u in gw.users)
        transit_users = tuple(
            HubUser(
                cascade_user(s.name),
                self.secret(hub_user_secret(self.transit_hub, cascade_user(s.name)), "generate"),
            )
            for s in self.inv.bridge_sites
        )
        switch_routes = [
            L3Route(prefix.network, self.transit.bridges[prefix.site])
            for prefix in self.prefixes
            if prefix.site != site.name
        ]
        switch_routes.extend(L3Route(net.cidr, net.via) for net in site.networks if net.overlay and net.via is not None)
        switch = L3Switch(
            name=self.inv.transit.switch_name,
            interfaces=(
                L3Interface(lan_hub, gw.switch_address),
                L3Interface(self.transit_hub, self.switch_if),
            ),
            routes=tuple(sorted(switch_routes)),
        )
        config = SoftEtherConfig(
            role="vpn-server",
            admin_password_secret=self.secret(admin_secret(gw.name), gw.admin_password),
            listeners=tuple(gw.listeners),
            hubs=(Hub(lan_hub, lan_users), Hub(self.transit_hub, transit_users)),
            local_bridges=(LocalBridge(lan_hub, gw.lan_device),),
            l3_switches=(switch,),
        )
        return HostPlan(gw.name, site.name, "vpn-server", gw.ssh, None, softether=config)

    def bridge_hosts(self) -> list[HostPlan]:
        hosts = []
        server_gw = self.server.gateway
        assert server_gw.public_address is not None  # validated
        # Every bridge routes all other sites' prefixes to the switch. Build the route objects once
        # per tap device and give each bridge the list minus its own site's slice (prefixes are
        # sorted, so a site's own prefixes are a few index holes): O(N) copies in C, not O(N) work.
        per_device: dict[str, list[HostRoute]] = {}
        positions: dict[str, list[int]] = {}
        for index, prefix in enumerate(self.prefixes):
            positions.setdefault(prefix.site, []).append(index)
        for site in self.inv.bridge_sites:
            gw = site.gateway
            hub = gw.hub or DEFAULT_BRIDGE_HUB
            tap = gw.tap or DEFAULT_TAP
            device = tap_device(tap)
            address = self.transit.bridges[site.name]
            all_routes = per_device.get(device)
            if all_routes is None:
                all_routes = [
                    HostRoute(p.network, self.transit.switch, device, f"{p.label} is reached through the L3 switch")
                    for p in self.prefixes
                ]
                per_device[device] = all_routes
            routes: list[HostRoute] = []
            start = 0
            for hole in positions.get(site.name, []):
                routes.extend(all_routes[start:hole])
                start = hole + 1
            routes.extend(all_routes[start:])
            routes.extend(
                HostRoute(net.cidr, net.via, None, f"{site.name}/{net.name} is behind LAN router {net.via}")
                for net in site.networks
                if net.overlay and net.via is not None
            )
            user = cascade_user(site.name)
            config = SoftEtherConfig(
                role="vpn-bridge",
                admin_password_secret=self.secret(admin_secret(gw.name), gw.admin_password),
                listeners=tuple(gw.listeners),
                hubs=(Hub(hub),),
                local_bridges=(LocalBridge(hub, tap, tap=True),),
                cascades=(
                    Cascade(
                        name=self.transit_hub,
                        hub=hub,
                        server_host=server_gw.public_address,
                        server_port=server_gw.vpn_port,
                        remote_hub=self.transit_hub,
                        username=user,
                        password_secret=self.secret(hub_user_secret(self.transit_hub, user), "generate"),
                    ),
                ),
            )
            hosts.append(
                HostPlan(
                    gw.name,
                    site.name,
                    "vpn-bridge",
                    gw.ssh,
                    True,
                    addresses=(
                        HostAddress(
                            device,
                            IPv4Interface(f"{address}/{self.inv.transit.cidr.prefixlen}"),
                            "the bridge's leg on the transit network",
                        ),
                    ),
                    routes=tuple(routes),
                    softether=config,
                )
            )
        return hosts

    def clients(self) -> tuple[list[ClientRoutes], list[HostPlan]]:
        routes: list[ClientRoutes] = []
        hosts: list[HostPlan] = []
        transit = self.inv.transit.cidr
        for site in self.inv.sites:
            if not site.clients:
                continue
            via = self.gateway_lan_address(site)
            prefixes = tuple(sorted([p.network for p in self.remote(site.name)] + [transit]))
            for client in site.clients:
                routes.append(
                    ClientRoutes(site.name, client.name, client.address, via, prefixes, client.ssh is not None)
                )
                if client.ssh is not None:
                    hosts.append(
                        HostPlan(
                            client.name,
                            site.name,
                            "client",
                            client.ssh,
                            None,
                            routes=tuple(
                                HostRoute(p, via, None, f"{client.name} reaches {p} through {site.gateway.name}")
                                for p in prefixes
                            ),
                        )
                    )
        return routes, hosts


def plan(inventory: Inventory) -> DesiredState:
    """The complete desired state of the overlay. Raises AddressingError when it cannot fit."""
    planner = _Planner(inventory)
    tables = planner.route_tables()
    clients, client_hosts = planner.clients()
    hosts = [planner.server_host(), *planner.bridge_hosts(), *client_hosts]
    # The files a managed host gets are part of the plan: `resources()` lists them with the rest.
    hosts = [replace(h, files=tuple(host_files(h, inventory.name))) if h.managed else h for h in hosts]
    return DesiredState(
        inventory=inventory.name,
        transit_network=inventory.transit.cidr,
        switch_address=planner.transit.switch,
        transit_addresses=dict(planner.transit.bridges),
        route_tables=tuple(tables),
        flags=tuple(planner.flags()),
        security_rules=tuple(planner.security_rules()),
        hosts=tuple(hosts),
        clients=tuple(clients),
        secrets=tuple(sorted(planner.secrets.values())),
    )
