"""Pure logic of the SSH host backend: facts read from a host -> Resources; changes -> SoftEther
target configuration. No I/O (hosts.py does the SSH, hostscript.py the shell).

Resources are keyed and shaped exactly like the planner's (``DesiredState.resources``) and
carry the same typed items (PackageItem, FileItem, SoftEtherItem, KernelRouteItem...), so the
pure diff compares them and the apply side reads items, never keys. Runtime facts that are not
desired attributes (cascade status, bridge device status, hub online, listener status) are
extra attributes: the diff ignores them, `routes diff` shows them, `check` reads them.

Ownership (``Resource.owned``; the diff deletes only owned items that are not desired):

* host-file: a file at a managed path whose content carries hybridctl's mark;
* host-service: a service hybridctl started (journal), host-package: a package hybridctl
  installed (journal), and only with ``--purge``;
* host-address: any IPv4 address on a device the plan addresses (SoftEther's tap);
* host-route / client-route: kernel routes with protocol 177 (``hostfiles.ROUTE_PROTO``); other
  routes to overlay prefixes are returned with owned=False, so the diff reports conflicts;
* softether: per docs/softether.md — listeners are authoritative; users, local bridges and
  cascades on the plan's hubs are ours; hubs and L3 switches only if planned, factory-made
  (DEFAULT of a VPN Server) or created by hybridctl (journal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network
from typing import TypeVar

from hybridctl.backends.host_facts import DeviceAddresses, Route, main_routes, parse_addresses, parse_routes
from hybridctl.backends.hostscript import RawRead
from hybridctl.core.diff import Change
from hybridctl.core.hostfiles import OVERLAY_SCRIPT, OVERLAY_UNIT, ROUTE_PROTO, SYSCTL_FILE, unit_path
from hybridctl.core.planner.desired import (
    IP_FORWARD,
    AddressItem,
    ClientRoutes,
    FileItem,
    Flag,
    HostPlan,
    Item,
    KernelRouteItem,
    PackageItem,
    Resource,
    ServiceItem,
    SoftEtherItem,
    softether_resources,
)
from hybridctl.core.softether.commands import BRIDGE_HUB, FACTORY_HUBS, Step
from hybridctl.core.softether.model import (
    Cascade,
    Hub,
    HubUser,
    L3Interface,
    L3Route,
    L3Switch,
    LocalBridge,
    SoftEtherConfig,
    SoftEtherRole,
)
from hybridctl.core.softether.parse import ReadResult as SoftEtherReadResult
from hybridctl.core.softether.parse import SoftEtherFacts

HOST_LAYERS = frozenset(
    {"host-package", "host-file", "host-service", "softether", "host-address", "host-route", "client-route"}
)
NETWORK_LAYERS = frozenset({"host-address", "host-route", "client-route"})
SERVICES = ("softether-vpnserver", "softether-vpnbridge")
# What a freshly started SoftEther (no config file yet) has: measured on 5.01 build 9674
# (tests/fixtures/softether/read_*_fresh.txt). Lets the first `up` configure a bare host in one
# exec instead of start -> read -> apply.
FACTORY_LISTENERS = (443, 992, 1194, 5555)
T = TypeVar("T")


def managed_paths() -> tuple[str, ...]:
    """Every path hybridctl may have written on any host (stale ones are found and removed)."""
    return (OVERLAY_SCRIPT, OVERLAY_UNIT, SYSCTL_FILE, *(unit_path(s) for s in SERVICES))


def is_unit_file(path: str) -> bool:
    return path.startswith("/etc/systemd/system/") and path.endswith((".service", ".target"))


def daemon_reload_needed(changes: Iterable[Change]) -> bool:
    """Whether systemd must re-read its units (``daemon-reload``, ~0.3 s on a busy host, the
    cold `up`'s biggest systemd cost) after these host-file changes. Only when a unit file it
    may have loaded is replaced or removed: a unit file it never saw is loaded when first named
    (``hctl_enable_now`` reloads if systemd still does not know it)."""
    return any(
        c.action in ("update", "delete") and isinstance(c.subject, FileItem) and is_unit_file(c.subject.path)
        for c in changes
    )


def factory_config(role: SoftEtherRole) -> SoftEtherConfig:
    hub = "DEFAULT" if role == "vpn-server" else BRIDGE_HUB
    return SoftEtherConfig(role=role, admin_password_secret="", listeners=FACTORY_LISTENERS, hubs=(Hub(hub),))


def _res(layer: str, key: tuple[str, ...], owned: bool, item: Item, **attrs: str) -> Resource:
    return Resource(layer, key, tuple(sorted(attrs.items())), "", owned, item)


HostItem = PackageItem | ServiceItem | FileItem | SoftEtherItem | AddressItem | KernelRouteItem


def host_of(thing: Resource | Change) -> str | None:
    """The host a host-side resource or change is on (a client's name for client routes); None
    when it is not a host-side item (a cloud flag, a cloud route...)."""
    item = thing.subject
    if isinstance(item, Flag):
        return item.host if item.name == IP_FORWARD else None
    if isinstance(item, HostItem):
        return item.host
    return None


def _item(change: Change, kind: type[T]) -> T:
    item = change.subject
    if not isinstance(item, kind):
        raise ValueError(f"{change.layer} {' '.join(change.key)}: expected a {kind.__name__}, got {item!r}")
    return item


# -- cascade status ------------------------------------------------------------------------------


def cascade_status(status: str) -> str:
    """CascadeList's status in one word: established, connecting, offline or error: <text>."""
    text = status.strip()
    low = text.lower()
    if low.startswith("offline"):
        return "offline"
    if "(established)" in low:
        return "established"
    if low.startswith("error"):
        return "error: " + text
    if low.startswith("online"):
        return "connecting"
    return text or "unknown"


def cascade_online(status: str) -> str:
    """The `online` attribute: "true" only while the link is established.

    A cascade configured online whose link failed stays failed with softether 5.01/OpenSSL 3
    until the service restarts (docs/softether.md); one still "connecting" when `up` reads it is
    SoftEther's own retry timer after a failure (a network blip: the retry often fails the same
    way). Reporting both as not online makes `up` reconnect it (cascade_action) and `check` name it.
    """
    return "true" if cascade_status(status) == "established" else "false"


def cascade_action(status: str | None, planned_online: bool, configured_online: bool) -> str:
    """What `up` does about one planned cascade, from CascadeList's status. Pure.

    * ``none``: nothing (established; or planned offline; or not there yet: the diff creates it);
    * ``online``: vpncmd CascadeOnline (configured offline, planned online: the diff's change);
    * ``reconnect``: configured online but not established (connecting = retrying, or error):
      force a fresh session — the restart path (Flush, terminate, start, overlay) — then wait,
      bounded, until the L3 switch answers, instead of failing on SoftEther's retry timer.
    """
    if not planned_online or status is None:
        return "none"
    word = cascade_status(status)
    if word == "established":
        return "none"
    if not configured_online or word == "offline":
        return "online"
    return "reconnect"


def cascade_settling(status: str | None) -> bool:
    """After a reconnect in this run: whether the session is still on its way (worth waiting)."""
    return status is not None and cascade_status(status) == "connecting"


# -- resources from a read -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ownership:
    """Journal answers the pure code needs (hosts.py asks the journal)."""

    service_started: bool = False  # hybridctl started the service (journal)
    package_installed: bool = False  # hybridctl installed the package (journal)
    purge: bool = False


def package_resources(plan: HostPlan, raw: RawRead, own: Ownership) -> list[Resource]:
    if plan.service is None or not raw.packages.get(plan.service):
        return []
    owned = own.purge and own.package_installed
    item = PackageItem(plan.name, plan.service)
    return [_res("host-package", (plan.name, plan.service), owned, item, installed="true")]


def file_resources(plan: HostPlan, raw: RawRead) -> list[Resource]:
    return [
        _res("host-file", (plan.name, path), fact.ours, FileItem(plan.name, path), sha256=fact.sha256, mode=fact.mode)
        for path, fact in sorted(raw.files.items())
    ]


def service_resources(plan: HostPlan, raw: RawRead, own: Ownership) -> list[Resource]:
    if plan.service is None or not raw.service_running:
        return []  # stopped: absent, so `up` starts it and `down` has nothing to stop
    state = "running"
    if raw.systemd and raw.service_enabled != "enabled":
        state = "running, not enabled at boot"
    item = ServiceItem(plan.name, plan.service)
    key = (plan.name, plan.service)
    return [_res("host-service", key, own.service_started, item, state=state, enabled=raw.service_enabled)]


def flag_resources(plan: HostPlan, raw: RawRead) -> list[Resource]:
    if plan.ip_forward is None or raw.ip_forward not in ("0", "1"):
        return []
    flag = Flag(plan.site, plan.name, IP_FORWARD, raw.ip_forward == "1", plan.name, "")
    return [_res("flag", (plan.site, plan.name, IP_FORWARD), True, flag, value=flag.text)]


def address_resources(plan: HostPlan, addresses: dict[str, DeviceAddresses]) -> list[Resource]:
    devices = {a.device for a in plan.addresses}
    out = []
    for device in sorted(devices):
        found = addresses.get(device)
        if found is None:
            continue
        for address in found.addresses:
            item = AddressItem(plan.name, device, address)
            out.append(_res("host-address", (plan.name, device, str(address)), True, item))
    return out


def _planned_prefixes(plan: HostPlan, client: ClientRoutes | None) -> dict[IPv4Network, str | None]:
    """Overlay prefix -> planned device (None: the kernel chooses)."""
    out: dict[IPv4Network, str | None] = {r.prefix: r.dev for r in plan.routes}
    if client is not None:
        for prefix in client.prefixes:
            out.setdefault(prefix, None)
    return out


def route_resources(plan: HostPlan, routes: Sequence[Route], client: ClientRoutes | None) -> list[Resource]:
    """hybridctl's routes (protocol 177) and foreign routes that collide with planned prefixes."""
    planned = _planned_prefixes(plan, client)
    proto = str(ROUTE_PROTO)
    chosen: dict[IPv4Network, Route] = {}
    for route in main_routes(list(routes)):
        ours = route.protocol == proto
        collides = any(route.dst == p or route.dst.subnet_of(p) for p in planned)
        if not ours and not collides:
            continue  # foreign and elsewhere: invisible
        best = chosen.get(route.dst)
        # One item per prefix: ours first, then the route the kernel prefers (lowest metric).
        if best is None or (ours, -route.metric) > (best.protocol == proto, -best.metric):
            chosen[route.dst] = route
    out: list[Resource] = []
    for prefix, route in sorted(chosen.items()):
        owned = route.protocol == proto
        via = str(route.gateway) if route.gateway else ""
        planned_dev = planned.get(prefix, route.dev)
        # A planned route without a device lets the kernel choose it: the device is not compared.
        dev = (route.dev or "") if planned_dev else ""
        extra = {"protocol": route.protocol or "boot"}
        if plan.role != "client":
            item = KernelRouteItem(plan.name, prefix, route.gateway, route.dev)
            out.append(_res("host-route", (plan.name, str(prefix)), owned, item, via=via, dev=dev, **extra))
        if client is not None:
            item = KernelRouteItem(client.client, prefix, route.gateway, route.dev)
            key = (client.client, str(prefix))
            out.append(_res("client-route", key, owned, item, via=via, managed="true", **extra))
    return out


def softether_ownership(
    plan_config: SoftEtherConfig, actual: SoftEtherConfig, created: Callable[[str, tuple[str, ...]], bool], host: str
) -> tuple[set[str], set[str]]:
    """(hubs, switches) that are hybridctl's on this host."""
    hubs = {h.name for h in plan_config.hubs} | set(FACTORY_HUBS[plan_config.role])
    if plan_config.role == "vpn-bridge":
        hubs.add(BRIDGE_HUB)
    hubs |= {h.name for h in actual.hubs if created("softether", (host, "hub", h.name))}
    switches = {s.name for s in plan_config.l3_switches}
    switches |= {s.name for s in actual.l3_switches if created("softether", (host, "l3-switch", s.name))}
    return hubs, switches


def softether_actual_resources(
    host: str,
    plan_config: SoftEtherConfig,
    actual: SoftEtherConfig,
    facts: SoftEtherFacts,
    created: Callable[[str, tuple[str, ...]], bool],
) -> list[Resource]:
    """The actual SoftEther configuration in the planner's shape, with ownership and runtime facts."""
    hubs, switches = softether_ownership(plan_config, actual, created, host)
    out: list[Resource] = []
    for resource in softether_resources(host, actual):
        item = resource.item
        assert isinstance(item, SoftEtherItem)
        attrs = dict(resource.attrs)
        attrs.pop("secret", None)  # passwords cannot be read back
        owned = True
        value = item.value
        if item.kind == "admin-password":
            if not facts.admin_password_set:
                continue
        elif isinstance(value, int):  # a listener's port
            attrs["status"] = "disabled" if value in facts.disabled_listeners else "listening"
        elif isinstance(value, Hub):
            owned = value.name in hubs
            attrs["online"] = str(facts.hubs_online.get(value.name, False)).lower()
        elif isinstance(value, HubUser):
            owned = item.parent in hubs
        elif isinstance(value, LocalBridge):
            owned = value.hub in hubs
            attrs["status"] = facts.bridge_status.get((value.hub, value.device), "")
        elif isinstance(value, Cascade):
            owned = value.hub in hubs
            state = facts.cascade(value.hub, value.name)
            raw_status = state.status if state is not None else ""
            attrs["status"] = cascade_status(raw_status)
            attrs["online"] = cascade_online(raw_status)
        elif isinstance(value, L3Switch):
            owned = value.name in switches
            attrs["running"] = str(facts.l3_running.get(value.name, False)).lower()
        elif isinstance(value, L3Interface | L3Route):
            owned = item.parent in switches
        out.append(Resource(resource.layer, resource.key, tuple(sorted(attrs.items())), "", owned, item))
    return out


def stuck_cascades(actual: SoftEtherConfig, facts: SoftEtherFacts, plan_config: SoftEtherConfig) -> list[Cascade]:
    """Planned-online cascades configured online whose link is not established (failed, or
    retrying): the ones `up` reconnects (cascade_action)."""
    configured = {(c.hub, c.name) for c in actual.cascades if c.online}
    out = []
    for cascade in plan_config.cascades:
        state = facts.cascade(cascade.hub, cascade.name)
        key = (cascade.hub, cascade.name)
        status = state.status if state is not None else None
        if cascade_action(status, cascade.online, key in configured) == "reconnect":
            out.append(cascade)
    return out


def host_resources(
    plan: HostPlan,
    raw: RawRead,
    softether: SoftEtherReadResult | None,
    client: ClientRoutes | None,
    own: Ownership,
    created: Callable[[str, tuple[str, ...]], bool],
) -> list[Resource]:
    """Every actual item of one host, as the diff compares them with the plan."""
    out = package_resources(plan, raw, own)
    out += file_resources(plan, raw)
    out += service_resources(plan, raw, own)
    out += flag_resources(plan, raw)
    out += address_resources(plan, parse_addresses(raw.addr_json))
    out += route_resources(plan, parse_routes(raw.route_json), client)
    if plan.softether is not None and softether is not None:
        out += softether_actual_resources(plan.name, plan.softether, softether.config, softether.facts, created)
    return out


# -- changes -> SoftEther target configuration -------------------------------------------------


def target_config(actual: SoftEtherConfig, planned: SoftEtherConfig, changes: Iterable[Change]) -> SoftEtherConfig:
    """``actual`` with ``changes`` applied: creates and updates take the planned item, deletes drop it.

    Each change carries its typed item (:class:`SoftEtherItem`): the planned object for a create
    or update, the one read for a delete. ``planned`` gives the role and the admin password.
    ``plan_steps(target, actual)`` then yields exactly the vpncmd steps for these changes (and
    with `--layer` or `down`, nothing else).
    """
    listeners = set(actual.listeners)
    hubs: dict[str, Hub] = {h.name: h for h in actual.hubs}
    bridges = set(actual.local_bridges)
    switches: dict[str, L3Switch] = {s.name: s for s in actual.l3_switches}
    cascades: dict[tuple[str, str], Cascade] = {(c.hub, c.name): c for c in actual.cascades}

    items: list[tuple[bool, SoftEtherItem]] = []
    for change in changes:
        item = change.subject
        if change.layer == "softether" and change.action != "conflict" and isinstance(item, SoftEtherItem):
            items.append((change.action == "delete", item))
    for delete, item in sorted(items, key=lambda pair: _KIND_ORDER.get(pair[1].kind, 99)):
        value = item.value
        if item.kind == "listener" and isinstance(value, int):
            (listeners.discard if delete else listeners.add)(value)
        elif isinstance(value, Hub):
            if delete:
                hubs.pop(value.name, None)
            else:
                users = hubs[value.name].users if value.name in hubs else ()
                hubs[value.name] = Hub(value.name, users, value.secure_nat)
        elif isinstance(value, HubUser):
            hub = hubs.get(item.parent)
            if hub is None:
                continue
            others = [u for u in hub.users if u.name != value.name]
            hubs[item.parent] = replace(hub, users=tuple(sorted(others if delete else [*others, value])))
        elif isinstance(value, LocalBridge):
            bridges = {b for b in bridges if (b.hub, b.device) != (value.hub, value.device)}
            if not delete:
                bridges.add(value)
        elif isinstance(value, L3Switch):
            if delete:
                switches.pop(value.name, None)
            else:
                have = switches.get(value.name, L3Switch(value.name, active=False))
                switches[value.name] = replace(have, active=value.active)
        elif isinstance(value, L3Interface):
            sw = switches.get(item.parent)
            if sw is None:
                continue
            ifs = [i for i in sw.interfaces if i.address != value.address]
            switches[item.parent] = replace(sw, interfaces=tuple(sorted(ifs if delete else [*ifs, value])))
        elif isinstance(value, L3Route):
            sw = switches.get(item.parent)
            if sw is None:
                continue
            rts = [r for r in sw.routes if r.network != value.network]
            switches[item.parent] = replace(sw, routes=tuple(sorted(rts if delete else [*rts, value])))
        elif isinstance(value, Cascade):
            if delete:
                cascades.pop((value.hub, value.name), None)
            else:
                # A configured-online cascade whose link failed gets the same (planned) target:
                # no vpncmd step; hosts.py restarts the service for it (stuck_cascades).
                cascades[(value.hub, value.name)] = value
    return SoftEtherConfig(
        role=planned.role,
        admin_password_secret=planned.admin_password_secret,
        listeners=tuple(sorted(listeners)),
        hubs=tuple(sorted(hubs.values(), key=lambda h: h.name)),
        local_bridges=tuple(sorted(bridges)),
        l3_switches=tuple(sorted(switches.values(), key=lambda s: s.name)),
        cascades=tuple(sorted(cascades.values(), key=lambda c: (c.hub, c.name))),
    )


# Hubs before what lives in them, switches before their legs.
_KIND_ORDER = {
    "listener": 0,
    "admin-password": 0,
    "hub": 1,
    "user": 2,
    "local-bridge": 2,
    "l3-switch": 3,
    "l3-interface": 4,
    "l3-route": 5,
    "cascade": 6,
}


def restart_needed(after_network: Iterable[Step], stuck: Iterable[Cascade], changes: Iterable[Change]) -> bool:
    """Whether SoftEther must restart in this run. Only for a cascade: one going online (the
    restart brings it up on clean threads, the 5.01 / OpenSSL 3 bug, docs/softether.md) or one
    the diff touches that is configured online but stuck. Any other setting applies live."""
    if any(step.kind == "restart" for step in after_network):
        return True
    touched = {
        (c.subject.value.hub, c.subject.value.name)
        for c in changes
        if isinstance(c.subject, SoftEtherItem) and isinstance(c.subject.value, Cascade)
    }
    return any((c.hub, c.name) in touched for c in stuck)


def deleted_names(changes: Iterable[Change], kind: str) -> set[str]:
    """Names of the hubs (``kind="hub"``) or L3 switches (``"l3-switch"``) that ``changes`` delete."""
    out = set()
    for change in changes:
        item = change.subject
        if change.action == "delete" and isinstance(item, SoftEtherItem) and item.kind == kind:
            value = item.value
            if isinstance(value, Hub | L3Switch):
                out.add(value.name)
    return out


# -- what a host's changes ask for ---------------------------------------------------------------


@dataclass(frozen=True)
class HostChanges:
    """A host's changes sorted by what has to happen on the host."""

    package_install: tuple[Change, ...] = ()
    package_remove: tuple[Change, ...] = ()
    files_put: tuple[Change, ...] = ()
    files_remove: tuple[Change, ...] = ()
    ip_forward: tuple[Change, ...] = ()
    service_start: tuple[Change, ...] = ()
    service_stop: tuple[Change, ...] = ()
    softether: tuple[Change, ...] = ()
    network_add: tuple[Change, ...] = ()
    network_remove: tuple[Change, ...] = ()

    @classmethod
    def of(cls, changes: Iterable[Change]) -> HostChanges:
        buckets: dict[str, list[Change]] = {name: [] for name in cls.__dataclass_fields__}
        for change in changes:
            if change.action == "conflict":
                continue
            delete = change.action == "delete"
            if change.layer == "host-package":
                buckets["package_remove" if delete else "package_install"].append(change)
            elif change.layer == "host-file":
                buckets["files_remove" if delete else "files_put"].append(change)
            elif change.layer == "flag":
                buckets["ip_forward"].append(change)
            elif change.layer == "host-service":
                buckets["service_stop" if delete else "service_start"].append(change)
            elif change.layer == "softether":
                buckets["softether"].append(change)
            elif change.layer in NETWORK_LAYERS:
                buckets["network_remove" if delete else "network_add"].append(change)
        return cls(**{name: tuple(items) for name, items in buckets.items()})

    def all(self) -> list[Change]:
        out: list[Change] = []
        for name in self.__dataclass_fields__:
            out.extend(getattr(self, name))
        return out


def route_removal(change: Change) -> str:
    """``ip`` command deleting an owned kernel route (host-route / client-route delete)."""
    prefix = _item(change, KernelRouteItem).prefix  # typed: only a network reaches the shell
    return f"ip -4 route del {prefix} proto {ROUTE_PROTO} 2>/dev/null || true\n"


def address_removal(change: Change) -> str:
    item = _item(change, AddressItem)
    device, address = item.device, item.address  # typed: only an address reaches the shell
    if not device.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"unexpected device name {device!r}")
    return f"ip -4 addr del {address} dev {device} 2>/dev/null || true\n"
