"""Follow a packet hop by hop through a planned overlay (pure).

Used by the property tests (every site reaches every other, no loops, no black holes) and by
`check` to explain which layer should carry a failing path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from hybridctl.core.inventory.models import Inventory, Site
from hybridctl.core.planner.desired import DesiredState

MAX_HOPS = 16


@dataclass(frozen=True)
class Hop:
    where: str  # "site:<name>", "bridge:<site>", "switch"
    layer: str  # the layer whose entry moved the packet on
    detail: str


class TraceError(Exception):
    def __init__(self, kind: str, hops: list[Hop], message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "blackhole" | "loop"
        self.hops = hops


def _longest(prefixes: Iterable[tuple[IPv4Network, str]], dst: IPv4Address) -> str | None:
    best: tuple[int, str] | None = None
    for prefix, target in prefixes:
        if dst in prefix and (best is None or prefix.prefixlen > best[0]):
            best = (prefix.prefixlen, target)
    return None if best is None else best[1]


def _site_of(inventory: Inventory, address: IPv4Address) -> tuple[Site, str] | None:
    for site in inventory.sites:
        for net in site.networks:
            if address in net.cidr:
                return site, net.name
    return None


def trace(inventory: Inventory, desired: DesiredState, src: IPv4Address, dst: IPv4Address) -> list[Hop]:
    """Hops from ``src`` to ``dst``; the last hop is the delivery. Raises TraceError."""
    located = _site_of(inventory, src)
    if located is None:
        raise TraceError("blackhole", [], f"{src} is in no site")
    site, network = located
    hops: list[Hop] = [Hop(f"site:{site.name}", "origin", f"{src} in {site.name}/{network}")]
    location: tuple[str, ...] = ("net", site.name, network)
    seen: set[tuple[str, ...]] = set()
    bridges_by_address = {addr: name for name, addr in desired.transit_addresses.items()}
    server = inventory.server_site
    while True:
        if location in seen or len(hops) > MAX_HOPS:
            raise TraceError("loop", hops, f"{src} -> {dst} loops at {location}")
        seen.add(location)
        kind = location[0]
        if kind == "net":
            here = inventory.site(location[1])
            if any(dst in n.cidr for n in here.networks):
                hops.append(Hop(f"site:{here.name}", "local", f"{dst} is local to {here.name}"))
                return hops
            if here.kind == "onprem":
                client_routes = [c for c in desired.clients if c.site == here.name]
                if not client_routes:
                    raise TraceError("blackhole", hops, f"no client routes planned at {here.name}")
                via = _longest(((p, str(client_routes[0].via)) for p in client_routes[0].prefixes), dst)
                if via is None:
                    raise TraceError("blackhole", hops, f"no client route to {dst} at {here.name}")
                hops.append(Hop(f"site:{here.name}", "client-route", f"{dst} via {via}"))
                location = ("switch",) if here.name == server.name else ("bridge", here.name)
                continue
            table_name = next(n.route_table for n in here.networks if n.name == location[2])
            table = next((t for t in desired.route_tables if t.site == here.name and t.name == table_name), None)
            if table is None:
                raise TraceError("blackhole", hops, f"no overlay route table for {here.name}/{location[2]}")
            target = _longest(((r.prefix, r.target_label) for r in table.routes), dst)
            if target is None:
                raise TraceError("blackhole", hops, f"route table {table.name} has no route to {dst}")
            hops.append(Hop(f"site:{here.name}", "cloud-route", f"{table.name}: {dst} -> {target}"))
            location = ("bridge", here.name)
        elif kind == "bridge":
            here = inventory.site(location[1])
            if any(dst in n.cidr for n in here.networks):
                hops.append(Hop(f"bridge:{here.name}", "local", f"{dst} is in {here.name}"))
                return hops
            host = desired.host(here.gateway.name)
            via = _longest(((r.prefix, str(r.via)) for r in host.routes), dst)
            if via is None:
                raise TraceError("blackhole", hops, f"{host.name} has no kernel route to {dst}")
            hops.append(Hop(f"bridge:{here.name}", "host-route", f"{dst} via {via}"))
            if IPv4Address(via) != desired.switch_address:
                raise TraceError("blackhole", hops, f"{host.name} sends {dst} to {via}, not the L3 switch")
            location = ("switch",)
        else:
            config = desired.host(server.gateway.name).softether
            assert config is not None
            switch = config.l3_switches[0]
            for iface in switch.interfaces:
                if iface.hub != inventory.transit.hub and dst in iface.address.network:
                    hops.append(Hop("switch", "l3-interface", f"{dst} is on the LAN of {server.name}"))
                    return hops
            gateway = _longest(((r.network, str(r.gateway)) for r in switch.routes), dst)
            if gateway is None:
                raise TraceError("blackhole", hops, f"L3 switch has no route to {dst}")
            hops.append(Hop("switch", "l3-route", f"{dst} -> {gateway}"))
            gateway_ip = IPv4Address(gateway)
            if gateway_ip in bridges_by_address:
                location = ("bridge", bridges_by_address[gateway_ip])
            elif any(n.via == gateway_ip for n in server.networks):
                hops.append(Hop(f"site:{server.name}", "local", f"{dst} behind LAN router {gateway}"))
                return hops
            else:
                raise TraceError("blackhole", hops, f"L3 switch gateway {gateway} is no bridge")
