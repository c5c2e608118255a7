"""Microsoft.Network resources: body validation (as the network RP does it) and rendering.

Each ``normalize_*`` takes the client's PUT body (already checked for ``location``/``tags``
by the ARM layer) and returns the ``properties`` to store, raising :class:`ArmError` with the
RP's error code when the body is invalid. Validation happens before anything is stored.
Back-references (a route table's ``subnets``, a subnet's ``ipConfigurations``, an NSG's
``subnets``/``networkInterfaces``) are never stored: they are computed when rendering, so they
can never disagree with the forward references.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import ArmError, bad_request, invalid_format

VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
NIC = "Microsoft.Network/networkInterfaces"
IPCONFIG = "Microsoft.Network/networkInterfaces/ipConfigurations"
ROUTE_TABLE = "Microsoft.Network/routeTables"
ROUTE = "Microsoft.Network/routeTables/routes"
NSG = "Microsoft.Network/networkSecurityGroups"
SECURITY_RULE = "Microsoft.Network/networkSecurityGroups/securityRules"
DEFAULT_SECURITY_RULE = "Microsoft.Network/networkSecurityGroups/defaultSecurityRules"

# RouteNextHopType as azure-mgmt-network 33.x (api-version 2026-03-01) models it; ECMP came with
# 2025-07-01 (spec examples RouteTableCreateWithEcmpRoute.json, RouteTableRouteCreateEcmp.json).
NEXT_HOP_TYPES = ("VirtualNetworkGateway", "VnetLocal", "Internet", "VirtualAppliance", "VirtualApplianceEcmp", "None")
ECMP_MIN_NEXT_HOPS, ECMP_MAX_NEXT_HOPS = 2, 64  # RouteNextHopEcmp.nextHopIpAddresses: "between 2 and 64"
PROTOCOLS = ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")
SERVICE_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)*$")


class Lookup(Protocol):
    """What validation needs from the store: look up a record, iterate all records."""

    def get(self, resource_id: str) -> dict[str, Any] | None: ...

    def records(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ChildSpec:
    """A child collection kept inline in its parent's ``properties``."""

    segment: str  # URL segment as ARM spells it
    prop: str  # key in the parent's properties
    type: str
    writable: bool


@dataclass(frozen=True)
class TypeSpec:
    type: str
    children: dict[str, ChildSpec]  # keyed by lower-case URL segment
    normalize: Callable[[Lookup, str, dict[str, Any], dict[str, Any] | None, str], dict[str, Any]]


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


# -- small validators ---------------------------------------------------------------------------


def _props(body: dict[str, Any], what: str) -> dict[str, Any]:
    props = body.get("properties", {})
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise invalid_format(f"'properties' of {what} must be an object.")
    return copy.deepcopy(props)


def _network(value: Any, resource_id: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str) or "/" not in value:
        raise bad_request(
            "InvalidAddressPrefixFormat",
            f"Address prefix {value} of resource {resource_id} is not formatted correctly. "
            "It should follow CIDR notation, for example 10.0.0.0/24.",
        )
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise bad_request(
                "InvalidAddressPrefixFormat",
                f"Address prefix {value} of resource {resource_id} is not formatted correctly. "
                "It should follow CIDR notation, for example 10.0.0.0/24.",
            ) from None
        raise bad_request(
            "InvalidCIDRNotation",
            f"The address prefix {value} in resource {resource_id} has an invalid CIDR notation. "
            f"For the given prefix length, the address prefix should be {loose}.",
        ) from None


def _overlaps(a: ipaddress.IPv4Network | ipaddress.IPv6Network, b: Any) -> bool:
    return a.version == b.version and a.overlaps(b)


def _inside(inner: Any, outer: Iterable[Any]) -> bool:
    return any(inner.version == o.version and inner.subnet_of(o) for o in outer)


def _ref_id(value: Any, field: str, owner: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise invalid_format(f"'{field}' of {owner} must be an object with an 'id'.")
    return str(value["id"])


# Microsoft.Network names (learn.microsoft.com, azure-resource-manager/management/resource-name-rules):
# alphanumerics, underscores, periods and hyphens; start with an alphanumeric; end with an
# alphanumeric or an underscore. 1-80 characters; virtual networks 2-64, of which only the
# maximum is enforced here (one-letter VNet names are common in tests and seeds).
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_NAME_LENGTHS = {VNET.lower(): (1, 64)}


def check_name(name: str, resource_type: str) -> None:
    """The network RP's InvalidResourceName (400) for a name Azure does not accept."""
    low, high = _NAME_LENGTHS.get(resource_type.lower(), (1, 80))
    if low <= len(name) <= high and _NAME.fullmatch(name):
        return
    raise bad_request(
        "InvalidResourceName",
        f"Resource name {name} is invalid. The name can be up to {high} characters long. It must begin with a "
        "word character, and it must end with a word character or with '_'. The name may contain word "
        "characters or '.', '-', '_'.",
    )


def _child_name(item: Any, kind: str, parent_id: str) -> str:
    if not isinstance(item, dict):
        raise invalid_format(f"Each entry of '{kind}' in {parent_id} must be an object.")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid_format(f"An entry of '{kind}' in {parent_id} has no 'name'.")
    check_name(name, kind)
    return name


def _bool(value: Any, default: bool, field: str, owner: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_format(f"'{field}' of {owner} must be true or false.")
    return value


def _canonical(value: Any, allowed: Iterable[str]) -> str | None:
    if not isinstance(value, str):
        return None
    for option in allowed:
        if option.lower() == value.lower():
            return option
    return None


def _invalid_reference(target: str, referrer: str) -> ArmError:
    return bad_request(
        "InvalidResourceReference",
        f"Resource {target} referenced by resource {referrer} was not found. Please make sure that the "
        "referenced resource exists, and that both resources are in the same region.",
    )


def _resolve(lookup: Lookup, target: str, expected_type: str, referrer: str, location: str) -> str:
    """Canonical id of a referenced top-level resource, or the RP's InvalidResourceReference."""
    record = lookup.get(target)
    if record is None or str(record["type"]).lower() != expected_type.lower():
        raise _invalid_reference(target, referrer)
    if str(record.get("location", "")).lower() != location.lower():
        raise _invalid_reference(target, referrer)
    return str(record["id"])


def find_subnet(lookup: Lookup, subnet_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(vnet record, subnet entry) for a subnet id, or None."""
    head, sep, name = subnet_id.rstrip("/").rpartition("/")
    if not sep:
        return None
    vnet_id, sep, segment = head.rpartition("/")
    if not sep or segment.lower() != "subnets":
        return None
    vnet = lookup.get(vnet_id)
    if vnet is None or str(vnet["type"]).lower() != VNET.lower():
        return None
    for subnet in vnet.get("properties", {}).get("subnets", []):
        if str(subnet["name"]).lower() == name.lower():
            return vnet, subnet
    return None


def subnet_prefixes(subnet: dict[str, Any]) -> list[Any]:
    props = subnet.get("properties", {})
    values = props.get("addressPrefixes") or ([props["addressPrefix"]] if props.get("addressPrefix") else [])
    return [ipaddress.ip_network(v) for v in values]


def ip_configurations_by_subnet(lookup: Lookup) -> dict[str, list[tuple[str, str]]]:
    """lower-case subnet id -> [(ipConfiguration id, private IP)] over every NIC."""
    out: dict[str, list[tuple[str, str]]] = {}
    for record in lookup.records():
        if str(record["type"]).lower() != NIC.lower():
            continue
        for ipconfig in record.get("properties", {}).get("ipConfigurations", []):
            props = ipconfig.get("properties", {})
            subnet_id = (props.get("subnet") or {}).get("id")
            if subnet_id:
                out.setdefault(str(subnet_id).lower(), []).append(
                    (str(ipconfig["id"]), str(props.get("privateIPAddress", "")))
                )
    return out


# -- virtual networks ----------------------------------------------------------------------------


def _normalize_subnet(
    lookup: Lookup, vnet_id: str, item: Any, vnet_nets: list[Any], location: str
) -> dict[str, Any]:
    name = _child_name(item, "subnets", vnet_id)
    subnet_id = f"{vnet_id}/subnets/{name}"
    props = _props(item, subnet_id)
    for read_only in ("provisioningState", "ipConfigurations", "purpose", "resourceNavigationLinks",
                      "serviceAssociationLinks", "privateEndpoints", "ipConfigurationProfiles"):
        props.pop(read_only, None)
    raw_prefixes: list[Any]
    if props.get("addressPrefixes"):
        raw_prefixes = props["addressPrefixes"]
        if not isinstance(raw_prefixes, list):
            raise invalid_format(f"'addressPrefixes' of {subnet_id} must be a list.")
    elif props.get("addressPrefix"):
        raw_prefixes = [props["addressPrefix"]]
    else:
        raise bad_request(
            "NetcfgInvalidSubnet",
            f"Subnet '{name}' is not valid in virtual network '{vnet_id.rsplit('/', 1)[-1]}': "
            "it has no addressPrefix.",
        )
    for raw in raw_prefixes:
        net = _network(raw, subnet_id)
        if not _inside(net, vnet_nets):
            raise bad_request(
                "NetcfgSubnetRangeOutsideVnet",
                f"Subnet '{name}' is not valid because its IP address range is outside the IP address "
                f"range of virtual network '{vnet_id.rsplit('/', 1)[-1]}'.",
            )
    route_table = _ref_id(props.get("routeTable"), "routeTable", subnet_id)
    if route_table is not None:
        props["routeTable"] = {"id": _resolve(lookup, route_table, ROUTE_TABLE, subnet_id, location)}
    else:
        props.pop("routeTable", None)
    nsg = _ref_id(props.get("networkSecurityGroup"), "networkSecurityGroup", subnet_id)
    if nsg is not None:
        props["networkSecurityGroup"] = {"id": _resolve(lookup, nsg, NSG, subnet_id, location)}
    else:
        props.pop("networkSecurityGroup", None)
    props.setdefault("delegations", [])
    props.setdefault("privateEndpointNetworkPolicies", "Disabled")
    props.setdefault("privateLinkServiceNetworkPolicies", "Enabled")
    return {"id": subnet_id, "name": name, "type": SUBNET, "properties": props}


def normalize_virtual_network(
    lookup: Lookup, resource_id: str, body: dict[str, Any], existing: dict[str, Any] | None, location: str
) -> dict[str, Any]:
    props = _props(body, resource_id)
    space = props.get("addressSpace")
    prefixes = space.get("addressPrefixes") if isinstance(space, dict) else None
    if not isinstance(prefixes, list) or not prefixes:
        raise invalid_format(f"addressSpace.addressPrefixes of {resource_id} must be a non-empty list.")
    nets = [_network(p, resource_id) for p in prefixes]
    for i, a in enumerate(nets):
        for b in nets[i + 1:]:
            if _overlaps(a, b):
                raise bad_request(
                    "VnetAddressSpacesOverlap",
                    f"Cannot create or update virtual network {resource_id}. The address space {a} "
                    f"overlaps with {b} of the same virtual network.",
                )
    raw_subnets = props.get("subnets") or []
    if not isinstance(raw_subnets, list):
        raise invalid_format(f"'subnets' of {resource_id} must be a list.")
    subnets = [_normalize_subnet(lookup, resource_id, s, nets, location) for s in raw_subnets]
    names: set[str] = set()
    for subnet in subnets:
        if subnet["name"].lower() in names:
            raise bad_request(
                "DuplicateResourceName",
                f"Resource {resource_id} has two child resources with the same name ({subnet['name']}).",
            )
        names.add(subnet["name"].lower())
    for i, first in enumerate(subnets):
        for second in subnets[i + 1:]:
            for na in subnet_prefixes(first):
                for nb in subnet_prefixes(second):
                    if _overlaps(na, nb):
                        raise bad_request(
                            "NetcfgSubnetRangesOverlap",
                            f"Subnet '{second['name']}' is not valid because its IP address range overlaps with "
                            f"that of an existing subnet in virtual network '{resource_id.rsplit('/', 1)[-1]}'.",
                        )
    if existing is not None:
        in_use = ip_configurations_by_subnet(lookup)
        kept = {s["name"].lower(): s for s in subnets}
        for old in existing.get("properties", {}).get("subnets", []):
            users = in_use.get(str(old["id"]).lower(), [])
            if not users:
                continue
            new = kept.get(str(old["name"]).lower())
            if new is None:
                raise bad_request(
                    "InUseSubnetCannotBeDeleted",
                    f"Subnet {old['name']} is in use by {users[0][0]} and cannot be deleted. In order to "
                    "delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
                )
            prefixes_new = subnet_prefixes(new)
            for ipconfig_id, ip in users:
                if ip and not any(ipaddress.ip_address(ip) in n for n in prefixes_new):
                    raise bad_request(
                        "InUseSubnetCannotBeUpdated",
                        f"Subnet {old['name']} is in use by {ipconfig_id} and its address prefix cannot be "
                        "changed to exclude that address.",
                    )
    for read_only in ("provisioningState", "resourceGuid"):
        props.pop(read_only, None)
    props["addressSpace"] = {"addressPrefixes": [str(p) for p in prefixes]}
    props["subnets"] = subnets
    props.setdefault("virtualNetworkPeerings", [])
    props.setdefault("enableDdosProtection", False)
    props["resourceGuid"] = (existing or {}).get("properties", {}).get("resourceGuid") or str(uuid.uuid4())
    return props


# -- network interfaces --------------------------------------------------------------------------


def normalize_network_interface(
    lookup: Lookup, resource_id: str, body: dict[str, Any], existing: dict[str, Any] | None, location: str
) -> dict[str, Any]:
    props = _props(body, resource_id)
    raw = props.get("ipConfigurations")
    if not isinstance(raw, list) or not raw:
        raise bad_request(
            "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
            f"Network interface {resource_id} must have at least one IP configuration.",
        )
    in_use = ip_configurations_by_subnet(lookup)
    previous = {
        str(c["name"]).lower(): c for c in (existing or {}).get("properties", {}).get("ipConfigurations", [])
    }
    configs: list[dict[str, Any]] = []
    taken_here: set[str] = set()
    primaries = 0
    for item in raw:
        name = _child_name(item, "ipConfigurations", resource_id)
        config_id = f"{resource_id}/ipConfigurations/{name}"
        cprops = _props(item, config_id)
        cprops.pop("provisioningState", None)
        subnet_ref = _ref_id(cprops.get("subnet"), "subnet", config_id)
        if subnet_ref is None:
            raise invalid_format(f"IP configuration {config_id} must reference a subnet.")
        found = find_subnet(lookup, subnet_ref)
        if found is None or str(found[0].get("location", "")).lower() != location.lower():
            raise _invalid_reference(subnet_ref, config_id)
        vnet, subnet = found
        subnet_id = str(subnet["id"])
        nets = subnet_prefixes(subnet)
        others = {
            ip: owner
            for owner, ip in in_use.get(subnet_id.lower(), [])
            if not owner.lower().startswith(resource_id.lower() + "/")
        }
        method = _canonical(cprops.get("privateIPAllocationMethod"), ("Static", "Dynamic"))
        requested = cprops.get("privateIPAddress")
        if cprops.get("privateIPAllocationMethod") is not None and method is None:
            raise invalid_format(f"privateIPAllocationMethod of {config_id} must be Static or Dynamic.")
        if method is None:
            method = "Static" if requested else "Dynamic"
        if method == "Static":
            if not isinstance(requested, str):
                raise bad_request(
                    "PrivateIPAddressIsRequiredForStaticAllocation",
                    f"IP configuration {config_id} has Static allocation but no privateIPAddress.",
                )
            try:
                address = ipaddress.ip_address(requested)
            except ValueError:
                raise bad_request(
                    "InvalidPrivateIPAddressFormat",
                    f"Private IP address {requested} of IP configuration {config_id} is not valid.",
                ) from None
            net = next((n for n in nets if address in n), None)
            if net is None:
                raise bad_request(
                    "PrivateIPAddressNotInSubnet",
                    f"IP configuration {config_id} is referencing Private IP Address {requested} that does "
                    f"not belong to the subnet {subnet_id} with prefix {', '.join(map(str, nets))}.",
                )
            offset = int(address) - int(net.network_address)
            if offset < 4 or address == net.broadcast_address:
                raise bad_request(
                    "PrivateIPAddressInReservedRange",
                    f"Private static IP address {requested} falls within reserved IP range of subnet "
                    f"prefix {net}.",
                )
            if requested in others or requested in taken_here:
                raise bad_request(
                    "PrivateIPAddressInUse",
                    f"IP configuration {config_id} is using the private IP address {requested} which is "
                    f"already allocated to resource {others.get(requested, resource_id)}.",
                )
            ip = requested
        else:
            old = previous.get(name.lower(), {}).get("properties", {})
            old_ip = old.get("privateIPAddress")
            same_subnet = str((old.get("subnet") or {}).get("id", "")).lower() == subnet_id.lower()
            if old_ip and same_subnet and old_ip not in others and old_ip not in taken_here:
                ip = str(old_ip)  # a dynamic address sticks to its NIC, as in Azure
            else:
                ip = _allocate(nets, set(others) | taken_here, subnet_id)
        taken_here.add(ip)
        primary = _bool(cprops.get("primary"), len(raw) == 1, "primary", config_id)
        primaries += primary
        cprops.update(
            {
                "subnet": {"id": subnet_id},
                "privateIPAddress": ip,
                "privateIPAllocationMethod": method,
                "privateIPAddressVersion": "IPv6" if ":" in ip else "IPv4",
                "primary": primary,
            }
        )
        if vnet is None:  # pragma: no cover - find_subnet returns both or nothing
            raise _invalid_reference(subnet_ref, config_id)
        configs.append({"id": config_id, "name": name, "type": IPCONFIG, "properties": cprops})
    if primaries != 1:
        raise bad_request(
            "NetworkInterfaceMustHaveExactlyOnePrimaryIpConfiguration",
            f"Network interface {resource_id} must have exactly one primary IP configuration.",
        )
    nsg = _ref_id(props.get("networkSecurityGroup"), "networkSecurityGroup", resource_id)
    if nsg is not None:
        props["networkSecurityGroup"] = {"id": _resolve(lookup, nsg, NSG, resource_id, location)}
    else:
        props.pop("networkSecurityGroup", None)
    for read_only in ("provisioningState", "resourceGuid", "macAddress", "virtualMachine", "hostedWorkloads"):
        props.pop(read_only, None)
    props["ipConfigurations"] = configs
    props["enableIPForwarding"] = _bool(props.get("enableIPForwarding"), False, "enableIPForwarding", resource_id)
    props["enableAcceleratedNetworking"] = _bool(
        props.get("enableAcceleratedNetworking"), False, "enableAcceleratedNetworking", resource_id
    )
    props.setdefault("dnsSettings", {"dnsServers": [], "appliedDnsServers": []})
    props.setdefault("nicType", "Standard")
    props["hostedWorkloads"] = []
    props["tapConfigurations"] = []
    props["vnetEncryptionSupported"] = False
    props["resourceGuid"] = (existing or {}).get("properties", {}).get("resourceGuid") or str(uuid.uuid4())
    return props


def _allocate(nets: list[Any], taken: set[str], subnet_id: str) -> str:
    for net in nets:
        for offset in range(4, net.num_addresses - 1):
            candidate = str(net.network_address + offset)
            if candidate not in taken:
                return candidate
    raise bad_request(
        "SubnetIsFull", f"Subnet {subnet_id} with address prefix {nets[0]} does not have enough capacity."
    )


# -- route tables --------------------------------------------------------------------------------


def _next_hop_ip(address: Any, name: str) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise bad_request(
            "InvalidNextHopIpAddress", f"NextHopIpAddress {address} in route {name} is not a valid IP address."
        ) from None


def normalize_route(route_id: str, name: str, props: dict[str, Any]) -> dict[str, Any]:
    props.pop("provisioningState", None)
    props.pop("hasBgpOverride", None)
    prefix = props.get("addressPrefix")
    if not isinstance(prefix, str) or not prefix:
        raise invalid_format(f"Route {route_id} must have an addressPrefix.")
    if "/" in prefix or not SERVICE_TAG.match(prefix):
        props["addressPrefix"] = str(_network(prefix, route_id))
    hop = _canonical(props.get("nextHopType"), NEXT_HOP_TYPES)
    if hop is None:
        raise bad_request(
            "InvalidNextHopType" if props.get("nextHopType") else "MissingNextHopType",
            f"Route {name} has an invalid nextHopType {props.get('nextHopType')!r}; allowed values are "
            f"{', '.join(NEXT_HOP_TYPES)}.",
        )
    props["nextHopType"] = hop
    address = props.get("nextHopIpAddress")
    next_hop = props.get("nextHop")
    if next_hop is not None and hop != "VirtualApplianceEcmp":
        # RoutePropertiesFormat.nextHop: "Only allowed when nextHopType is VirtualApplianceEcmp."
        raise bad_request(
            "NextHopNotAllowed",
            f"nextHop is not allowed in route {name} because NextHopType is {hop}; "
            "it is only allowed when NextHopType is VirtualApplianceEcmp.",
        )
    if hop == "VirtualAppliance":
        if not address:
            raise bad_request(
                "MissingNextHopIpAddress",
                f"NextHopIpAddress cannot be Null or Empty in route {name} when NextHopType is VirtualAppliance.",
            )
        _next_hop_ip(address, name)
    elif address:
        raise bad_request(
            "NextHopIpAddressNotAllowed",
            f"NextHopIpAddress {address} is not allowed in route {name} because NextHopType is {hop}; "
            "it is only allowed when NextHopType is VirtualAppliance.",
        )
    else:
        props.pop("nextHopIpAddress", None)
    if hop == "VirtualApplianceEcmp":
        addresses = next_hop.get("nextHopIpAddresses") if isinstance(next_hop, dict) else None
        if not isinstance(addresses, list) or not ECMP_MIN_NEXT_HOPS <= len(addresses) <= ECMP_MAX_NEXT_HOPS:
            raise bad_request(
                "InvalidNextHopIpAddresses",
                f"Route {name} has NextHopType VirtualApplianceEcmp and needs nextHop.nextHopIpAddresses with "
                f"{ECMP_MIN_NEXT_HOPS} to {ECMP_MAX_NEXT_HOPS} IP addresses.",
            )
        for item in addresses:
            _next_hop_ip(item, name)
        if len({str(a).lower() for a in addresses}) != len(addresses):
            raise bad_request(
                "InvalidNextHopIpAddresses", f"nextHop.nextHopIpAddresses of route {name} lists an address twice."
            )
    props["hasBgpOverride"] = False
    return props


def normalize_route_table(
    lookup: Lookup, resource_id: str, body: dict[str, Any], existing: dict[str, Any] | None, location: str
) -> dict[str, Any]:
    props = _props(body, resource_id)
    raw = props.get("routes") or []
    if not isinstance(raw, list):
        raise invalid_format(f"'routes' of {resource_id} must be a list.")
    routes = []
    names: set[str] = set()
    prefixes: dict[str, str] = {}
    for item in raw:
        name = _child_name(item, "routes", resource_id)
        route_id = f"{resource_id}/routes/{name}"
        rprops = normalize_route(route_id, name, _props(item, route_id))
        if name.lower() in names:
            raise bad_request("DuplicateResourceName", f"Route table {resource_id} has two routes named {name}.")
        names.add(name.lower())
        prefix = str(rprops["addressPrefix"]).lower()
        if prefix in prefixes:
            raise bad_request(
                "RouteConflict",
                f"Route {name} conflicts with route {prefixes[prefix]}: routes of a route table must have "
                f"different address prefixes ({rprops['addressPrefix']}).",
            )
        prefixes[prefix] = name
        routes.append({"id": route_id, "name": name, "type": ROUTE, "properties": rprops})
    for read_only in ("provisioningState", "resourceGuid", "subnets"):
        props.pop(read_only, None)
    props["routes"] = routes
    props["disableBgpRoutePropagation"] = _bool(
        props.get("disableBgpRoutePropagation"), False, "disableBgpRoutePropagation", resource_id
    )
    props["resourceGuid"] = (existing or {}).get("properties", {}).get("resourceGuid") or str(uuid.uuid4())
    return props


# -- network security groups ---------------------------------------------------------------------

_DEFAULT_RULES = (
    ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork",
     "Allow", 65000, "Inbound"),
    ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer",
     "*", "Allow", 65001, "Inbound"),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork",
     "VirtualNetwork", "Allow", 65000, "Outbound"),
    ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow",
     65001, "Outbound"),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
)


def default_security_rules(nsg_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "name": name,
            "type": DEFAULT_SECURITY_RULE,
            "properties": {
                "description": description,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": source,
                "destinationAddressPrefix": destination,
                "access": access,
                "priority": priority,
                "direction": direction,
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "sourceAddressPrefixes": [],
                "destinationAddressPrefixes": [],
            },
        }
        for name, description, source, destination, access, priority, direction in _DEFAULT_RULES
    ]


def _port_range(value: Any, rule_id: str) -> str:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else None
    ok = False
    if text == "*":
        ok = True
    elif text:
        bounds = text.split("-")
        if len(bounds) in (1, 2) and all(b.isdigit() and 0 <= int(b) <= 65535 for b in bounds):
            ok = len(bounds) == 1 or int(bounds[0]) <= int(bounds[1])
    if not ok or text is None:
        raise bad_request(
            "SecurityRuleInvalidPortRange",
            f"Security rule has invalid Port range. Value provided: {value}. Value should be an integer OR "
            f"integer range with '-' delimiter. Valid range 0-65535. ({rule_id})",
        )
    return text


def _address_prefix(value: Any, rule_id: str) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("SecurityRuleInvalidAddressPrefix", f"Security rule {rule_id} has an invalid address prefix.")
    if value == "*" or (SERVICE_TAG.match(value) and not value.replace(".", "").isdigit()):
        return value
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        raise bad_request(
            "SecurityRuleInvalidAddressPrefix",
            f"Security rule {rule_id} has invalid Address prefix. Value provided: {value}.",
        ) from None
    return value


def _single_or_list(props: dict[str, Any], single: str, many: str, rule_id: str,
                    check: Callable[[Any, str], str], required: bool) -> None:
    one = props.get(single)
    several = props.get(many) or []
    if not isinstance(several, list):
        raise invalid_format(f"'{many}' of {rule_id} must be a list.")
    if one not in (None, "") and several:
        raise bad_request(
            "SecurityRuleParameterContainsUnsupportedValue",
            f"Security rule parameter {single} for rule with Id {rule_id} cannot be specified when "
            f"{many} is not empty.",
        )
    if one in (None, "") and not several and required:
        raise bad_request(
            "SecurityRuleParameterMissing", f"Security rule {rule_id} must specify {single} or {many}."
        )
    if one not in (None, ""):
        props[single] = check(one, rule_id)
    else:
        props.pop(single, None)
    props[many] = [check(v, rule_id) for v in several]


def normalize_security_rule(rule_id: str, props: dict[str, Any]) -> dict[str, Any]:
    props.pop("provisioningState", None)
    protocol = _canonical(props.get("protocol"), PROTOCOLS)
    if protocol is None:
        raise bad_request(
            "SecurityRuleInvalidProtocol",
            f"Security rule {rule_id} has invalid Protocol {props.get('protocol')!r}. Allowed values are "
            f"{', '.join(PROTOCOLS)}.",
        )
    access = _canonical(props.get("access"), ("Allow", "Deny"))
    if access is None:
        raise bad_request("SecurityRuleInvalidAccess", f"Security rule {rule_id} must have access Allow or Deny.")
    direction = _canonical(props.get("direction"), ("Inbound", "Outbound"))
    if direction is None:
        raise bad_request(
            "SecurityRuleInvalidDirection", f"Security rule {rule_id} must have direction Inbound or Outbound."
        )
    priority = props.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 100 <= priority <= 4096:
        raise bad_request(
            "SecurityRuleInvalidPriority",
            f"Security rule has invalid Priority. Value provided: {priority} Allowed range 100-4096. ({rule_id})",
        )
    props.update({"protocol": protocol, "access": access, "direction": direction, "priority": priority})
    _single_or_list(props, "sourcePortRange", "sourcePortRanges", rule_id, _port_range, True)
    _single_or_list(props, "destinationPortRange", "destinationPortRanges", rule_id, _port_range, True)
    has_source_asg = bool(props.get("sourceApplicationSecurityGroups"))
    has_dest_asg = bool(props.get("destinationApplicationSecurityGroups"))
    _single_or_list(props, "sourceAddressPrefix", "sourceAddressPrefixes", rule_id, _address_prefix,
                    not has_source_asg)
    _single_or_list(props, "destinationAddressPrefix", "destinationAddressPrefixes", rule_id, _address_prefix,
                    not has_dest_asg)
    return props


def check_rule_conflicts(rules: list[dict[str, Any]]) -> None:
    seen: dict[tuple[int, str], str] = {}
    for rule in rules:
        key = (int(rule["properties"]["priority"]), str(rule["properties"]["direction"]))
        if key in seen:
            raise bad_request(
                "SecurityRuleConflict",
                f"Security rule {rule['name']} conflicts with rule {seen[key]}. Rules cannot have the same "
                "Priority and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[key] = str(rule["name"])


def normalize_network_security_group(
    lookup: Lookup, resource_id: str, body: dict[str, Any], existing: dict[str, Any] | None, location: str
) -> dict[str, Any]:
    props = _props(body, resource_id)
    raw = props.get("securityRules") or []
    if not isinstance(raw, list):
        raise invalid_format(f"'securityRules' of {resource_id} must be a list.")
    rules = []
    names: set[str] = set()
    for item in raw:
        name = _child_name(item, "securityRules", resource_id)
        rule_id = f"{resource_id}/securityRules/{name}"
        if name.lower() in names:
            raise bad_request("DuplicateResourceName", f"{resource_id} has two security rules named {name}.")
        names.add(name.lower())
        rules.append(
            {"id": rule_id, "name": name, "type": SECURITY_RULE,
             "properties": normalize_security_rule(rule_id, _props(item, rule_id))}
        )
    check_rule_conflicts(rules)
    for read_only in ("provisioningState", "resourceGuid", "subnets", "networkInterfaces", "flowLogs"):
        props.pop(read_only, None)
    props["securityRules"] = rules
    props["defaultSecurityRules"] = default_security_rules(resource_id)
    props["resourceGuid"] = (existing or {}).get("properties", {}).get("resourceGuid") or str(uuid.uuid4())
    return props


# -- child resources: PUT one entry of a parent's collection -------------------------------------


def child_entry_for_put(spec: ChildSpec, parent_id: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The entry a child PUT contributes to its parent, to be validated with the parent."""
    props = _props(body, f"{parent_id}/{spec.segment}/{name}")
    return {"name": name, "properties": props}


TYPES: dict[str, TypeSpec] = {
    "virtualnetworks": TypeSpec(
        VNET, {"subnets": ChildSpec("subnets", "subnets", SUBNET, True)}, normalize_virtual_network
    ),
    "networkinterfaces": TypeSpec(
        NIC,
        {"ipconfigurations": ChildSpec("ipConfigurations", "ipConfigurations", IPCONFIG, False)},
        normalize_network_interface,
    ),
    "routetables": TypeSpec(
        ROUTE_TABLE, {"routes": ChildSpec("routes", "routes", ROUTE, True)}, normalize_route_table
    ),
    "networksecuritygroups": TypeSpec(
        NSG,
        {
            "securityrules": ChildSpec("securityRules", "securityRules", SECURITY_RULE, True),
            "defaultsecurityrules": ChildSpec(
                "defaultSecurityRules", "defaultSecurityRules", DEFAULT_SECURITY_RULE, False
            ),
        },
        normalize_network_security_group,
    ),
}


def spec_for_type(resource_type: str) -> TypeSpec | None:
    for spec in TYPES.values():
        if spec.type.lower() == resource_type.lower():
            return spec
    return None


# -- delete checks -------------------------------------------------------------------------------


def referrers(lookup: Lookup, target_id: str) -> list[str]:
    """Ids of subnets / NICs whose forward references point at ``target_id``."""
    target = target_id.lower()
    out = []
    for record in lookup.records():
        rtype = str(record["type"]).lower()
        props = record.get("properties", {})
        if rtype == VNET.lower():
            for subnet in props.get("subnets", []):
                sp = subnet.get("properties", {})
                for key in ("routeTable", "networkSecurityGroup"):
                    if str((sp.get(key) or {}).get("id", "")).lower() == target:
                        out.append(str(subnet["id"]))
        elif rtype == NIC.lower() and str((props.get("networkSecurityGroup") or {}).get("id", "")).lower() == target:
            out.append(str(record["id"]))
    return out


def check_delete(lookup: Lookup, record: dict[str, Any]) -> None:
    """Refuse to delete a resource something still uses, as the network RP does."""
    rtype = str(record["type"]).lower()
    rid = str(record["id"])
    if rtype == ROUTE_TABLE.lower():
        users = referrers(lookup, rid)
        if users:
            raise bad_request(
                "InUseRouteTableCannotBeDeleted",
                f"Route table {rid} is in use and cannot be deleted. In order to delete the route table, "
                f"remove all references to it. Referenced by: {', '.join(users)}.",
            )
    elif rtype == NSG.lower():
        users = referrers(lookup, rid)
        if users:
            raise bad_request(
                "InUseNetworkSecurityGroupCannotBeDeleted",
                f"Network security group {rid} cannot be deleted because it is in use by the following "
                f"resources: {', '.join(users)}. In order to delete the Network security group, remove the "
                "association with the resource(s).",
            )
    elif rtype == VNET.lower():
        in_use = ip_configurations_by_subnet(lookup)
        for subnet in record.get("properties", {}).get("subnets", []):
            users_ = in_use.get(str(subnet["id"]).lower())
            if users_:
                raise bad_request(
                    "InUseSubnetCannotBeDeleted",
                    f"Subnet {subnet['name']} is in use by {users_[0][0]} and cannot be deleted. In order to "
                    "delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
                )


# -- rendering -----------------------------------------------------------------------------------


def render(body: dict[str, Any], lookup: Lookup) -> dict[str, Any]:
    """Add the computed back-references a GET shows."""
    out = copy.deepcopy(body)
    rtype = str(out["type"]).lower()
    props = out.setdefault("properties", {})
    rid = str(out["id"])
    if rtype == VNET.lower():
        in_use = ip_configurations_by_subnet(lookup)
        for subnet in props.get("subnets", []):
            configs = in_use.get(str(subnet["id"]).lower())
            if configs:
                subnet["properties"]["ipConfigurations"] = [{"id": ipc} for ipc, _ in configs]
    elif rtype == ROUTE_TABLE.lower():
        users = referrers(lookup, rid)
        if users:
            props["subnets"] = [{"id": u} for u in users]
    elif rtype == NSG.lower():
        users = referrers(lookup, rid)
        subnets = [u for u in users if "/subnets/" in u.lower()]
        nics = [u for u in users if "/subnets/" not in u.lower()]
        if subnets:
            props["subnets"] = [{"id": u} for u in subnets]
        if nics:
            props["networkInterfaces"] = [{"id": u} for u in nics]
    return out
