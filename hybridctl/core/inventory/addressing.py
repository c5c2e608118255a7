"""Deterministic address assignment and prefix summarization (pure).

With the inventory, not the planner: the loader checks that the transit addresses can be assigned
(:mod:`hybridctl.core.inventory.validate`) for every command, and the planner uses the assignment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from hybridctl.core.inventory.models import Inventory


class AddressingError(ValueError):
    """Raised with a message and the site it concerns; validate turns it into a Problem."""

    def __init__(self, message: str, site: str | None = None, fix: str = "") -> None:
        super().__init__(message)
        self.site = site
        self.fix = fix


@dataclass(frozen=True)
class TransitPlan:
    switch: IPv4Address
    bridges: dict[str, IPv4Address]  # site name -> tap address
    pinned: frozenset[str]  # sites whose address was pinned in the inventory


def assign_transit(inventory: Inventory) -> TransitPlan:
    """Transit addresses: pinned ones as given, the rest in site order from the lowest free host.

    The switch takes the first host unless pinned. Declaration order makes the result
    deterministic; pin addresses to keep them stable when sites are inserted.
    """
    net = inventory.transit.cidr
    hosts = net.hosts()
    taken: set[IPv4Address] = set()
    switch = inventory.transit.switch_address
    bridge_sites = inventory.bridge_sites
    for site in bridge_sites:
        pinned = site.gateway.transit_address
        if pinned is not None:
            if pinned not in net or pinned in (net.network_address, net.broadcast_address):
                raise AddressingError(
                    f"transit_address {pinned} is not a host address of the transit network {net}",
                    site.name,
                    f"pick an address inside {net}",
                )
            if pinned in taken:
                raise AddressingError(
                    f"transit_address {pinned} is pinned twice", site.name, "give each bridge its own address"
                )
            taken.add(pinned)
    if switch is not None:
        if switch not in net or switch in (net.network_address, net.broadcast_address):
            raise AddressingError(
                f"transit.switch_address {switch} is not a host address of {net}", None, f"pick one inside {net}"
            )
        if switch in taken:
            raise AddressingError(
                f"transit.switch_address {switch} is also pinned for a bridge", None, "use different addresses"
            )
    free = (host for host in hosts if host not in taken and host != switch)
    if switch is None:
        switch = next(free, None)
        if switch is None:
            raise AddressingError(f"transit network {net} has no room for the L3 switch", None, "use a larger CIDR")
    taken.add(switch)
    assigned: dict[str, IPv4Address] = {}
    pinned_sites: set[str] = set()
    for site in bridge_sites:
        if site.gateway.transit_address is not None:
            assigned[site.name] = site.gateway.transit_address
            pinned_sites.add(site.name)
            continue
        candidate = next((h for h in free if h not in taken), None)
        if candidate is None:
            raise AddressingError(
                f"transit network {net} is too small for {len(bridge_sites)} bridges",
                site.name,
                "use a larger transit CIDR",
            )
        taken.add(candidate)
        assigned[site.name] = candidate
    return TransitPlan(switch=switch, bridges=assigned, pinned=frozenset(pinned_sites))


def summarize(prefixes: Iterable[IPv4Network], limit: int) -> list[IPv4Network]:
    """Fit ``prefixes`` (all with one target) into ``limit`` entries, merging only exact neighbours.

    Merging is exact (192.168.30.0/24 + 192.168.31.0/24 -> 192.168.30.0/23 covers nothing
    else), so summarizing never captures another site's traffic. Raises when even the fully
    collapsed list does not fit.
    """
    unique = sorted(set(prefixes))
    if len(unique) <= limit:
        return unique
    collapsed = sorted(collapse_addresses(unique))
    if len(collapsed) > limit:
        raise AddressingError(
            f"{len(unique)} routes do not fit the limit of {limit} even summarized to {len(collapsed)}",
            None,
            "raise route_limit to your account quota, or renumber sites into contiguous blocks",
        )
    return collapsed
