"""The Azure backend's pure half: one resource group's read responses -> resolved sites and Resources.

hybridctl/backends/azure.py reads (:class:`AzureRead`: the ARM JSON of the four list calls of one
resource group) and applies; everything in between is here and does no I/O, like the host side's
parsers (hoststate.py): resolve the inventory's names against the objects read, and turn them into
Resources keyed and typed like the planner's. tests/unit/test_azure_parse.py runs it on responses
captured from the project's ARM emulator (tests/fixtures/azure/read_*.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from ipaddress import ip_network
from typing import Any

from hybridctl.backends import arm_json
from hybridctl.backends.cloudcommon import (
    CLOUD_FLAGS,
    MANAGED_TAG,
    Parsed,
    RawRead,
    WasCreated,
    association_resource,
    flag_resource,
    network_field,
    route_resource,
    rule_resource,
    site_field,
    table_field,
    unresolved,
)
from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.models import Site
from hybridctl.core.planner.desired import AssociationItem, CloudRouteTable, DesiredState, Resource, RouteItem, RuleItem
from hybridctl.core.planner.names import NAME_PREFIX

FLAG = CLOUD_FLAGS["azure"]

_PROTOCOLS = {"*": "all", "tcp": "tcp", "udp": "udp", "icmp": "icmp"}
_HOP_LABELS = {
    "virtualappliance": "virtual-appliance",
    "virtualapplianceecmp": "virtual-appliance-ecmp",
    "internet": "internet",
    "vnetlocal": "vnet-local",
    "virtualnetworkgateway": "virtual-network-gateway",
    "none": "none",
}


@dataclass
class AzureRead(RawRead):
    """What one resource group's read returned: the ARM JSON of each list call, nothing else."""

    resource_group: str
    virtual_networks: list[dict[str, Any]] = field(default_factory=list)
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    network_interfaces: list[dict[str, Any]] = field(default_factory=list)
    network_security_groups: list[dict[str, Any]] = field(default_factory=list)


def hop_label(route_props: dict[str, Any]) -> str:
    """``virtual-appliance:<ip>`` / ``internet:`` ... for a route's next hop."""
    hop = arm_json.lower(route_props.get("nextHopType"))
    label = _HOP_LABELS.get(hop, hop or "unknown")
    next_hop = route_props.get("nextHop")
    if hop == "virtualapplianceecmp" and isinstance(next_hop, dict):
        return f"{label}:{','.join(str(a) for a in next_hop.get('nextHopIpAddresses') or [])}"
    return f"{label}:{route_props.get('nextHopIpAddress') or ''}"


def normalize_prefix(prefix: str) -> str:
    """CIDRs in canonical form; service tags (``Storage``) as they are."""
    try:
        return str(ip_network(prefix, strict=False))
    except ValueError:
        return prefix


def rule_items(rule: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(direction, protocol, port, peer) for each peer of an NSG rule, in the planner's spelling."""
    props = arm_json.props(rule)
    direction = arm_json.lower(props.get("direction")) or "inbound"
    protocol = _PROTOCOLS.get(arm_json.lower(props.get("protocol")), arm_json.lower(props.get("protocol")))
    ports = [str(props["destinationPortRange"])] if props.get("destinationPortRange") else []
    ports += [str(p) for p in props.get("destinationPortRanges") or []]
    port = ",".join(ports) or "*"
    if port == "0-65535":
        port = "*"
    side = "source" if direction == "inbound" else "destination"
    peers = [str(props[f"{side}AddressPrefix"])] if props.get(f"{side}AddressPrefix") else []
    peers += [str(p) for p in props.get(f"{side}AddressPrefixes") or []]
    peers += [f"asg:{arm_json.last(str(a.get('id', '')))}" for a in props.get(f"{side}ApplicationSecurityGroups") or []]
    return [(direction, protocol, port, normalize_prefix(p) if p != "*" else p) for p in peers]


@dataclass
class AzureSite:
    """One Azure site as last read."""

    site: Site
    rg: str
    location: str = ""
    vnet: dict[str, Any] | None = None
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)  # network name -> subnet
    specs: dict[str, CloudRouteTable] = field(default_factory=dict)
    tables: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # table name -> table / missing
    rg_tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-case id -> table
    nic: dict[str, Any] | None = None
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # NSG as written -> NSG


AzureParsed = Parsed[AzureSite]  # the sites' state for apply, their items, the failures


def _failed_mark(obj: dict[str, Any]) -> str:
    """`` (provisioning Failed)`` for an object a failed or canceled operation left behind, else ``""``.

    ARM keeps the goal state of a failed write with provisioningState Failed; the diff must see
    such an object of hybridctl's as differing so that the next run writes it again.
    """
    state = str(arm_json.props(obj).get("provisioningState") or "")
    return f" (provisioning {state})" if state.lower() in ("failed", "canceled") else ""


def managed_table(table: dict[str, Any] | None) -> bool:
    return table is not None and (table.get("tags") or {}).get(MANAGED_TAG[0]) == MANAGED_TAG[1]


def parse_group(read: AzureRead, sites: Sequence[Site], desired: DesiredState, was_created: WasCreated) -> AzureParsed:
    """Resolve ``sites`` against ``read`` and list their actual items. Pure."""
    parsed = AzureParsed()
    for site in sites:
        try:
            state = resolve_site(
                site,
                read.resource_group,
                read.virtual_networks,
                read.route_tables,
                read.network_interfaces,
                read.network_security_groups,
                desired,
            )
        except RemoteError as error:
            parsed.failures[site.name] = str(error)
            continue
        parsed.states[site.name] = state
        parsed.resources.extend(site_resources(state, desired, was_created))
    return parsed


def by_name(
    site: Site, items: list[dict[str, Any]], wanted: str, what: str, field_text: str, hint: str
) -> dict[str, Any]:
    matches = [
        i
        for i in items
        if arm_json.lower(i.get("name")) == wanted.lower() or arm_json.lower(i.get("id")) == wanted.lower()
    ]
    if not matches:
        raise unresolved(
            f"azure {site.name}", field_text, what, wanted, f"in resource group {site.resource_group}", hint
        )
    return matches[0]


def resolve_site(
    site: Site,
    rg: str,
    vnets: list[dict[str, Any]],
    tables: list[dict[str, Any]],
    nics: list[dict[str, Any]],
    nsgs: list[dict[str, Any]],
    desired: DesiredState,
) -> AzureSite:
    state = AzureSite(site, rg)
    if site.vnet:
        state.vnet = by_name(
            site, vnets, site.vnet, "virtual network", site_field(site, ".vnet"), "write the VNet's name"
        )
        candidates = [state.vnet]
    else:
        candidates = vnets
    state.location = site.location or str((state.vnet or {}).get("location") or "")
    for network in site.networks:
        if not network.overlay or network.route_table is None:
            continue
        wanted = (network.id or network.name).lower()
        found = [
            (vnet, sub)
            for vnet in candidates
            for sub in arm_json.props(vnet).get("subnets") or []
            if wanted in (arm_json.lower(sub.get("name")), arm_json.lower(sub.get("id")))
        ]
        attr = "id" if network.id else "name"
        if not found:
            raise unresolved(
                f"azure {site.name}",
                network_field(site, network.name, attr),
                "subnet",
                network.id or network.name,
                f"in virtual network {site.vnet or '(any)'} of resource group {rg}",
                "write the subnet's name (or its ARM id in networks[].id)",
            )
        vnet, subnet = found[0]
        prefixes = [arm_json.props(subnet).get("addressPrefix"), *(arm_json.props(subnet).get("addressPrefixes") or [])]
        if str(network.cidr) not in {normalize_prefix(str(p)) for p in prefixes if p}:
            raise RemoteError(
                f"azure {site.name}",
                f"{network_field(site, network.name, 'cidr')}: {network.cidr} but subnet {subnet.get('name')} "
                f"has {', '.join(str(p) for p in prefixes if p)}",
                "correct the cidr or the subnet reference",
            )
        subnet["_vnet"] = vnet["name"]
        state.subnets[network.name] = subnet
        if state.vnet is None:
            state.vnet = vnet
            state.location = state.location or str(vnet.get("location") or "")
    state.rg_tables = {arm_json.lower(t.get("id")): t for t in tables}
    state.specs = {t.name: t for t in desired.route_tables if t.site == site.name}
    for spec in state.specs.values():
        wanted = (spec.table_id or spec.name).lower()
        match = [t for t in tables if wanted in (arm_json.lower(t.get("name")), arm_json.lower(t.get("id")))]
        if match:
            state.tables[spec.name] = match[0]
        elif spec.create:
            state.tables[spec.name] = None
        else:
            raise unresolved(
                f"azure {site.name}",
                table_field(site, spec.name, "id" if spec.table_id else "name"),
                "route table",
                spec.table_id or spec.name,
                f"in resource group {rg}",
                "write the table's name, or set create: true",
            )
    gw = site.gateway
    if gw.nic:  # any role: the NIC carries the next-hop address and, on bridges, the flag
        state.nic = by_name(
            site, nics, gw.nic, "network interface", site_field(site, ".gateway.nic"), "write the NIC's name"
        )
        addresses = {
            str(arm_json.props(c).get("privateIPAddress"))
            for c in arm_json.props(state.nic).get("ipConfigurations") or []
        }
        if str(gw.private_ip) not in addresses:
            raise RemoteError(
                f"azure {site.name}",
                f"{site_field(site, '.gateway.private_ip')}: {gw.private_ip} is not an address of NIC "
                f"{state.nic.get('name')} ({', '.join(sorted(addresses))})",
                "correct private_ip (it is the next hop of every route) or the NIC name",
            )
    for group, attr in (
        (gw.security_group, ".gateway.security_group"),
        (site.workload_security_group, ".workload_security_group"),
    ):
        if group:
            state.groups[group] = by_name(
                site, nsgs, group, "network security group", site_field(site, attr), "write the NSG's name"
            )
    return state


def table_label(state: AzureSite, table_id: str) -> str:
    for name, table in state.tables.items():
        if table is not None and arm_json.lower(table.get("id")) == table_id.lower():
            return name
    return arm_json.last(table_id)


def site_resources(state: AzureSite, desired: DesiredState, was_created: WasCreated) -> list[Resource]:
    """The site's actual items, keyed and typed like the planner's."""
    site = state.site
    out: list[Resource] = []
    for flag in desired.flags:
        if flag.site == site.name and flag.name == FLAG and state.nic is not None:
            found = replace(flag, value=bool(arm_json.props(state.nic).get("enableIPForwarding", False)), why="")
            out.append(flag_resource(found, True))
    for group_text, nsg in state.groups.items():
        for rule in arm_json.props(nsg).get("securityRules") or []:
            name = str(rule.get("name"))
            owned = name.startswith(NAME_PREFIX)
            shown = name + _failed_mark(rule) if owned else name
            for direction, protocol, port, peer in rule_items(rule):
                rule_item = RuleItem(site.name, group_text, direction, protocol, port, peer, name)
                out.append(rule_resource(rule_item, owned, shown, "azure"))
    for table_name, table in state.tables.items():
        if table is None:
            continue
        for route in arm_json.props(table).get("routes") or []:
            props = arm_json.props(route)
            name = str(route.get("name"))
            owned = name.startswith(NAME_PREFIX)
            destination = normalize_prefix(str(props.get("addressPrefix")))
            item = RouteItem(site.name, table_name, destination, hop_label(props), name)
            out.append(route_resource(item, owned, item.target + (_failed_mark(route) if owned else "")))
    wanted = {s for spec in state.specs.values() for s in spec.subnets}
    for network, subnet in state.subnets.items():
        table_ref = arm_json.props(subnet).get("routeTable") or {}
        if network not in wanted or not table_ref.get("id"):
            continue
        table_id = str(table_ref["id"])
        association = AssociationItem(site.name, table_label(state, table_id), network)
        key = (association.site, association.table, association.subnet)
        owned = was_created("cloud-association", key) or managed_table(state.rg_tables.get(table_id.lower()))
        out.append(association_resource(association, owned))
    return out


__all__ = [
    "AzureParsed",
    "AzureRead",
    "AzureSite",
    "hop_label",
    "managed_table",
    "normalize_prefix",
    "parse_group",
    "rule_items",
]
