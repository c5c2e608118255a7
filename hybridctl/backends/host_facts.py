"""Pure parsers for host facts read over SSH (or ``ip netns exec`` in the lab).

Reads (one shell exec can run them all, separated by markers of the caller's choice):

* ``ip -j -4 route show table all`` (or ``ip -j -4 route show`` for the main table) -> :func:`parse_routes`
* ``ip -j -4 addr show`` -> :func:`parse_addresses`
* ``ip -j link show`` / ``ip -d -j link show`` -> :func:`parse_links`
* ``sysctl -n net.ipv4.ip_forward`` -> :func:`parse_ip_forward`

iproute2's JSON leaves keys out when they have their default (no ``protocol`` for routes added
by ``ip route add`` without ``proto``, no ``table`` for the main table, no ``metric`` for 0), so
every field but the destination is optional.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from hybridctl.core.errors import RemoteError

MAIN_TABLE = "main"


@dataclass(frozen=True, order=True)
class Route:
    """One IPv4 route. ``table`` is ``"main"`` when iproute2 omits it."""

    dst: IPv4Network
    gateway: IPv4Address | None = None
    dev: str | None = None
    protocol: str | None = None
    table: str = MAIN_TABLE
    metric: int = 0
    type: str = "unicast"
    scope: str | None = None
    prefsrc: IPv4Address | None = None

    @property
    def is_kernel(self) -> bool:
        """Connected routes the kernel adds for an address (nothing to manage)."""
        return self.protocol == "kernel"


@dataclass(frozen=True, order=True)
class DeviceAddresses:
    ifname: str
    addresses: tuple[IPv4Interface, ...]
    up: bool
    operstate: str | None = None


@dataclass(frozen=True, order=True)
class Link:
    ifname: str
    up: bool
    operstate: str | None
    mtu: int | None
    address: str | None
    kind: str | None = None  # from ``ip -d``: veth, tun, bridge, ...; None without -d
    tun_type: str | None = None  # "tap" or "tun" for kind tun
    master: str | None = None
    promiscuous: bool = False


def _load(text: str, what: str) -> list[dict[str, Any]]:
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RemoteError("host", f"{what}: not JSON from iproute2 ({exc.msg})") from exc
    if not isinstance(data, list):
        raise RemoteError("host", f"{what}: expected a JSON list from iproute2")
    return [x for x in data if isinstance(x, dict)]


def _dst(value: str) -> IPv4Network:
    if value == "default":
        return IPv4Network("0.0.0.0/0")
    return IPv4Network(value, strict=False)


def parse_routes(text: str) -> list[Route]:
    """``ip -j -4 route show [table all]``."""
    out: list[Route] = []
    for item in _load(text, "ip route"):
        if "dst" not in item:
            continue
        gateway = item.get("gateway")
        prefsrc = item.get("prefsrc")
        out.append(
            Route(
                dst=_dst(str(item["dst"])),
                gateway=IPv4Address(gateway) if gateway else None,
                dev=item.get("dev"),
                protocol=item.get("protocol"),
                table=str(item.get("table", MAIN_TABLE)),
                metric=int(item.get("metric", 0)),
                type=str(item.get("type", "unicast")),
                scope=item.get("scope"),
                prefsrc=IPv4Address(prefsrc) if prefsrc else None,
            )
        )
    return out


def main_routes(routes: list[Route]) -> list[Route]:
    """Unicast routes of the main table, without the kernel's connected routes."""
    return [r for r in routes if r.table == MAIN_TABLE and r.type == "unicast" and not r.is_kernel]


def parse_addresses(text: str) -> dict[str, DeviceAddresses]:
    """``ip -j -4 addr show``: IPv4 addresses per device (primary first, as iproute2 lists them)."""
    out: dict[str, DeviceAddresses] = {}
    for item in _load(text, "ip addr"):
        name = str(item.get("ifname", ""))
        addrs = tuple(
            IPv4Interface(f"{a['local']}/{a['prefixlen']}")
            for a in item.get("addr_info", [])
            if a.get("family") == "inet" and "local" in a
        )
        out[name] = DeviceAddresses(name, addrs, "UP" in item.get("flags", []), item.get("operstate"))
    return out


def parse_links(text: str) -> dict[str, Link]:
    """``ip -j link show`` (with ``-d`` the link kind and tun/tap type are filled in)."""
    out: dict[str, Link] = {}
    for item in _load(text, "ip link"):
        name = str(item.get("ifname", ""))
        info = item.get("linkinfo") or {}
        data = info.get("info_data") or {}
        flags = item.get("flags", [])
        out[name] = Link(
            ifname=name,
            up="UP" in flags,
            operstate=item.get("operstate"),
            mtu=item.get("mtu"),
            address=item.get("address"),
            kind=info.get("info_kind"),
            tun_type=data.get("type") if info.get("info_kind") == "tun" else None,
            master=item.get("master"),
            promiscuous=bool(item.get("promiscuity", 0)) or "PROMISC" in flags,
        )
    return out


def parse_ip_forward(text: str) -> bool:
    """``sysctl -n net.ipv4.ip_forward``."""
    value = text.strip()
    if value not in ("0", "1"):
        raise RemoteError("host", f"sysctl net.ipv4.ip_forward: unexpected value {value!r}")
    return value == "1"
