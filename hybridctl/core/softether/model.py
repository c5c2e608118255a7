"""SoftEther configuration as data: what the planner wants and what vpncmd reports.

The same classes describe desired state (from the planner) and actual state (parsed from
``vpncmd /CSV`` output), so a pure diff can compare them. Passwords are never values here:
desired state carries :class:`hybridctl.core.secrets.SecretRef` names, actual state carries nothing
(vpncmd cannot read passwords back), so password changes are driven by the secrets store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

SoftEtherRole = Literal["vpn-server", "vpn-bridge"]


@dataclass(frozen=True, order=True)
class HubUser:
    """A password user on a virtual hub. ``password_secret`` names a secret, never holds one."""

    name: str
    password_secret: str


@dataclass(frozen=True, order=True)
class LocalBridge:
    """Local bridge between a hub and a Linux device (``tap=True`` creates ``tap_<device>``)."""

    hub: str
    device: str
    tap: bool = False


@dataclass(frozen=True, order=True)
class Hub:
    name: str
    users: tuple[HubUser, ...] = ()
    secure_nat: bool = False


@dataclass(frozen=True, order=True)
class L3Interface:
    hub: str
    address: IPv4Interface  # e.g. 192.168.10.1/24


@dataclass(frozen=True, order=True)
class L3Route:
    network: IPv4Network
    gateway: IPv4Address
    metric: int = 1


@dataclass(frozen=True)
class L3Switch:
    name: str
    interfaces: tuple[L3Interface, ...] = ()
    routes: tuple[L3Route, ...] = ()
    active: bool = True


@dataclass(frozen=True)
class Cascade:
    """A cascade connection from ``hub`` on this server/bridge to a remote hub."""

    name: str
    hub: str
    server_host: str
    server_port: int
    remote_hub: str
    username: str
    password_secret: str
    online: bool = True


@dataclass(frozen=True)
class SoftEtherConfig:
    """Everything hybridctl manages on one SoftEther server or bridge."""

    role: SoftEtherRole
    admin_password_secret: str
    listeners: tuple[int, ...] = (5555,)
    hubs: tuple[Hub, ...] = ()
    local_bridges: tuple[LocalBridge, ...] = ()
    l3_switches: tuple[L3Switch, ...] = ()
    cascades: tuple[Cascade, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
