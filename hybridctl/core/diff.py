"""(desired, actual) -> changes. Pure; shared by `plan`, `up`, `routes diff` and `down`.

Actions:
- ``create`` (+): desired, missing;
- ``update`` (~): present and owned by hybridctl, with other attributes (e.g. wrong target);
- ``delete`` (-): owned by hybridctl, no longer desired;
- ``conflict`` (!): a foreign object collides with the overlay — same key with other values, or
  a more specific foreign route inside an overlay prefix that steals its traffic. hybridctl
  reports these and never touches them.

Foreign objects that do not collide are invisible here: hybridctl deletes only what it owns.

A change carries the typed items of both sides (``planned``: the desired Resource's item,
``found``: the actual one's), so backends act on typed data and never parse the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Literal

from hybridctl.core.planner.desired import LAYERS, Item, KernelRouteItem, Resource, RouteItem

Action = Literal["create", "update", "delete", "conflict"]
SYMBOL: dict[str, str] = {"create": "+", "update": "~", "delete": "-", "conflict": "!"}

# Attributes that cannot be read back from the running system (passwords): never compared.
UNREADABLE = frozenset({"secret"})
# Layers whose last key element is a destination prefix within a table named by the rest.
ROUTE_LAYERS = frozenset({"cloud-route", "host-route", "client-route"})


@dataclass(frozen=True)
class Change:
    action: Action
    layer: str
    key: tuple[str, ...]
    desired: tuple[tuple[str, str], ...] | None
    actual: tuple[tuple[str, str], ...] | None
    why: str = ""
    planned: Item | None = field(default=None, compare=False, repr=False)  # the desired item
    found: Item | None = field(default=None, compare=False, repr=False)  # the actual item

    @property
    def symbol(self) -> str:
        return SYMBOL[self.action]

    @property
    def subject(self) -> Item | None:
        """The item this change is about: the planned one, else (delete, foreign route) the one found."""
        return self.planned if self.planned is not None else self.found

    def differing(self) -> dict[str, tuple[str | None, str | None]]:
        """Attribute -> (expected, actual) for the attributes that differ."""
        want = dict(self.desired or ())
        have = dict(self.actual or ())
        names = sorted((set(want) | set(have)) - UNREADABLE) if self.action == "update" else sorted(want)
        return {n: (want.get(n), have.get(n)) for n in names if want.get(n) != have.get(n)}


def _same(desired: Resource, actual: Resource) -> bool:
    want = {k: v for k, v in desired.attrs if k not in UNREADABLE}
    have = dict(actual.attrs)
    return all(have.get(k) == v for k, v in want.items())


def _route(resource: Resource) -> tuple[tuple[str, ...], IPv4Network] | None:
    """(the table it is in, its destination) for a route item; None for anything else.

    Typed items say it directly; a Resource built without one (hand-made in a test) is read from
    its key, whose last element is the destination within a table named by the rest.
    """
    item = resource.item
    if isinstance(item, RouteItem):
        return ((item.site, item.table), item.prefix) if item.prefix is not None else None
    if isinstance(item, KernelRouteItem):
        return (item.host,), item.prefix
    if item is not None or resource.layer not in ROUTE_LAYERS:
        return None
    try:
        return resource.key[:-1], IPv4Network(resource.key[-1])
    except (ValueError, IndexError):
        return None


def diff(
    desired: Iterable[Resource],
    actual: Iterable[Resource],
    layers: Iterable[str] | None = None,
) -> list[Change]:
    """Changes that take ``actual`` to ``desired``, in apply order (deletes of a layer last)."""
    wanted_layers = set(layers) if layers is not None else set(LAYERS)
    want = {r.ident: r for r in desired if r.layer in wanted_layers}
    have = {r.ident: r for r in actual if r.layer in wanted_layers}
    changes: list[Change] = []
    for ident, resource in want.items():
        current = have.get(ident)
        if current is None:
            changes.append(
                Change("create", resource.layer, resource.key, resource.attrs, None, resource.why, resource.item)
            )
        elif not _same(resource, current):
            action: Action = "update" if current.owned else "conflict"
            why = resource.why if current.owned else "a foreign object holds this key; hybridctl leaves it alone"
            changes.append(
                Change(
                    action,
                    resource.layer,
                    resource.key,
                    resource.attrs,
                    current.attrs,
                    why,
                    resource.item,
                    current.item,
                )
            )
    for ident, current in have.items():
        if ident not in want and current.owned:
            changes.append(
                Change(
                    "delete", current.layer, current.key, None, current.attrs, "no longer planned", None, current.item
                )
            )
    changes.extend(_stealing_routes(want.values(), have.values()))
    order = {layer: i for i, layer in enumerate(LAYERS)}
    rank = {"create": 0, "update": 0, "conflict": 1, "delete": 2}
    return sorted(changes, key=lambda c: (order.get(c.layer, len(order)), rank[c.action], c.key))


def _stealing_routes(desired: Iterable[Resource], actual: Iterable[Resource]) -> list[Change]:
    """Foreign routes more specific than an overlay prefix in the same table."""
    overlay: dict[tuple[str, tuple[str, ...]], list[IPv4Network]] = {}
    for resource in desired:
        route = _route(resource)
        if route is not None:
            overlay.setdefault((resource.layer, route[0]), []).append(route[1])
    out = []
    for resource in actual:
        route = _route(resource) if not resource.owned else None
        if route is None:
            continue
        table, prefix = route
        for covering in overlay.get((resource.layer, table), []):
            if prefix != covering and prefix.subnet_of(covering):
                out.append(
                    Change(
                        "conflict",
                        resource.layer,
                        resource.key,
                        None,
                        resource.attrs,
                        f"foreign route is more specific than overlay route {covering} and steals its traffic",
                        found=resource.item,
                    )
                )
                break
    return out


def summary(changes: Iterable[Change]) -> dict[str, dict[str, int]]:
    """Per layer, how many of each action."""
    out: dict[str, dict[str, int]] = {}
    for change in changes:
        counts = out.setdefault(change.layer, {"create": 0, "update": 0, "delete": 0, "conflict": 0})
        counts[change.action] += 1
    return out
