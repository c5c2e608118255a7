"""Desired state: what the overlay needs in every layer, as plain immutable data.

The planner produces a :class:`DesiredState`; ``up``, ``routes diff`` and ``down`` all consume
it. :meth:`DesiredState.resources` flattens it into :class:`Resource` items (layer, key,
attributes, why) — the unit that the pure diff compares with actual state and that the CLI
renders per layer. Each Resource also carries its typed item (:data:`Item`: a :class:`Flag`, a
:class:`RouteItem`, a :class:`SoftEtherItem`...), built by the planner for desired items and by
the backends for what they read, so that nothing downstream parses keys or rebuilds names: the
key and attributes are what the diff compares and the CLI shows, the item is what is applied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal, TypeAlias

from hybridctl.core.inventory.models import SshEndpoint
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

IP_FORWARD: Literal["net.ipv4.ip_forward"] = "net.ipv4.ip_forward"

Provider = Literal["aws", "azure"]
TargetKind = Literal["eni", "instance", "virtual-appliance"]


@dataclass(frozen=True, order=True)
class Resource:
    """One desired (or actual) item. ``key`` identifies it within its layer.

    ``item`` is the typed object behind it (see :data:`Item`); it takes no part in comparisons:
    the diff compares keys and attributes, backends apply items.
    """

    layer: str
    key: tuple[str, ...]
    attrs: tuple[tuple[str, str], ...] = ()
    why: str = field(default="", compare=False)
    owned: bool = field(default=True, compare=False)
    item: Item | None = field(default=None, compare=False, repr=False)

    def get(self, name: str, default: str = "") -> str:
        return dict(self.attrs).get(name, default)

    @property
    def ident(self) -> tuple[str, tuple[str, ...]]:
        return (self.layer, self.key)

    @property
    def subject(self) -> Item | None:
        """The typed item (same name as :attr:`hybridctl.core.diff.Change.subject`)."""
        return self.item


def res(layer: str, key: tuple[str, ...], why: str = "", item: Item | None = None, **attrs: object) -> Resource:
    return Resource(layer, key, tuple(sorted((k, str(v)) for k, v in attrs.items())), why, item=item)


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

    @property
    def text(self) -> str:
        """The value as the flag's owner spells it: sysctl ``1``/``0``, cloud ``true``/``false``."""
        if self.name == IP_FORWARD:
            return "1" if self.value else "0"
        return str(self.value).lower()


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
class HostFile:
    """A file hybridctl renders for a host (hybridctl/core/hostfiles.py renders them)."""

    path: str
    content: str
    mode: int = 0o644

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


# -- typed items: what one Resource / Change is about, one class per layer ------------------------
#
# The planner builds them from its own objects (and keeps those inside: RouteItem.route, ...);
# backends build the same classes from what they read (the planned object is then None) so that a
# delete carries what the backend needs to remove, without parsing the key.


@dataclass(frozen=True)
class RuleItem:
    """A security rule (layer ``security-rule``): the planned :class:`SecurityRule` or one read."""

    site: str
    group: str  # the group as the inventory writes it (name or id)
    direction: str  # inbound, outbound
    protocol: str  # all, tcp, udp, icmp (or what the cloud reports)
    port: str  # "*", "443", "1000-2000", "80,443"
    peer: str  # CIDR, address, "sg:<id>", "asg:<name>", "*"
    name: str  # the planner's rule name; for a rule read, the name (or description) found
    rule: SecurityRule | None = None

    @classmethod
    def of(cls, rule: SecurityRule) -> RuleItem:
        return cls(
            rule.site, rule.group, rule.direction, rule.protocol, str(rule.port or "*"), rule.peer, rule.name, rule
        )


@dataclass(frozen=True)
class RouteItem:
    """A route in a cloud route table (layer ``cloud-route``)."""

    site: str
    table: str  # the table's name in the inventory
    destination: str  # canonical CIDR; a route read may have another kind (IPv6, Azure service tag)
    target: str  # ``kind:target`` label (CloudRoute.target_label for a planned route)
    name: str = ""  # the route's name: planned (Azure) or found; "" when the cloud has none
    route: CloudRoute | None = None

    @classmethod
    def of(cls, table: CloudRouteTable, route: CloudRoute) -> RouteItem:
        return cls(table.site, table.name, str(route.prefix), route.target_label, route.name, route)

    @property
    def prefix(self) -> IPv4Network | None:
        """The destination as an IPv4 network (None for one that is not)."""
        if self.route is not None:
            return self.route.prefix
        try:
            return IPv4Network(self.destination)
        except ValueError:
            return None


@dataclass(frozen=True)
class AssociationItem:
    """A subnet's use of a route table (layer ``cloud-association``)."""

    site: str
    table: str
    subnet: str  # the network's name in the inventory


@dataclass(frozen=True)
class PackageItem:
    """A distribution package on a host (layer ``host-package``)."""

    host: str
    package: str


@dataclass(frozen=True)
class ServiceItem:
    """A service running on a host (layer ``host-service``)."""

    host: str
    service: str


@dataclass(frozen=True)
class FileItem:
    """A managed file on a host (layer ``host-file``); ``file`` is None for one read."""

    host: str
    path: str
    file: HostFile | None = None


SoftEtherKind = Literal[
    "listener", "admin-password", "hub", "user", "local-bridge", "l3-switch", "l3-interface", "l3-route", "cascade"
]
SoftEtherObject: TypeAlias = int | str | Hub | HubUser | LocalBridge | L3Switch | L3Interface | L3Route | Cascade


@dataclass(frozen=True)
class SoftEtherItem:
    """One piece of a SoftEther configuration (layer ``softether``).

    ``value`` is the model object: the port of a listener, the secret name of the admin
    password, a Hub, HubUser, LocalBridge, L3Switch, L3Interface, L3Route or Cascade.
    ``parent`` is the hub of a user, the switch of an L3 interface or route, else "".
    """

    host: str
    kind: SoftEtherKind
    value: SoftEtherObject
    parent: str = ""


@dataclass(frozen=True)
class AddressItem:
    """An address on a host's device (layer ``host-address``)."""

    host: str
    device: str
    address: IPv4Interface


@dataclass(frozen=True)
class KernelRouteItem:
    """A kernel route on a host (layers ``host-route`` and ``client-route``)."""

    host: str
    prefix: IPv4Network
    via: IPv4Address | None
    dev: str | None = None


Item: TypeAlias = (
    Flag
    | RuleItem
    | RouteItem
    | AssociationItem
    | PackageItem
    | ServiceItem
    | FileItem
    | SoftEtherItem
    | AddressItem
    | KernelRouteItem
)


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
    files: tuple[HostFile, ...] = ()  # rendered by the planner for managed hosts

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
        """Every item hybridctl applies, flattened, in layer order (host files included).

        Rules for devices hybridctl does not manage (provider ``manual``) and routes of LAN
        clients it cannot reach are not resources: they are shown as instructions instead.
        """
        out: list[Resource] = []
        for flag in self.flags:
            out.append(res("flag", (flag.site, flag.target, flag.name), flag.why, flag, value=str(flag.value).lower()))
        for rule in self.security_rules:
            if rule.provider == "manual":
                continue
            item = RuleItem.of(rule)
            out.append(
                res(
                    "security-rule",
                    (rule.site, rule.group, rule.direction, rule.protocol, item.port, rule.peer),
                    rule.why,
                    item,
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
                        RouteItem.of(table, route),
                        target=route.target_label,
                    )
                )
            for subnet in table.subnets:
                out.append(
                    res(
                        "cloud-association",
                        (table.site, table.name, subnet),
                        f"subnet {subnet} sends overlay traffic by this table",
                        AssociationItem(table.site, table.name, subnet),
                    )
                )
        for host in self.hosts:
            if host.service is not None:
                out.append(
                    res(
                        "host-package",
                        (host.name, host.service),
                        "SoftEther from the distribution",
                        PackageItem(host.name, host.service),
                        installed="true",
                    )
                )
                out.append(
                    res(
                        "host-service",
                        (host.name, host.service),
                        "SoftEther runs, also after boot",
                        ServiceItem(host.name, host.service),
                        state="running",
                    )
                )
            if host.managed:
                out.extend(file_resources(host))
            if host.softether is not None:
                out.extend(softether_resources(host.name, host.softether))
            for address in host.addresses:
                out.append(
                    res(
                        "host-address",
                        (host.name, address.device, str(address.address)),
                        address.why,
                        AddressItem(host.name, address.device, address.address),
                    )
                )
            # A LAN client's kernel routes are its `client-route` items (below), not host routes too.
            for host_route in host.routes if host.role != "client" else ():
                out.append(
                    res(
                        "host-route",
                        (host.name, str(host_route.prefix)),
                        host_route.why,
                        KernelRouteItem(host.name, host_route.prefix, host_route.via, host_route.dev),
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
                        KernelRouteItem(client.client, prefix, client.via),
                        via=client.via,
                        managed=str(client.managed).lower(),
                    )
                )
        for flag_host in self.hosts:
            if flag_host.ip_forward is not None:
                why = f"{flag_host.name} routes between its NIC and the tap"
                forward = Flag(flag_host.site, flag_host.name, IP_FORWARD, flag_host.ip_forward, flag_host.name, why)
                out.append(res("flag", (flag_host.site, flag_host.name, IP_FORWARD), why, forward, value=forward.text))
        order = {layer: i for i, layer in enumerate(LAYERS)}
        return sorted(out, key=lambda r: (order[r.layer], r.key))


def file_resources(host: HostPlan) -> list[Resource]:
    """The files the planner rendered for ``host`` as `host-file` resources (content by hash)."""
    return [
        res(
            "host-file",
            (host.name, file.path),
            "rendered from hybridctl/templates/",
            FileItem(host.name, file.path, file),
            sha256=file.sha256,
            mode=f"{file.mode:o}",
        )
        for file in host.files
    ]


def softether_resources(host: str, config: SoftEtherConfig) -> list[Resource]:
    """SoftEther configuration as flat items (the form `routes diff` shows)."""

    def item(kind: SoftEtherKind, value: SoftEtherObject, parent: str = "") -> SoftEtherItem:
        return SoftEtherItem(host, kind, value, parent)

    out = [
        res("softether", (host, "listener", str(port)), "the only port SoftEther listens on", item("listener", port))
        for port in config.listeners
    ]
    out.append(
        res(
            "softether",
            (host, "admin-password"),
            "every SoftEther server gets an admin password",
            item("admin-password", config.admin_password_secret),
            secret=config.admin_password_secret,
        )
    )
    for hub in config.hubs:
        out.append(
            res(
                "softether",
                (host, "hub", hub.name),
                "virtual hub",
                item("hub", hub),
                secure_nat=str(hub.secure_nat).lower(),
            )
        )
        for user in hub.users:
            out.append(
                res(
                    "softether",
                    (host, "user", hub.name, user.name),
                    "password user",
                    item("user", user, hub.name),
                    secret=user.password_secret,
                )
            )
    for bridge in config.local_bridges:
        out.append(
            res(
                "softether",
                (host, "local-bridge", bridge.hub, bridge.device),
                "joins the hub to a Linux device",
                item("local-bridge", bridge),
                tap=str(bridge.tap).lower(),
            )
        )
    for switch in config.l3_switches:
        out.append(
            res(
                "softether",
                (host, "l3-switch", switch.name),
                "virtual L3 switch",
                item("l3-switch", switch),
                active=str(switch.active).lower(),
            )
        )
        for iface in switch.interfaces:
            out.append(
                res(
                    "softether",
                    (host, "l3-interface", switch.name, str(iface.address)),
                    "L3 switch leg on a hub",
                    item("l3-interface", iface, switch.name),
                    hub=iface.hub,
                )
            )
        for route in switch.routes:
            out.append(
                res(
                    "softether",
                    (host, "l3-route", switch.name, str(route.network)),
                    "L3 switch route to a site behind a bridge",
                    item("l3-route", route, switch.name),
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
                item("cascade", cascade),
                server=f"{cascade.server_host}:{cascade.server_port}",
                remote_hub=cascade.remote_hub,
                user=cascade.username,
                online=str(cascade.online).lower(),
            )
        )
    return out
