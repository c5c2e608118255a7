"""The lab's physical topology, as pure data derived in one place.

Everything else (the data plane builder, the fabric's bare spec, the lab inventory the
lead generates) reads :func:`build_topology`; nothing re-states an address. The shape
follows reference.md section 1: a home site (VPN server + LAN clients on a real L2
segment), an AWS VPC and an Azure VNet (each a router namespace, the "fabric", with one
point-to-point veth per host), and an "internet" segment joining the home server and the
fabrics' public legs. Next to it, reference.md section 4's VPC (site ``vip``, fabric
``hl-vip-fab``): a client and two VIP nodes, its addresses taken from
:mod:`hybridctl_lab.vip_scenario`, which also seeds that VPC into the AWS emulator, so the
two cannot disagree.

Naming: every namespace starts with ``hl-``. Links inside switch and fabric namespaces
start with ``hl-`` too; a host's own NICs are called ``eth0``/``eth1`` like on a real
machine (they live only inside the host's namespace, never in the root namespace).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from hybridctl_lab import vip_scenario as scenario

PREFIX = "hl-"
IFNAMSIZ = 15  # Linux interface names are at most 15 characters

SiteKind = Literal["onprem", "aws", "azure"]
# vip-host: a host of the VIP VPC (client or node). It runs an sshd like a test host, but is
# no probe of the overlay (`lab pings`, the inventory's test_hosts): that VPC is not part of it.
# bastion: the one host of its site reachable from outside; the site's other hosts take SSH
# only through it (docs/lab.md, "The bastion").
Role = Literal["vpn-server", "lan-client", "bridge", "test-host", "vip-host", "bastion"]

INTERNET_NS = "hl-inet"
INTERNET_CIDR = IPv4Network("203.0.113.0/24")
INTERNET_GATEWAY = IPv4Interface("203.0.113.1/24")  # the bridge in hl-inet owns it; it routes nowhere
SWITCH_BRIDGE = "br0"  # the Linux bridge inside a switch namespace
FABRIC_WAN_LINK = "hl-wan"  # a fabric's leg on the internet segment

HOME_LAN = IPv4Network("192.168.1.0/24")
HOME_PROBE_CLIENT = "hl-home-c1"  # the LAN client that doubles as the home site's test host
FIRST_EXTRA_CLIENT = 100  # extra LAN clients are 192.168.1.100, .101, ...
# .249 is the SoftEther L3 switch's address on the LAN and .250 the server's (reference.md):
# extra clients take .100-.248 first, then .11-.99 (.1-.9 left for the LAN's own router and
# the like, .10 is hl-home-c1). A client's name carries its last octet (hl-home-c100, hl-home-c11).
EXTRA_CLIENT_OCTETS = (*range(FIRST_EXTRA_CLIENT, 249), *range(11, FIRST_EXTRA_CLIENT))
MAX_EXTRA_CLIENTS = len(EXTRA_CLIENT_OCTETS)  # 238

# Extra cloud sites (the scale benchmark's "N cloud sites", docs/lab.md "Extra cloud sites"):
# all AWS VPCs, site k (1-based) named s<k>, VPC 172.16.<10k>.0/24 + 172.16.<10k+1>.0/24 (a
# range the reference never uses: it has 192.168.x, 10.0.0.0/16 and 20.0.0.100), bridge at
# .100 of the first subnet, public IP 203.0.113.<100+k>, transit address 192.168.10.<10+k>.
EXTRA_SITE_RANGE = IPv4Network("172.16.0.0/16")
EXTRA_SITE_PUBLIC_BASE = 100
MAX_EXTRA_SITES = 12

BASTION_SITE = "azure"  # its hosts are reached over SSH through its bastion only
BASTION_LAST_OCTET = 4  # the bastion's address in the site's first subnet
VIP_SITE = "vip"  # reference.md section 4: VPC 10.0.0.0/16, VIP 20.0.0.100 outside it
VIP_FABRIC = "hl-vip-fab"


@dataclass(frozen=True)
class Nic:
    """One veth end inside a host; its peer sits in a switch or fabric namespace."""

    name: str  # inside the host namespace, e.g. "eth0"
    address: IPv4Interface | None  # None: no address (the VPN server's LAN leg)
    peer_ns: str  # the switch or fabric namespace holding the other end
    peer_link: str  # name of the other end in peer_ns
    promisc: bool = False


@dataclass(frozen=True)
class Host:
    """A machine of the reference network, standing as one network namespace."""

    name: str  # namespace name; also the ssh_config Host alias for managed hosts
    site: str  # Site.name
    role: Role
    managed: bool  # hybridctl configures it over SSH (test hosts run sshd too: see ``sshd``)
    nics: tuple[Nic, ...]
    gateway: IPv4Address | None  # default route, None for none
    public_ip: IPv4Address | None = None  # the address the internet segment reaches it by

    @property
    def primary_ip(self) -> IPv4Address:
        """The first NIC address (private address for cloud hosts, LAN address at home)."""
        for nic in self.nics:
            if nic.address is not None:
                return nic.address.ip
        raise ValueError(f"{self.name} has no addressed NIC")

    @property
    def sshd(self) -> bool:
        """Runs an sshd: managed hosts (hybridctl configures them), test hosts (`check` probes
        from them over SSH) and the VIP VPC's hosts. Only managed hosts get the private mount
        namespace layout."""
        return self.managed or self.role in ("test-host", "vip-host", "bastion")

    @property
    def ssh_address(self) -> IPv4Address:
        """The address a user would type to reach it: public if it has one, else private."""
        return self.public_ip if self.public_ip is not None else self.primary_ip


@dataclass(frozen=True)
class Switch:
    """An L2 segment: a Linux bridge inside its own namespace."""

    name: str  # namespace
    address: IPv4Interface | None  # address of the bridge itself, if any
    ports: tuple[str, ...]  # links enslaved to the bridge


@dataclass(frozen=True)
class Subnet:
    name: str  # cloud-side name from reference.md
    cidr: IPv4Network

    @property
    def gateway(self) -> IPv4Address:
        """Clouds put the router at the subnet's first address (.1)."""
        return self.cidr.network_address + 1


@dataclass(frozen=True)
class Site:
    name: str  # "home", "aws", "azure"
    kind: SiteKind
    networks: tuple[IPv4Network, ...]  # VPC CIDR blocks / VNet address space / LAN
    subnets: tuple[Subnet, ...] = ()
    fabric_ns: str | None = None  # cloud router namespace
    public_ip: IPv4Address | None = None  # the cloud's bridge host public address (1:1 NAT)


@dataclass(frozen=True)
class Topology:
    sites: tuple[Site, ...]
    switches: tuple[Switch, ...]
    hosts: tuple[Host, ...]
    extra_clients: int = 0
    extra_sites: int = 0
    _by_name: dict[str, Host] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({h.name: h for h in self.hosts})

    def host(self, name: str) -> Host:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no lab host {name!r}; hosts: {', '.join(self._by_name)}") from None

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(f"no lab site {name!r}")

    @property
    def managed_hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.managed)

    @property
    def ssh_hosts(self) -> tuple[Host, ...]:
        """Hosts reachable over SSH (``LAB_DIR/ssh_config``): managed hosts and test hosts."""
        return tuple(h for h in self.hosts if h.sshd)

    @property
    def test_hosts(self) -> tuple[Host, ...]:
        """Where probes run from and to: the cloud test hosts and the home LAN client hl-home-c1."""
        return tuple(h for h in self.hosts if h.role == "test-host" or h.name == HOME_PROBE_CLIENT)

    @property
    def cloud_sites(self) -> tuple[Site, ...]:
        return tuple(s for s in self.sites if s.fabric_ns is not None)

    def hosts_of(self, site: str) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.site == site)

    def bastion_for(self, host: Host) -> Host | None:
        """The bastion ``host`` is reached through over SSH, if its site has one (not itself)."""
        if host.role == "bastion":
            return None
        return next((h for h in self.hosts_of(host.site) if h.role == "bastion"), None)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of the lab: switches, fabrics, then hosts."""
        infra = [s.name for s in self.switches] + [s.fabric_ns for s in self.cloud_sites if s.fabric_ns]
        return (*infra, *(h.name for h in self.hosts))

    def fabric_links(self, site: str) -> tuple[tuple[Host, Nic], ...]:
        """(host, host NIC) for every host wired to this cloud's fabric."""
        fabric = self.site(site).fabric_ns
        return tuple((h, n) for h in self.hosts for n in h.nics if n.peer_ns == fabric)


def _cloud(
    site: str,
    kind: SiteKind,
    short: str,
    subnets: tuple[Subnet, ...],
    bridge_last: int,
    public_ip: str,
) -> tuple[Site, list[Host]]:
    """A VPC/VNet: fabric namespace, bridge host on the first subnet, one test host per subnet."""
    fabric = f"hl-{short}-fab"
    first = subnets[0]
    hosts: list[Host] = []

    def cloud_host(name: str, role: Role, managed: bool, subnet: Subnet, last: int, pub: str | None) -> Host:
        address = IPv4Interface(f"{subnet.cidr.network_address + last}/{subnet.cidr.prefixlen}")
        peer = "hl-" + name.removeprefix(f"hl-{short}-")  # hl-aws-h20 -> hl-h20 inside the fabric
        return Host(
            name=name,
            site=site,
            role=role,
            managed=managed,
            nics=(Nic("eth0", address, fabric, peer),),
            gateway=subnet.gateway,
            public_ip=IPv4Address(pub) if pub else None,
        )

    hosts.append(cloud_host(f"hl-{short}-br", "bridge", True, first, bridge_last, public_ip))
    if site == BASTION_SITE:
        hosts.append(cloud_host(f"hl-{short}-bastion", "bastion", False, first, BASTION_LAST_OCTET, None))
    for subnet in subnets:
        third_octet = int(subnet.cidr.network_address.packed[2])
        hosts.append(cloud_host(f"hl-{short}-h{third_octet}", "test-host", False, subnet, 10, None))
    cidrs = tuple(s.cidr for s in subnets)  # reference: the VPC/VNet address space is exactly its subnets
    return (
        Site(site, kind, cidrs, subnets, fabric_ns=fabric, public_ip=IPv4Address(public_ip)),
        hosts,
    )


def _vip_vpc() -> tuple[Site, list[Host]]:
    """Reference section 4's VPC from :mod:`hybridctl_lab.vip_scenario`: hl-vip-c (client, Subnet-1a),
    hl-vip-n1 / hl-vip-n2 (node1 in Subnet-2a, node2 in Subnet-2c), each on its own link to
    hl-vip-fab with its subnet's .1 as gateway. No public IP: nothing there faces the internet."""
    subnets = tuple(Subnet(name, IPv4Network(cidr)) for name, cidr, _az, _table in scenario.SUBNETS)
    by_name = {s.name: s for s in subnets}
    hosts = []
    for role_name, subnet_name, address in (scenario.CLIENT, *scenario.NODES):
        short = "c" if role_name == scenario.CLIENT[0] else "n" + role_name.removeprefix("node")
        subnet = by_name[subnet_name]
        hosts.append(
            Host(
                name=f"hl-{VIP_SITE}-{short}",
                site=VIP_SITE,
                role="vip-host",
                managed=False,
                nics=(Nic("eth0", IPv4Interface(f"{address}/{subnet.cidr.prefixlen}"), VIP_FABRIC, f"hl-{short}"),),
                gateway=subnet.gateway,
            )
        )
    site = Site(VIP_SITE, "aws", (IPv4Network(scenario.VPC_CIDR),), subnets, fabric_ns=VIP_FABRIC)
    return site, hosts


def extra_site_name(k: int) -> str:
    """The k-th (1-based) extra cloud site: s1, s2, ... (its namespaces are hl-s1-fab, hl-s1-br, ...)."""
    return f"s{k}"


def extra_site_subnets(k: int) -> tuple[Subnet, Subnet]:
    """The two subnets of extra site k, named as the reference AWS site's (pure)."""
    base = EXTRA_SITE_RANGE.network_address + (10 * k << 8)
    name = extra_site_name(k).upper()
    return (
        Subnet(f"{name}-Subnet", IPv4Network(f"{base}/24")),
        Subnet(f"{name}-Subnet-Dammy", IPv4Network(f"{base + 256}/24")),
    )


def extra_site_public_ip(k: int) -> IPv4Address:
    return INTERNET_CIDR.network_address + EXTRA_SITE_PUBLIC_BASE + k


def build_topology(extra_clients: int = 0, extra_sites: int = 0) -> Topology:
    """The lab topology; ``extra_clients`` adds managed LAN clients hl-home-c100, -c101, ...,
    ``extra_sites`` adds AWS VPC sites s1, s2, ... (each a fabric, a bridge and a test host per subnet)."""
    if not 0 <= extra_clients <= MAX_EXTRA_CLIENTS:
        raise ValueError(f"extra_clients must be between 0 and {MAX_EXTRA_CLIENTS}, not {extra_clients}")
    if not 0 <= extra_sites <= MAX_EXTRA_SITES:
        raise ValueError(f"extra_sites must be between 0 and {MAX_EXTRA_SITES}, not {extra_sites}")

    home_srv = Host(
        name="hl-home-srv",
        site="home",
        role="vpn-server",
        managed=True,
        nics=(
            Nic("eth0", IPv4Interface("203.0.113.10/24"), INTERNET_NS, "hl-p-homesrv"),
            # No address, promiscuous: SoftEther local-bridges hub DEFAULT onto it.
            Nic("eth1", None, "hl-home-sw", "hl-p-srv", promisc=True),
        ),
        gateway=INTERNET_GATEWAY.ip,
        public_ip=IPv4Address("203.0.113.10"),
    )
    clients = [(HOME_PROBE_CLIENT, 10)] + [
        (f"hl-home-c{octet}", octet) for octet in EXTRA_CLIENT_OCTETS[:extra_clients]
    ]
    lan_hosts = [
        Host(
            name=name,
            site="home",
            role="lan-client",
            managed=True,
            nics=(
                Nic(
                    "eth0",
                    IPv4Interface(f"{HOME_LAN.network_address + last}/{HOME_LAN.prefixlen}"),
                    "hl-home-sw",
                    "hl-p-" + name.removeprefix("hl-home-"),
                ),
            ),
            gateway=None,  # bare: hybridctl adds the overlay routes via 192.168.1.249
        )
        for name, last in clients
    ]
    home = Site("home", "onprem", (HOME_LAN,))

    aws, aws_hosts = _cloud(
        "aws",
        "aws",
        "aws",
        (
            Subnet("Hybrid-Subnet", IPv4Network("192.168.20.0/24")),
            Subnet("Hybrid-Subnet-Dammy", IPv4Network("192.168.21.0/24")),
        ),
        100,
        "203.0.113.20",
    )
    azure, az_hosts = _cloud(
        "azure",
        "azure",
        "az",
        (
            Subnet("Hybrid_Subnet", IPv4Network("192.168.30.0/24")),
            Subnet("Hybrid_Subnet_Dammy", IPv4Network("192.168.31.0/24")),
        ),
        100,
        "203.0.113.30",
    )
    extra: list[tuple[Site, list[Host]]] = [
        _cloud(
            extra_site_name(k),
            "aws",
            extra_site_name(k),
            extra_site_subnets(k),
            100,
            str(extra_site_public_ip(k)),
        )
        for k in range(1, extra_sites + 1)
    ]
    extra_hosts = [h for _site, site_hosts in extra for h in site_hosts]
    vip, vip_hosts = _vip_vpc()
    hosts = (home_srv, *lan_hosts, *aws_hosts, *az_hosts, *extra_hosts, *vip_hosts)

    def ports(ns: str) -> tuple[str, ...]:
        return tuple(n.peer_link for h in hosts for n in h.nics if n.peer_ns == ns)

    extra_sites_ = tuple(site for site, _hosts in extra)
    sites = (home, aws, azure, *extra_sites_, vip)
    # Every fabric has a WAN leg (the fabric's reads and nft rules expect one); the VIP VPC's
    # carries nothing: none of its hosts has a public IP, and the fabric drops un-NATed inbound.
    fabric_wan_ports = tuple(fabric_wan_peer(s) for s in (aws, azure, *extra_sites_, vip))
    switches = (
        Switch(INTERNET_NS, INTERNET_GATEWAY, ports(INTERNET_NS) + fabric_wan_ports),
        Switch("hl-home-sw", None, ports("hl-home-sw")),
    )
    topo = Topology(sites, switches, hosts, extra_clients, extra_sites)
    _check_names(topo)
    return topo


def fabric_wan_peer(site: Site) -> str:
    """Name, inside hl-inet, of the veth end facing a cloud fabric's WAN leg."""
    assert site.fabric_ns is not None
    return f"hl-p-{site.fabric_ns.removeprefix('hl-').removesuffix('-fab')}"


def _check_names(topo: Topology) -> None:
    """Names the kernel would refuse fail here, not half-way through ``lab up``."""
    names = list(topo.namespaces)
    links = [n.peer_link for h in topo.hosts for n in h.nics] + [n.name for h in topo.hosts for n in h.nics]
    for link in links:
        if len(link) > IFNAMSIZ:
            raise ValueError(f"interface name {link!r} is longer than {IFNAMSIZ} characters")
    for ns in names:
        if not ns.startswith(PREFIX):
            raise ValueError(f"namespace {ns!r} lacks the {PREFIX!r} prefix")
    if len(set(names)) != len(names):
        raise ValueError("duplicate namespace names")
