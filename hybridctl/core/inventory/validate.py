"""Cross-field checks of an inventory: one Problem per mistake, with file, line, field and fix."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import TYPE_CHECKING

from hybridctl.core.errors import Problem
from hybridctl.core.inventory.addressing import AddressingError, assign_transit
from hybridctl.core.inventory.models import Inventory, Site, SshEndpoint, tap_device
from hybridctl.core.inventory.problems import field_name
from hybridctl.core.secrets import check_resolvable

if TYPE_CHECKING:
    from hybridctl.core.inventory.load import LoadedInventory

Loc = tuple[str | int, ...]
MAX_IFNAME = 15  # IFNAMSIZ - 1


class _Collector:
    def __init__(self, loaded: LoadedInventory) -> None:
        self.loaded = loaded
        self.problems: list[Problem] = []

    def add(self, loc: Loc, message: str, fix: str) -> None:
        self.problems.append(
            Problem(
                file=str(self.loaded.path),
                field=field_name(self.loaded.raw, loc),
                message=message,
                fix=fix,
                line=self.loaded.line_of(loc),
            )
        )


def _site_loc(index: int, *rest: str | int) -> Loc:
    return ("sites", index, *rest)


def _networks(inventory: Inventory) -> Iterator[tuple[int, int, Site, IPv4Network]]:
    for si, site in enumerate(inventory.sites):
        for ni, network in enumerate(site.networks):
            yield si, ni, site, network.cidr


def _check_names(inv: Inventory, out: _Collector) -> None:
    seen_sites: dict[str, int] = {}
    hosts: dict[str, Loc] = {}
    for si, site in enumerate(inv.sites):
        if site.name in seen_sites:
            out.add(_site_loc(si, "name"), f"site name '{site.name}' is used twice", "give every site its own name")
        seen_sites.setdefault(site.name, si)
        named = [(_site_loc(si, "gateway", "name"), site.gateway.name)]
        named += [(_site_loc(si, "clients", ci, "name"), c.name) for ci, c in enumerate(site.clients)]
        named += [(_site_loc(si, "test_hosts", ti, "name"), t.name) for ti, t in enumerate(site.test_hosts)]
        for loc, name in named:
            if name in hosts:
                out.add(loc, f"host name '{name}' is used twice", "give every gateway and client its own name")
            hosts.setdefault(name, loc)
        nets: set[str] = set()
        for ni, network in enumerate(site.networks):
            if network.name in nets:
                out.add(
                    _site_loc(si, "networks", ni, "name"),
                    f"network name '{network.name}' is used twice in site '{site.name}'",
                    "give every network of a site its own name",
                )
            nets.add(network.name)
        tables: set[str] = set()
        for ti, table in enumerate(site.route_tables):
            if table.name in tables:
                out.add(
                    _site_loc(si, "route_tables", ti, "name"),
                    f"route table '{table.name}' is declared twice",
                    "declare each route table once",
                )
            tables.add(table.name)
        for ni, network in enumerate(site.networks):
            if network.route_table is not None and network.route_table not in tables:
                out.add(
                    _site_loc(si, "networks", ni, "route_table"),
                    f"route table '{network.route_table}' is not declared in site '{site.name}'",
                    f"add it under sites[{site.name}].route_tables or correct the name",
                )
    # Services may name hosts of any site: check them once every name is known.
    for si, site in enumerate(inv.sites):
        for vi, service in enumerate(site.services):
            host = service.rpartition(":")[0]
            try:
                ip_address(host)
            except ValueError:
                if host not in hosts:
                    out.add(
                        _site_loc(si, "services", vi),
                        f"service host '{host}' is neither an IP address nor a declared host",
                        "use an IP address or the name of a gateway, client or test host",
                    )


def _check_roles(inv: Inventory, out: _Collector) -> None:
    servers = [si for si, s in enumerate(inv.sites) if s.gateway.role == "vpn-server"]
    if len(servers) != 1:
        loc: Loc = _site_loc(servers[1], "gateway", "role") if len(servers) > 1 else ("sites",)
        out.add(
            loc,
            f"{len(servers)} sites have a vpn-server gateway; the overlay needs exactly one",
            "make one site's gateway role vpn-server and the others vpn-bridge",
        )


def _check_overlaps(inv: Inventory, out: _Collector) -> None:
    # CIDRs either nest or are disjoint, so after sorting by start (largest first on ties) a
    # network overlaps an earlier one exactly when it starts before the furthest end seen.
    # O(n log n): inventories with thousands of networks validate instantly.
    items = sorted(_networks(inv), key=lambda item: (item[3].network_address, item[3].prefixlen))
    furthest: tuple[int, int, Site, IPv4Network] | None = None
    for si, ni, site, cidr in items:
        loc = _site_loc(si, "networks", ni, "cidr")
        if cidr.overlaps(inv.transit.cidr):
            out.add(loc, f"{cidr} overlaps the transit network {inv.transit.cidr}", "renumber one of them")
        if furthest is not None and cidr.network_address <= furthest[3].broadcast_address:
            sj, _nj, other, other_cidr = furthest
            where = "the same site" if si == sj else f"site '{other.name}'"
            out.add(loc, f"{cidr} overlaps {other_cidr} of {where}", "give every network its own address range")
        if furthest is None or cidr.broadcast_address > furthest[3].broadcast_address:
            furthest = (si, ni, site, cidr)


def _in_site(site: Site, address: IPv4Address) -> bool:
    return any(address in n.cidr for n in site.networks)


def _check_gateways(inv: Inventory, out: _Collector) -> None:
    aws_region = inv.aws.region if inv.aws else None
    for si, site in enumerate(inv.sites):
        gw = site.gateway
        g: Loc = _site_loc(si, "gateway")
        if gw.role == "vpn-bridge":
            if not _in_site(site, gw.private_ip):
                out.add(
                    (*g, "private_ip"),
                    f"gateway address {gw.private_ip} is outside every network of site '{site.name}'",
                    "use the gateway NIC's address inside one of the site's networks",
                )
            tap = gw.tap or "vpntap"
            if len(tap_device(tap)) > MAX_IFNAME:
                out.add(
                    (*g, "tap"),
                    f"tap '{tap}' becomes Linux device '{tap_device(tap)}' ({len(tap_device(tap))} chars), "
                    f"over the kernel's {MAX_IFNAME}-character limit",
                    f"use a tap name of at most {MAX_IFNAME - 4} characters",
                )
            for field in ("lan_device", "switch_address", "users"):
                if getattr(gw, field):
                    out.add((*g, field), f"'{field}' applies only to the vpn-server", "remove it")
        else:
            if gw.switch_address is None:
                out.add(
                    (*g, "switch_address"),
                    "the vpn-server needs the L3 switch's LAN address",
                    "set switch_address, e.g. 192.168.1.249/24",
                )
            elif not _in_site(site, gw.switch_address.ip):
                out.add(
                    (*g, "switch_address"),
                    f"{gw.switch_address.ip} is outside every network of site '{site.name}'",
                    "use a free address of the LAN the server bridges",
                )
            elif gw.switch_address.network not in [n.cidr for n in site.networks]:
                out.add(
                    (*g, "switch_address"),
                    f"prefix length of {gw.switch_address} does not match the LAN network",
                    "use the LAN's prefix length",
                )
            if not gw.lan_device:
                out.add(
                    (*g, "lan_device"), "the vpn-server needs the NIC carrying the LAN", "set lan_device, e.g. eth1"
                )
            if not gw.public_address:
                out.add(
                    (*g, "public_address"),
                    "bridges need an address to reach the vpn-server",
                    "set public_address to the address (or DNS name) bridges dial",
                )
            if gw.vpn_port not in gw.listeners:
                out.add(
                    (*g, "listeners"),
                    f"bridges cascade to port {gw.vpn_port} but the server does not listen on it",
                    f"add {gw.vpn_port} to listeners",
                )
            if gw.hub is not None and gw.hub == inv.transit.hub:
                out.add((*g, "hub"), f"LAN hub and transit hub are both '{gw.hub}'", "use different hub names")
            if gw.tap:
                out.add((*g, "tap"), "'tap' applies only to vpn-bridge gateways", "remove it")
        if site.kind == "aws":
            if gw.role == "vpn-bridge" and not (gw.eni or gw.instance):
                out.add((*g, "eni"), "AWS gateways need their ENI or instance", "set eni (Name tag or eni-id)")
            if not site.vpc:
                out.add(_site_loc(si, "vpc"), "AWS sites need their VPC", "set vpc (Name tag or vpc-id)")
            if not (site.region or aws_region):
                out.add(_site_loc(si, "region"), "no AWS region", "set region here or aws.region")
        if site.kind == "azure":
            if gw.role == "vpn-bridge" and not gw.nic:
                out.add((*g, "nic"), "Azure gateways need their NIC name", "set nic")
            if inv.azure is None:
                out.add(("azure",), "an Azure site needs the azure section", "add azure.subscription_id")
            if not site.resource_group:
                out.add(_site_loc(si, "resource_group"), "Azure sites need a resource group", "set resource_group")
            if not site.vnet:
                out.add(_site_loc(si, "vnet"), "Azure sites need their virtual network", "set vnet")


def _check_networks(inv: Inventory, out: _Collector) -> None:
    for si, site in enumerate(inv.sites):
        for ni, network in enumerate(site.networks):
            loc = _site_loc(si, "networks", ni)
            if site.kind != "onprem" and network.overlay and network.route_table is None:
                out.add(
                    (*loc, "route_table"),
                    f"cloud subnet '{network.name}' joins the overlay but names no route table",
                    "set route_table (or overlay: false)",
                )
            if network.via is not None:
                if site.kind != "onprem":
                    out.add((*loc, "via"), "'via' applies only to on-prem networks", "remove it")
                elif not any(network.via in n.cidr for n in site.networks if n.via is None):
                    out.add(
                        (*loc, "via"),
                        f"router {network.via} is not on a directly attached network of site '{site.name}'",
                        "use a router address on the site's LAN",
                    )
        for ci, client in enumerate(site.clients):
            loc = _site_loc(si, "clients", ci, "address")
            if site.kind != "onprem":
                out.add(
                    _site_loc(si, "clients", ci),
                    "cloud hosts get overlay routes from the cloud route table, not as clients",
                    "remove the client or move it to an on-prem site",
                )
            elif not _in_site(site, client.address):
                out.add(loc, f"client {client.address} is outside every network of '{site.name}'", "fix the address")
            elif client.address == site.gateway.private_ip or (
                site.gateway.switch_address and client.address == site.gateway.switch_address.ip
            ):
                out.add(loc, f"client {client.address} uses the gateway's address", "give the client its own address")
        for ti, test_host in enumerate(site.test_hosts):
            if not _in_site(site, test_host.address):
                out.add(
                    _site_loc(si, "test_hosts", ti, "address"),
                    f"test host {test_host.address} is outside every network of '{site.name}'",
                    "list only addresses inside the site",
                )


def _check_secrets(inv: Inventory, out: _Collector) -> None:
    specs: list[tuple[Loc, str]] = []
    for si, site in enumerate(inv.sites):
        specs.append((_site_loc(si, "gateway", "admin_password"), site.gateway.admin_password))
        for ui, user in enumerate(site.gateway.users):
            specs.append((_site_loc(si, "gateway", "users", ui, "password"), user.password))
        ssh_blocks: list[tuple[Loc, SshEndpoint | None]] = [(_site_loc(si, "gateway", "ssh"), site.gateway.ssh)]
        ssh_blocks += [(_site_loc(si, "clients", ci, "ssh"), c.ssh) for ci, c in enumerate(site.clients)]
        ssh_blocks += [(_site_loc(si, "test_hosts", ti, "ssh"), t.ssh) for ti, t in enumerate(site.test_hosts)]
        for loc, ssh in ssh_blocks:
            if ssh is not None and ssh.become_password:
                specs.append(((*loc, "become_password"), ssh.become_password))
    if inv.azure and inv.azure.client_secret:
        specs.append((("azure", "client_secret"), inv.azure.client_secret))
    for loc, spec in specs:
        why = check_resolvable(spec)
        if why and loc[-1] == "become_password":
            # Nobody can generate somebody's sudo password.
            out.add(loc, f"secret cannot be read: {why}", "set it, or give the login user a NOPASSWD sudoers rule")
        elif why:
            out.add(loc, f"secret cannot be read: {why}", "set it, or use 'generate' to let hybridctl create one")


def _check_addressing(inv: Inventory, out: _Collector) -> None:
    try:
        assign_transit(inv)
    except AddressingError as error:
        index = next((i for i, s in enumerate(inv.sites) if s.name == error.site), None)
        loc: Loc = _site_loc(index, "gateway", "transit_address") if index is not None else ("transit",)
        out.add(loc, str(error), error.fix)


def _check_budget_clouds(inv: Inventory, out: _Collector) -> None:
    # A budget for Azure is read and written with the inventory's azure settings.
    if inv.azure is not None:
        return
    for index, budget in enumerate(inv.budgets):
        if "azure" in budget.clouds:
            out.add(
                ("budgets", index, "cloud"),
                "the budget is for Azure and the inventory has no azure section",
                "add azure: {subscription_id: ...}, or set cloud: aws",
            )


def _vip_problem(loaded: LoadedInventory, loc: Sequence[str | int], message: str, fix: str) -> Problem:
    return Problem(str(loaded.path), field_name(loaded.raw, loc), message, fix, loaded.line_of(loc))


def vip_problems(loaded: LoadedInventory) -> list[Problem]:
    """Checks across ``vips:`` entries (pydantic checked each entry).

    Unique names, one VIP address per region (the collision rule of reference section 5 applies
    inside one inventory too), and no VIP inside the networks of an inventory site in its VPC.
    """
    inv = loaded.inventory
    problems: list[Problem] = []
    default_region = inv.aws.region if inv.aws else None
    seen_names: dict[str, int] = {}
    seen_addresses: dict[tuple[str | None, str], str] = {}
    for i, vip in enumerate(inv.vips):
        if vip.name in seen_names:
            problems.append(
                _vip_problem(
                    loaded, ("vips", i, "name"), f"VIP name '{vip.name}' is used twice", "give every VIP its own name"
                )
            )
        seen_names.setdefault(vip.name, i)
        region = vip.region or default_region
        key = (region, str(vip.address))
        if key in seen_addresses:
            problems.append(
                _vip_problem(
                    loaded,
                    ("vips", i, "address"),
                    f"{vip.address} is also VIP '{seen_addresses[key]}' in {region}",
                    "a VIP must be unique per account and region: choose another address",
                )
            )
        seen_addresses.setdefault(key, vip.name)
        for site in inv.sites:
            if site.kind == "aws" and site.vpc == vip.vpc:
                inside = [str(n.cidr) for n in site.networks if vip.address in n.cidr]
                if inside:
                    problems.append(
                        _vip_problem(
                            loaded,
                            ("vips", i, "address"),
                            f"{vip.address} lies inside {', '.join(inside)} of site '{site.name}' (same VPC)",
                            "choose an address outside every CIDR of the VPC: the local route would win",
                        )
                    )
    return problems


def validate_inventory(loaded: LoadedInventory) -> list[Problem]:
    """Every cross-field check of every section, whatever the command that loads the inventory.

    The overlay (sites, gateways, networks, secrets, addressing), ``budgets:`` (per entry and
    across entries by pydantic, the Azure settings here) and ``vips:`` (per entry by pydantic,
    across entries and against the sites' networks in :func:`vip_problems`): a mistake
    in any section stops ``plan`` and ``up`` as it stops ``vip`` or ``budget``, before anything
    remote is touched.
    """
    out = _Collector(loaded)
    inv = loaded.inventory
    for check in (_check_names, _check_roles, _check_overlaps, _check_gateways, _check_networks, _check_secrets):
        check(inv, out)
    if not out.problems:
        # Addressing assumes the structure above is sound.
        _check_addressing(inv, out)
    _check_budget_clouds(inv, out)
    out.problems += vip_problems(loaded)
    return out.problems
