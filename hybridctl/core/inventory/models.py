"""The inventory: what the user declares. Pydantic models, published as JSON Schema.

Structure (YAML)::

    version: 1
    name: reference
    transit: {cidr: 192.168.10.0/24, hub: HYBRID}
    aws: {region: ap-northeast-1}
    azure: {subscription_id: ..., resource_group: ...}
    sites:
      - name: home
        kind: onprem
        networks: [{name: lan, cidr: 192.168.1.0/24}]
        gateway: {name: vpnserver, role: vpn-server, ...}

Field-level checks live here; cross-field checks (overlaps, dangling names) live in
``hybridctl.core.inventory.validate`` so each problem gets its own message.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hybridctl.core.inventory.budgets import BudgetList
from hybridctl.core.inventory.vips import Vip

SECRET_PATTERN = r"^(generate|env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# SoftEther hub / user names: letters, digits and a few symbols, no spaces.
SOFTETHER_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,63}$"

SecretSpec = Annotated[
    str,
    Field(
        pattern=SECRET_PATTERN,
        description="Where a secret comes from: 'generate' (created once, kept in the local 0600 secrets "
        "store), 'env:VARIABLE' or 'file:/path/to/file'. Never the secret itself.",
    ),
]
ExternalSecretSpec = Annotated[
    str,
    Field(
        pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$",
        description="Where a secret that exists elsewhere comes from: 'env:VARIABLE' or 'file:/path/to/file'.",
    ),
]
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
HubName = Annotated[str, Field(pattern=SOFTETHER_NAME_PATTERN)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently drop a route."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SshEndpoint(Strict):
    host: str = Field(description="Host name, address or ~/.ssh/config alias to connect to.")
    port: int = Field(22, ge=1, le=65535)
    user: str = "root"
    key: str | None = Field(None, description="Private key file; the agent and ~/.ssh/config keys are also tried.")
    config_file: str | None = Field(
        None, description="OpenSSH client config to read (Host, HostName, ProxyCommand, IdentityFile...)."
    )
    known_hosts: str | None = Field(None, description="known_hosts file; default ~/.ssh/known_hosts.")
    jump: str | list[str] | None = Field(
        default=None,
        description="Jump host(s) to reach this host through, like OpenSSH's ProxyJump: an ssh_config alias, "
        "host[:port] or user@host[:port]; a list or a comma-separated chain (first hop first). Each jump host's "
        "key is verified like any host's. Default: the ssh_config ProxyJump, if any.",
    )
    become: Literal["sudo", "none"] | None = Field(
        default=None,
        description="How commands get root: 'sudo' (non-interactive, the whole script under one sudo) or "
        "'none'. Default: 'none' when the login user is root, else 'sudo'.",
    )
    become_password: ExternalSecretSpec | None = Field(
        default=None,
        description="The login user's sudo password, when sudo asks for one: 'env:VARIABLE' or "
        "'file:/path'. It goes to sudo on stdin, never in a command line. Prefer a NOPASSWD rule.",
    )

    @field_validator("jump")
    @classmethod
    def _jump(cls, value: str | list[str] | None) -> str | list[str] | None:
        hops = jump_hops(value)
        if value is not None and not hops:
            raise ValueError("jump is empty")
        for hop in hops:
            if not JUMP_PATTERN.match(hop):
                raise ValueError(f"jump host {hop!r} is not an ssh_config alias, host[:port] or user@host[:port]")
        return value


JUMP_PATTERN = re.compile(r"^(ssh://)?([^@\s,/]+@)?(\[[0-9A-Fa-f:.]+\]|[^@\s,/:\[\]]+)(:\d{1,5})?$")


def jump_hops(value: str | list[str] | None) -> list[str]:
    """The hops of an ``ssh.jump`` / ProxyJump value, first hop first."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    return [hop.strip() for item in items for hop in item.split(",") if hop.strip()]


class HubUserSpec(Strict):
    """A remote-access user on the server's LAN hub."""

    name: HubName
    password: SecretSpec = "generate"


class Gateway(Strict):
    """The host that joins a site to the overlay: the SoftEther server or a bridge."""

    name: Name
    role: Literal["vpn-server", "vpn-bridge"]
    ssh: SshEndpoint
    private_ip: IPv4Address = Field(description="Address of the host's NIC in the site (the ENI/NIC address).")
    public_address: str | None = Field(
        None, description="Address bridges dial (vpn-server) or the host's public IP (vpn-bridge)."
    )
    # Cloud identity of the NIC. AWS: ENI Name tag or eni-id (or the instance). Azure: NIC name.
    eni: str | None = None
    instance: str | None = None
    nic: str | None = None
    security_group: str | None = Field(None, description="AWS security group / Azure NSG of the gateway NIC.")
    # SoftEther side.
    hub: HubName | None = Field(None, description="Hub on this host: LAN hub (server) or bridge hub (bridge).")
    lan_device: str | None = Field(None, description="vpn-server: NIC carrying the LAN (local bridge), e.g. eth1.")
    switch_address: IPv4Interface | None = Field(
        None, description="vpn-server: the L3 switch's address on the LAN hub, e.g. 192.168.1.249/24."
    )
    tap: str | None = Field(None, description="vpn-bridge: tap name; Linux names it tap_<tap> (15 chars max).")
    transit_address: IPv4Address | None = Field(None, description="Pin this host's transit address.")
    listeners: list[int] = Field(default_factory=lambda: [5555])
    vpn_port: int = Field(5555, ge=1, le=65535, description="vpn-server port bridges cascade to.")
    admin_password: SecretSpec = "generate"
    users: list[HubUserSpec] = Field(default_factory=list, description="vpn-server: LAN hub users.")

    @field_validator("listeners")
    @classmethod
    def _ports(cls, ports: list[int]) -> list[int]:
        for port in ports:
            if not 1 <= port <= 65535:
                raise ValueError(f"listener port {port} is outside 1-65535")
        if len(set(ports)) != len(ports):
            raise ValueError("listener ports repeat")
        return ports


class Network(Strict):
    name: Name
    cidr: IPv4Network = Field(description="Network address with prefix length, host bits zero.")
    id: str | None = Field(None, description="Cloud id (subnet-..., or the ARM id) when known.")
    route_table: str | None = Field(None, description="Cloud sites: route table (Name tag / name) of this subnet.")
    overlay: bool = Field(True, description="Whether this network sends traffic into the overlay.")
    via: IPv4Address | None = Field(
        None, description="On-prem: a LAN router that reaches this network, if it is not the LAN itself."
    )

    @field_validator("cidr", mode="before")
    @classmethod
    def _strict_cidr(cls, value: Any) -> Any:
        if isinstance(value, str) and "/" not in value:
            raise ValueError(f"'{value}' has no prefix length")
        return value


class RouteTable(Strict):
    name: Name
    id: str | None = None
    create: bool = Field(
        False, description="Create the table if it does not exist (Azure: always created when missing)."
    )


class LanClient(Strict):
    """An ordinary host at an on-prem site that needs routes into the overlay."""

    name: Name
    address: IPv4Address
    ssh: SshEndpoint | None = Field(None, description="Set to let hybridctl add the routes over SSH.")


class TestHost(Strict):
    """A host `check` probes from (when it has ssh) and to."""

    name: Name
    address: IPv4Address
    ssh: SshEndpoint | None = Field(None, description="Set to let `check` run probes from this host.")


class Site(Strict):
    name: Name
    kind: Literal["onprem", "aws", "azure"]
    networks: list[Network] = Field(min_length=1)
    gateway: Gateway
    route_tables: list[RouteTable] = Field(default_factory=list)
    clients: list[LanClient] = Field(default_factory=list)
    test_hosts: list[TestHost] = Field(default_factory=list, description="Hosts `check` pings from and to.")
    services: list[str] = Field(default_factory=list, description="host:port endpoints `check` probes.")
    # Cloud placement.
    region: str | None = None
    vpc: str | None = Field(None, description="AWS VPC Name tag or vpc-id.")
    resource_group: str | None = None
    vnet: str | None = Field(None, description="Azure virtual network name.")
    location: str | None = None
    workload_security_group: str | None = Field(
        None, description="Security group / NSG of the site's workloads that must accept overlay traffic."
    )
    route_limit: int | None = Field(None, ge=1, description="Routes per route table allowed (quota).")

    @field_validator("services")
    @classmethod
    def _services(cls, services: list[str]) -> list[str]:
        for service in services:
            host, sep, port = service.rpartition(":")
            if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"service '{service}' is not host:port")
        return services


class Transit(Strict):
    cidr: IPv4Network
    hub: HubName = "HYBRID"
    switch_name: HubName = "hybridctl"
    switch_address: IPv4Address | None = Field(None, description="L3 switch address; default first host.")
    mtu: int = Field(
        1500,
        ge=576,
        le=9000,
        description="Largest IP packet the overlay carries end to end (the taps' MTU); `check` sends "
        "don't-fragment pings of this size between every pair of sites.",
    )


class AwsSettings(Strict):
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = Field(None, description="Override the AWS endpoint (the lab's emulator).")
    credentials_file: str | None = Field(
        None, description="Shared credentials file to read instead of ~/.aws/credentials (the lab writes one)."
    )
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(8, ge=1, le=20, description="Attempts per API call, throttling included.")
    route_limit: int = Field(500, ge=1, le=1000, description="Routes per route table (account quota).")


class AzureSettings(Strict):
    subscription_id: str
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretSpec | None = None
    arm_endpoint: str | None = Field(None, description="ARM base URL override (the lab's emulator).")
    authority: str | None = Field(None, description="Azure AD authority host override.")
    ca_bundle: str | None = Field(None, description="CA bundle for the ARM endpoint.")
    polling_interval: float = Field(2.0, gt=0, le=60, description="Seconds between long-running-operation polls.")
    route_limit: int = Field(400, ge=1, le=1000)


class SecretsSettings(Strict):
    store: str | None = Field(None, description="Path of the 0600 secrets store; default in the state dir.")


class Inventory(Strict):
    version: Literal[1] = 1
    name: Name
    transit: Transit
    aws: AwsSettings | None = None
    azure: AzureSettings | None = None
    secrets: SecretsSettings = Field(default_factory=lambda: SecretsSettings(store=None))
    sites: list[Site] = Field(min_length=2)
    # Filled in by later features; kept free-form here and validated by their own modules.
    budgets: BudgetList = Field(default_factory=list, description="Spend alarms in AWS and Azure (docs/budgets.md).")
    vips: list[Vip] = Field(default_factory=list, description="HA virtual IPs moved by route table (docs/vip.md).")

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(name)

    @property
    def server_site(self) -> Site:
        return next(s for s in self.sites if s.gateway.role == "vpn-server")

    @property
    def bridge_sites(self) -> list[Site]:
        return [s for s in self.sites if s.gateway.role == "vpn-bridge"]


def tap_device(tap: str) -> str:
    """The Linux device SoftEther creates for a tap local bridge."""
    return f"tap_{tap}"


def is_name(value: str) -> bool:
    return re.fullmatch(NAME_PATTERN, value) is not None
