"""Desired state: what the overlay needs in every layer, as plain immutable data.

The planner produces a :class:`DesiredState`; ``up``, ``routes diff`` and ``down`` all consume
it. :meth:`DesiredState.resources` flattens it into :class:`Resource` items (layer, key,
attributes, why) — the unit that the pure diff compares with actual state and that the CLI
renders per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from hybridctl.core.inventory.models import SshEndpoint
from hybridctl.core.secrets import SecretRef
from hybridctl.core.softether.model import SoftEtherConfig

# Layers in apply order; `--layer` takes these names.
LAYERS: tuple[str, ...] = (
    "flag",
    "security-rule",
    "cloud-route",
    "cloud-association",
    "host-package",
    "host-file",
    "host-service",
    "softether",
    "host-address",
    "host-route",
    "client-route",
)
# Layers `routes diff` shows by default: where traffic goes, and what decides whether it flows.
ROUTING_LAYERS: tuple[str, ...] = (
    "flag",
    "cloud-route",
    "cloud-association",
    "softether",
    "host-address",
    "host-route",
    "client-route",
)

Provider = Literal["aws", "azure"]
TargetKind = Literal["eni", "instance", "virtual-appliance"]


@dataclass(frozen=True, order=True)
class Resource:
    """One desired (or actual) item. ``key`` identifies it within its layer."""

    layer: str
    key: tuple[str, ...]
    attrs: tuple[tuple[str, str], ...] = ()
    why: str = field(default="", compare=False)
    owned: bool = field(default=True, compare=False)

    def get(self, name: str, default: str = "") -> str:
        return dict(self.attrs).get(name, default)

    @property
    def ident(self) -> tuple[str, tuple[str, ...]]:
        return (self.layer, self.key)


def res(layer: str, key: tuple[str, ...], why: str = "", **attrs: object) -> Resource:
    return Resource(layer, key, tuple(sorted((k, str(v)) for k, v in attrs.items())), why)


@dataclass(frozen=True)
class CloudRoute:
    prefix: IPv4Network
    target_kind: TargetKind
    target: str  # ENI/instance name or id (AWS) or next-hop IP (Azure)
    name: str  # Azure route name; informational for AWS
    why: str

    @property
    def target_label(self) -> str:
        return f"{self.target_kind}:{self.target}"


@dataclass(frozen=True)
class CloudRouteTable:
    site: str
    provider: Provider
    name: str
    table_id: str | None
    create: bool
    subnets: tuple[str, ...]  # network names associated with the table
    subnet_cidrs: tuple[IPv4Network, ...]
    routes: tuple[CloudRoute, ...]
    summarized: bool = False


@dataclass(frozen=True)
class Flag:
    site: str
    host: str
    name: Literal["source_dest_check", "ip_forwarding", "net.ipv4.ip_forward"]
    value: bool
    target: str  # ENI / NIC / host the flag lives on
    why: str


@dataclass(frozen=True)
class SecurityRule:
    site: str
    provider: Literal["aws", "azure", "manual"]
    group: str
    direction: Literal["inbound", "outbound"]
    protocol: Literal["all", "tcp", "udp", "icmp"]
    port: int | None
    peer: str  # CIDR or address
    why: str
    name: str


@dataclass(frozen=True)
class HostRoute:
    prefix: IPv4Network
    via: IPv4Address
    dev: str | None
    why: str


@dataclass(frozen=True)
class HostAddress:
    device: str
    address: IPv4Interface
    why: str


@dataclass(frozen=True)
class HostPlan:
    """Everything hybridctl manages on one host reached over SSH."""

    name: str
    site: str
    role: Literal["vpn-server", "vpn-bridge", "client"]
    ssh: SshEndpoint | None
    ip_forward: bool | None  # None: leave as found
    addresses: tuple[HostAddress, ...] = ()
    routes: tuple[HostRoute, ...] = ()
    softether: SoftEtherConfig | None = None

    @property
    def managed(self) -> bool:
        return self.ssh is not None

    @property
    def service(self) -> str | None:
        if self.role == "vpn-server":
            return "softether-vpnserver"
        if self.role == "vpn-bridge":
            return "softether-vpnbridge"
        return None


@dataclass(frozen=True)
class ClientRoutes:
    """Routes an on-prem LAN client needs; applied over SSH when managed, else listed."""

    site: str
    client: str
    address: IPv4Address
    via: IPv4Address
    prefixes: tuple[IPv4Network, ...]
    managed: bool

    @property
    def dhcp_option_121(self) -> str:
        """RFC 3442 classless static routes, as colon-separated hex (ISC/dnsmasq accept it)."""
        octets: list[int] = []
        for prefix in self.prefixes:
            width = prefix.prefixlen
            significant = (width + 7) // 8
            octets.append(width)
            octets.extend(prefix.network_address.packed[:significant])
            octets.extend(self.via.packed)
        return ":".join(f"{o:02x}" for o in octets)

    @property
    def dnsmasq_option(self) -> str:
        pairs = ",".join(f"{p},{self.via}" for p in self.prefixes)
        return f"dhcp-option=121,{pairs}"


@dataclass(frozen=True)
class DesiredState:
    inventory: str
    transit_network: IPv4Network
    switch_address: IPv4Address
    transit_addresses: dict[str, IPv4Address]  # bridge site -> tap address
    route_tables: tuple[CloudRouteTable, ...]
    flags: tuple[Flag, ...]
    security_rules: tuple[SecurityRule, ...]
    hosts: tuple[HostPlan, ...]
    clients: tuple[ClientRoutes, ...]
    secrets: tuple[SecretRef, ...]

    def host(self, name: str) -> HostPlan:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def resources(self) -> list[Resource]:
        """Every item hybridctl applies, flattened, in layer order.

        Rules for devices hybridctl does not manage (provider ``manual``) and routes of LAN
        clients it cannot reach are not resources: they are shown as instructions instead.
        """
        out: list[Resource] = []
        for flag in self.flags:
            out.append(res("flag", (flag.site, flag.target, flag.name), flag.why, value=str(flag.value).lower()))
        for rule in self.security_rules:
            if rule.provider == "manual":
                continue
            out.append(
                res(
                    "security-rule",
                    (rule.site, rule.group, rule.direction, rule.protocol, str(rule.port or "*"), rule.peer),
                    rule.why,
                    name=rule.name,
                    provider=rule.provider,
                )
            )
        for table in self.route_tables:
            for route in table.routes:
                out.append(
                    res(
                        "cloud-route",
                        (table.site, table.name, str(route.prefix)),
                        route.why,
                        target=route.target_label,
                    )
                )
            for subnet in table.subnets:
                out.append(
                    res(
                        "cloud-association",
                        (table.site, table.name, subnet),
                        f"subnet {subnet} sends overlay traffic by this table",
                    )
                )
        for host in self.hosts:
            if host.service is not None:
                out.append(
                    res("host-package", (host.name, host.service), "SoftEther from the distribution", installed="true")
                )
                out.append(
                    res("host-service", (host.name, host.service), "SoftEther runs, also after boot", state="running")
                )
            if host.softether is not None:
                out.extend(softether_resources(host.name, host.softether))
            for address in host.addresses:
                out.append(res("host-address", (host.name, address.device, str(address.address)), address.why))
            # A LAN client's kernel routes are its `client-route` items (below), not host routes too.
            for host_route in host.routes if host.role != "client" else ():
                out.append(
                    res(
                        "host-route",
                        (host.name, str(host_route.prefix)),
                        host_route.why,
                        via=host_route.via,
                        dev=host_route.dev or "",
                    )
                )
        for client in self.clients:
            if not client.managed:
                continue
            for prefix in client.prefixes:
                out.append(
                    res(
                        "client-route",
                        (client.client, str(prefix)),
                        f"{client.client} reaches {prefix} through the overlay gateway",
                        via=client.via,
                        managed=str(client.managed).lower(),
                    )
                )
        for flag_host in self.hosts:
            if flag_host.ip_forward is not None:
                out.append(
                    res(
                        "flag",
                        (flag_host.site, flag_host.name, "net.ipv4.ip_forward"),
                        f"{flag_host.name} routes between its NIC and the tap",
                        value="1" if flag_host.ip_forward else "0",
                    )
                )
        order = {layer: i for i, layer in enumerate(LAYERS)}
        return sorted(out, key=lambda r: (order[r.layer], r.key))


def softether_resources(host: str, config: SoftEtherConfig) -> list[Resource]:
    """SoftEther configuration as flat items (the form `routes diff` shows)."""
    out = [
        res("softether", (host, "listener", str(port)), "the only port SoftEther listens on")
        for port in config.listeners
    ]
    out.append(
        res(
            "softether",
            (host, "admin-password"),
            "every SoftEther server gets an admin password",
            secret=config.admin_password_secret,
        )
    )
    for hub in config.hubs:
        out.append(res("softether", (host, "hub", hub.name), "virtual hub", secure_nat=str(hub.secure_nat).lower()))
        for user in hub.users:
            out.append(
                res("softether", (host, "user", hub.name, user.name), "password user", secret=user.password_secret)
            )
    for bridge in config.local_bridges:
        out.append(
            res(
                "softether",
                (host, "local-bridge", bridge.hub, bridge.device),
                "joins the hub to a Linux device",
                tap=str(bridge.tap).lower(),
            )
        )
    for switch in config.l3_switches:
        out.append(
            res("softether", (host, "l3-switch", switch.name), "virtual L3 switch", active=str(switch.active).lower())
        )
        for iface in switch.interfaces:
            out.append(
                res(
                    "softether",
                    (host, "l3-interface", switch.name, str(iface.address)),
                    "L3 switch leg on a hub",
                    hub=iface.hub,
                )
            )
        for route in switch.routes:
            out.append(
                res(
                    "softether",
                    (host, "l3-route", switch.name, str(route.network)),
                    "L3 switch route to a site behind a bridge",
                    gateway=route.gateway,
                    metric=route.metric,
                )
            )
    for cascade in config.cascades:
        out.append(
            res(
                "softether",
                (host, "cascade", cascade.hub, cascade.name),
                "bridge hub joins the server's transit hub",
                server=f"{cascade.server_host}:{cascade.server_port}",
                remote_hub=cascade.remote_hub,
                user=cascade.username,
                online=str(cascade.online).lower(),
            )
        )
    return out
