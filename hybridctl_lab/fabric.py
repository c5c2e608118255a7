"""The cloud fabric: a router namespace per VPC/VNet, its forwarding driven by data.

:class:`FabricSpec` is the boundary between the cloud emulators and the data plane: the
lab daemon reads the emulators' state (route tables, associations, ENI source/dest check,
NIC IP forwarding, public IPs), builds a spec, and calls :func:`apply`. Nothing here
knows about boto3 or ARM.

Semantics (architecture.md "Cloud fabric"):

- VPC/VNet-local destinations always go by the kernel main table (``ip rule`` priority
  1000, one per CIDR), which holds a /32 route to each host's link;
- then the route table associated with the ingress link's subnet (``iif LINK lookup
  100+i``, priority 2000); a subnet without an association uses ``default_table``;
- then, for a host with a public IP, the "internet gateway" table 250 (priority 3000,
  ``iif LINK from NIC_IP``), so explicit routes win over the implicit internet route;
- nothing matched: ``unreachable`` (priority 32000).
- A route's next hop is a NIC IP (AWS ENI/instance target, Azure VirtualAppliance IP);
  ``None`` or an IP no host link has becomes a blackhole, like AWS shows a route whose
  ENI is gone.
- A NIC with ``may_forward=False`` (AWS source/dest check on, Azure IP forwarding off)
  neither sends with a foreign source (nftables, prerouting) nor receives a packet for a
  foreign destination (nftables, forward).
- A public IP is 1:1 NATed to its NIC IP on the WAN leg (``hl-wan``); inbound traffic on
  the WAN leg that is not part of a NATed connection is dropped, as an IGW does.

:func:`desired_state` (pure) turns a spec into kernel objects; :func:`parse_ip_state` and
:func:`parse_nft_state` (pure) read the kernel's JSON; :func:`plan` (pure) diffs them into
``ip -batch`` lines and one atomic ``nft -f`` script; :func:`apply` runs the three.
Everything the fabric owns is marked (routes ``proto 77``, rules in priorities
1000..32000, one nft table), so what others add is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_network
from typing import Literal

from hybridctl.backends import host_facts
from hybridctl.core.errors import InputError, Problem, RemoteError
from hybridctl_lab import netns
from hybridctl_lab.topology import (
    FABRIC_WAN_LINK,
    IFNAMSIZ,
    INTERNET_CIDR,
    INTERNET_GATEWAY,
    Topology,
)

RT_PROTO = "77"  # marks the routes the fabric owns (any number absent from /etc/iproute2/rt_protos)
TABLE_MAIN = 254
TABLE_IGW = 250
TABLE_SUBNET_BASE = 100  # subnet i of a cloud (sorted by CIDR) routes by table 100 + i
MAX_SUBNETS = TABLE_IGW - TABLE_SUBNET_BASE
PRIO_VPC = 1000
PRIO_SUBNET = 2000
PRIO_IGW = 3000
PRIO_UNREACHABLE = 32000
NFT_TABLE = "hl_fabric_v1"  # the version is in the name: a new skeleton gets a new table
SPEC_FILE = "fabric spec"  # Problem.file for spec validation errors

_TABLE_NAMES = {"main": 254, "local": 255, "default": 253}


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class Route:
    """One route of a cloud route table; ``next_hop`` None means blackhole."""

    prefix: IPv4Network
    next_hop: IPv4Address | None = None


@dataclass(frozen=True)
class HostLink:
    """A host's NIC as the fabric sees it: the fabric-side link and the NIC's addresses."""

    link: str  # interface name inside the fabric namespace
    nic_ip: IPv4Address
    subnet: IPv4Network
    may_forward: bool = False  # AWS source/dest check OFF, Azure IP forwarding ON
    public_ip: IPv4Address | None = None


@dataclass(frozen=True)
class CloudFabric:
    """One VPC/VNet."""

    name: str  # "aws", "azure"
    namespace: str  # "hl-aws-fab"
    cidrs: tuple[IPv4Network, ...]  # VPC CIDR blocks / VNet address space
    subnets: tuple[IPv4Network, ...]
    hosts: tuple[HostLink, ...]
    route_tables: Mapping[str, Sequence[Route]] = field(default_factory=dict)
    associations: Mapping[IPv4Network, str] = field(default_factory=dict)  # subnet -> table name
    default_table: str | None = None  # for subnets without association (AWS main route table)
    wan_link: str = FABRIC_WAN_LINK
    wan_network: IPv4Network = INTERNET_CIDR
    wan_gateway: IPv4Address | None = INTERNET_GATEWAY.ip

    def host(self, nic_ip: IPv4Address) -> HostLink | None:
        for h in self.hosts:
            if h.nic_ip == nic_ip:
                return h
        return None

    def with_forwarding(self, flags: Mapping[IPv4Address, bool]) -> CloudFabric:
        """A copy where the NICs named in ``flags`` (by IP) get ``may_forward`` set as given."""
        hosts = tuple(
            dataclasses.replace(h, may_forward=flags[h.nic_ip]) if h.nic_ip in flags else h for h in self.hosts
        )
        return dataclasses.replace(self, hosts=hosts)

    def table_id(self, subnet: IPv4Network) -> int:
        return TABLE_SUBNET_BASE + sorted(self.subnets).index(subnet)


@dataclass(frozen=True)
class FabricSpec:
    clouds: tuple[CloudFabric, ...]

    def cloud(self, name: str) -> CloudFabric:
        for c in self.clouds:
            if c.name == name:
                return c
        raise KeyError(f"no cloud {name!r} in the fabric spec")

    def with_cloud(self, cloud: CloudFabric) -> FabricSpec:
        """A copy with the cloud of the same name replaced."""
        return FabricSpec(tuple(cloud if c.name == cloud.name else c for c in self.clouds))


def bare_spec(topology: Topology) -> FabricSpec:
    """The spec of a freshly built lab: no routes, every NIC strict, public IPs NATed."""
    clouds = []
    for site in topology.cloud_sites:
        assert site.fabric_ns is not None
        hosts = []
        for host, nic in topology.fabric_links(site.name):
            assert nic.address is not None
            hosts.append(HostLink(nic.peer_link, nic.address.ip, nic.address.network, False, host.public_ip))
        clouds.append(
            CloudFabric(
                name=site.name,
                namespace=site.fabric_ns,
                cidrs=site.networks,
                subnets=tuple(s.cidr for s in site.subnets),
                hosts=tuple(hosts),
            )
        )
    return FabricSpec(tuple(clouds))


def validate(cloud: CloudFabric) -> None:
    """Raise :class:`InputError` if the spec cannot be rendered faithfully."""
    problems: list[Problem] = []

    def bad(where: str, message: str, fix: str) -> None:
        problems.append(Problem(SPEC_FILE, f"{cloud.name}.{where}", message, fix))

    if len(cloud.subnets) > MAX_SUBNETS:
        bad("subnets", f"{len(cloud.subnets)} subnets, at most {MAX_SUBNETS}", "use fewer subnets")
    links = [h.link for h in cloud.hosts]
    ips = [h.nic_ip for h in cloud.hosts]
    for h in cloud.hosts:
        if h.subnet not in cloud.subnets:
            bad(f"hosts[{h.link}].subnet", f"{h.subnet} is not a subnet of the cloud", "add the subnet")
        elif h.nic_ip not in h.subnet:
            bad(f"hosts[{h.link}].nic_ip", f"{h.nic_ip} is outside {h.subnet}", "fix the address")
        if len(h.link) > IFNAMSIZ:
            bad(f"hosts[{h.link}].link", "interface name longer than 15 characters", "shorten it")
    if len(set(links)) != len(links):
        bad("hosts", "a link name appears twice", "one HostLink per link")
    if len(set(ips)) != len(ips):
        bad("hosts", "a NIC IP appears twice", "one HostLink per NIC")
    for subnet, table in cloud.associations.items():
        if subnet not in cloud.subnets:
            bad(f"associations[{subnet}]", "not a subnet of the cloud", "associate existing subnets")
        if table not in cloud.route_tables:
            bad(f"associations[{subnet}]", f"route table {table!r} is not defined", "define it")
    if cloud.default_table is not None and cloud.default_table not in cloud.route_tables:
        bad("default_table", f"route table {cloud.default_table!r} is not defined", "define it")
    if problems:
        raise InputError(problems)


# --------------------------------------------------------------------------- kernel objects


@dataclass(frozen=True)
class KRoute:
    table: int
    dst: IPv4Network
    kind: Literal["unicast", "blackhole"] = "unicast"
    gateway: IPv4Address | None = None
    dev: str | None = None

    def add(self) -> str:
        if self.kind == "blackhole":
            return f"route replace blackhole {self.dst} table {self.table} proto {RT_PROTO}"
        if self.gateway is not None:
            # onlink: the next hop is reached over the host's point-to-point link whatever
            # the table; the fabric has no address in the host's subnet to make it "on link".
            return (
                f"route replace {self.dst} via {self.gateway} dev {self.dev} onlink table {self.table} proto {RT_PROTO}"
            )
        return f"route replace {self.dst} dev {self.dev} scope link table {self.table} proto {RT_PROTO}"

    def delete(self) -> str:
        return f"route del {self.dst} table {self.table} proto {RT_PROTO}"


@dataclass(frozen=True)
class KRule:
    priority: int
    iif: str | None = None
    src: IPv4Network | None = None
    dst: IPv4Network | None = None
    table: int | None = None  # None: the unreachable action

    def _selector(self) -> str:
        parts = [f"prio {self.priority}"]
        if self.iif:
            parts.append(f"iif {self.iif}")
        if self.src is not None:
            parts.append(f"from {self.src}")
        if self.dst is not None:
            parts.append(f"to {self.dst}")
        parts.append(f"lookup {self.table}" if self.table is not None else "unreachable")
        return " ".join(parts)

    def add(self) -> str:
        return f"rule add {self._selector()}"

    def delete(self) -> str:
        return f"rule del {self._selector()}"


@dataclass(frozen=True)
class NftElements:
    """The contents of the fabric's nft sets and maps (the rules themselves never change)."""

    strict_links: frozenset[str] = frozenset()
    strict_nic: frozenset[tuple[str, IPv4Address]] = frozenset()
    wan_links: frozenset[str] = frozenset()
    pub2priv: frozenset[tuple[IPv4Address, IPv4Address]] = frozenset()
    priv2pub: frozenset[tuple[IPv4Address, IPv4Address]] = frozenset()


@dataclass(frozen=True)
class FabricState:
    routes: frozenset[KRoute]
    rules: frozenset[KRule]
    wan_addresses: frozenset[IPv4Interface]
    nft: NftElements | None  # None: the nft table does not exist


@dataclass(frozen=True)
class Desired:
    state: FabricState
    unresolved: tuple[Route, ...]  # routes whose next hop is no NIC: installed as blackholes


def desired_state(cloud: CloudFabric) -> Desired:
    """What the kernel of the fabric namespace must hold for ``cloud`` (pure)."""
    validate(cloud)
    by_ip = {h.nic_ip: h for h in cloud.hosts}
    routes: set[KRoute] = set()
    rules: set[KRule] = set()
    unresolved: list[Route] = []

    for h in cloud.hosts:
        routes.add(KRoute(TABLE_MAIN, IPv4Network(f"{h.nic_ip}/32"), dev=h.link))
    for i, cidr in enumerate(sorted(cloud.cidrs)):
        rules.add(KRule(PRIO_VPC + i, dst=cidr, table=TABLE_MAIN))

    for subnet in sorted(cloud.subnets):
        table_name = cloud.associations.get(subnet, cloud.default_table)
        table = cloud.table_id(subnet)
        for route in cloud.route_tables.get(table_name, ()) if table_name else ():
            target = by_ip.get(route.next_hop) if route.next_hop is not None else None
            if target is None:
                if route.next_hop is not None and route not in unresolved:  # one table may serve many subnets
                    unresolved.append(route)
                routes.add(KRoute(table, route.prefix, "blackhole"))
            else:
                routes.add(KRoute(table, route.prefix, gateway=target.nic_ip, dev=target.link))

    public = [h for h in cloud.hosts if h.public_ip is not None]
    for h in cloud.hosts:
        rules.add(KRule(PRIO_SUBNET, iif=h.link, table=cloud.table_id(h.subnet)))
        if h.public_ip is not None:
            rules.add(KRule(PRIO_IGW, iif=h.link, src=IPv4Network(f"{h.nic_ip}/32"), table=TABLE_IGW))
    if public:
        routes.add(KRoute(TABLE_IGW, cloud.wan_network, dev=cloud.wan_link))
        if cloud.wan_gateway is not None:
            routes.add(KRoute(TABLE_IGW, IPv4Network("0.0.0.0/0"), gateway=cloud.wan_gateway, dev=cloud.wan_link))
    rules.add(KRule(PRIO_UNREACHABLE))

    strict = [h for h in cloud.hosts if not h.may_forward]
    nft = NftElements(
        strict_links=frozenset(h.link for h in strict),
        strict_nic=frozenset((h.link, h.nic_ip) for h in strict),
        wan_links=frozenset({cloud.wan_link}),
        pub2priv=frozenset((h.public_ip, h.nic_ip) for h in public if h.public_ip is not None),
        priv2pub=frozenset((h.nic_ip, h.public_ip) for h in public if h.public_ip is not None),
    )
    wan = frozenset(IPv4Interface(f"{h.public_ip}/{cloud.wan_network.prefixlen}") for h in public)
    return Desired(FabricState(frozenset(routes), frozenset(rules), wan, nft), tuple(unresolved))


# --------------------------------------------------------------------------- nft rendering

_SETS: dict[str, str] = {
    "strict_links": "set strict_links { type ifname; }",
    "strict_nic": "set strict_nic { type ifname . ipv4_addr; }",
    "wan_links": "set wan_links { type ifname; }",
    "pub2priv": "map pub2priv { type ipv4_addr : ipv4_addr; }",
    "priv2pub": "map priv2pub { type ipv4_addr : ipv4_addr; }",
}

_CHAINS = """\
  chain source_check {
    type filter hook prerouting priority raw; policy accept;
    # A NIC that may not forward sends only from its own address (AWS source check, Azure IP forwarding).
    iifname @strict_links iifname . ip saddr != @strict_nic counter drop
  }
  chain forward_check {
    type filter hook forward priority filter; policy accept;
    # ... and receives only what is addressed to it.
    oifname @strict_links oifname . ip daddr != @strict_nic counter drop
    # The internet gateway lets in only NATed connections (replies, or to a public IP).
    iifname @wan_links ct status dnat accept
    iifname @wan_links ct status snat accept
    iifname @wan_links counter drop
  }
  chain public_in {
    type nat hook prerouting priority dstnat; policy accept;
    iifname @wan_links dnat ip to ip daddr map @pub2priv
  }
  chain public_out {
    type nat hook postrouting priority srcnat; policy accept;
    oifname @wan_links snat ip to ip saddr map @priv2pub
  }
"""


def _elem(name: str, item: object) -> str:
    if name in ("strict_links", "wan_links"):
        return json.dumps(item)  # a quoted interface name
    assert isinstance(item, tuple)
    if name == "strict_nic":
        return f"{json.dumps(item[0])} . {item[1]}"
    return f"{item[0]} : {item[1]}"


def _elements(nft: NftElements) -> dict[str, list[str]]:
    return {name: sorted(_elem(name, item) for item in getattr(nft, name)) for name in _SETS}


def render_ruleset(nft: NftElements) -> str:
    """The whole nft table, for a fabric namespace that does not have it yet (pure)."""
    lines = [f"table inet {NFT_TABLE} {{"]
    elements = _elements(nft)
    for name, decl in _SETS.items():
        if elements[name]:
            decl = decl.removesuffix(" }") + f" elements = {{ {', '.join(elements[name])} }} }}"
        lines.append(f"  {decl}")
    lines.append(_CHAINS.rstrip("\n"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _nft_diff(desired: NftElements, actual: NftElements) -> list[str]:
    deletes: list[str] = []
    adds: list[str] = []
    for name in _SETS:
        want: frozenset[object] = getattr(desired, name)
        have: frozenset[object] = getattr(actual, name)
        gone = sorted(_elem(name, i) for i in have - want)
        new = sorted(_elem(name, i) for i in want - have)
        if gone:
            deletes.append(f"delete element inet {NFT_TABLE} {name} {{ {', '.join(gone)} }}")
        if new:
            adds.append(f"add element inet {NFT_TABLE} {name} {{ {', '.join(new)} }}")
    # Deletes first: a map entry whose value changes is a delete plus an add of the same key.
    return deletes + adds


# --------------------------------------------------------------------------- parsing


def _table_id(value: object) -> int:
    if value is None:
        return TABLE_MAIN  # `ip -j route show table all` omits the key for main
    text = str(value)
    return _TABLE_NAMES[text] if text in _TABLE_NAMES else int(text)


def _net(addr: str, length: int | None = None) -> IPv4Network:
    if addr == "default":
        return IPv4Network("0.0.0.0/0")
    return IPv4Network(addr if "/" in addr or length is None else f"{addr}/{length}")


def parse_routes(text: str) -> frozenset[KRoute]:
    """Routes the fabric owns (``proto 77``) from ``ip -j -4 route show table all`` (pure).

    iproute2's JSON is read by hybridctl's host parser (the one the product reads hosts with);
    this only keeps the fabric's routes and turns them into kernel objects.
    """
    routes = set()
    for r in host_facts.parse_routes(text):
        if r.protocol != RT_PROTO:
            continue
        if r.type == "blackhole":
            routes.add(KRoute(_table_id(r.table), r.dst, "blackhole"))
        else:
            routes.add(KRoute(_table_id(r.table), r.dst, "unicast", r.gateway, r.dev))
    return frozenset(routes)


def parse_rules(text: str) -> frozenset[KRule]:
    """Rules in the fabric's priority range from ``ip -j rule show`` (pure)."""
    rules = set()
    for r in json.loads(text or "[]"):
        prio = int(r.get("priority", 0))
        if not PRIO_VPC <= prio <= PRIO_UNREACHABLE:
            continue
        src = None if r.get("src", "all") == "all" else _net(r["src"], r.get("srclen", 32))
        dst = None if r.get("dst", "all") == "all" else _net(r["dst"], r.get("dstlen", 32))
        table = None if r.get("action") == "unreachable" else _table_id(r.get("table"))
        rules.add(KRule(prio, r.get("iif"), src, dst, table))
    return frozenset(rules)


def parse_addresses(text: str) -> frozenset[IPv4Interface]:
    """IPv4 addresses from ``ip -j -4 addr show dev LINK`` (pure; hybridctl's host parser)."""
    return frozenset(a for device in host_facts.parse_addresses(text).values() for a in device.addresses)


def _elem_values(entry: object) -> object:
    # nft -j wraps an element carrying extra data (counter, timeout) as {"elem": {"val": ...}}.
    if isinstance(entry, dict) and "elem" in entry:
        return entry["elem"]["val"]
    return entry


def parse_nft(text: str) -> NftElements | None:
    """The fabric table's set contents from ``nft -j list table inet hl_fabric_v1`` (pure)."""
    if not text.strip():
        return None
    data: dict[str, object] = {}
    for obj in json.loads(text).get("nftables", []):
        item = obj.get("set") or obj.get("map")
        if item and item.get("table") == NFT_TABLE:
            data[item["name"]] = item.get("elem", [])
    if not data:
        return None

    def as_list(name: str) -> list[object]:
        value = data.get(name, [])
        # Be lenient about a lone element printed unwrapped (a bare string, dict or pair).
        lone_pair = name in ("pub2priv", "priv2pub") and isinstance(value, list) and value and isinstance(value[0], str)
        items = value if isinstance(value, list) and not lone_pair else [value]
        return [_elem_values(e) for e in items]

    strict_nic = set()
    for e in as_list("strict_nic"):
        assert isinstance(e, dict)
        link, ip = e["concat"]
        strict_nic.add((str(link), IPv4Address(ip)))
    return NftElements(
        strict_links=frozenset(str(e) for e in as_list("strict_links")),
        strict_nic=frozenset(strict_nic),
        wan_links=frozenset(str(e) for e in as_list("wan_links")),
        pub2priv=frozenset(_pair(e) for e in as_list("pub2priv")),
        priv2pub=frozenset(_pair(e) for e in as_list("priv2pub")),
    )


def _pair(entry: object) -> tuple[IPv4Address, IPv4Address]:
    assert isinstance(entry, list)
    return IPv4Address(entry[0]), IPv4Address(entry[1])


def parse_ip_state(batch_output: str, nft_output: str) -> FabricState:
    """Parse the three JSON lines of :data:`READ_BATCH` and the nft listing (pure)."""
    lines = [line for line in batch_output.splitlines() if line.strip()]
    if len(lines) != 3:
        raise ValueError(f"expected 3 JSON documents from ip -batch, got {len(lines)}")
    return FabricState(parse_routes(lines[0]), parse_rules(lines[1]), parse_addresses(lines[2]), parse_nft(nft_output))


def read_batch(cloud: CloudFabric) -> str:
    """The ``ip -4 -j -batch`` input that reads everything :func:`plan` compares."""
    return f"route show table all\nrule show\naddr show dev {cloud.wan_link}\n"


# --------------------------------------------------------------------------- plan / apply


@dataclass(frozen=True)
class FabricChanges:
    ip_lines: tuple[str, ...]
    nft_script: str  # "" when nothing changes

    @property
    def empty(self) -> bool:
        return not self.ip_lines and not self.nft_script


def plan(desired: FabricState, actual: FabricState, cloud: CloudFabric) -> FabricChanges:
    """The commands that turn ``actual`` into ``desired`` and touch nothing else (pure).

    Order keeps the fabric safe while it changes: new routes before the rules that use
    them, stale rules gone before their routes. ``route replace`` swaps a target in place.
    """
    lines: list[str] = []
    wan = cloud.wan_link
    for addr in sorted(desired.wan_addresses - actual.wan_addresses):
        lines.append(f"addr add {addr} dev {wan}")
    lines += [r.add() for r in sorted(desired.routes - actual.routes, key=repr)]
    lines += [r.add() for r in sorted(desired.rules - actual.rules, key=repr)]
    lines += [r.delete() for r in sorted(actual.rules - desired.rules, key=repr)]
    wanted = {(r.table, r.dst) for r in desired.routes}
    # A route whose (table, dst) is still wanted was already replaced in place above.
    lines += [r.delete() for r in sorted(actual.routes - desired.routes, key=repr) if (r.table, r.dst) not in wanted]
    for addr in sorted(actual.wan_addresses - desired.wan_addresses):
        lines.append(f"addr del {addr} dev {wan}")

    assert desired.nft is not None
    if actual.nft is None:
        nft_script = render_ruleset(desired.nft)
    else:
        nft_script = "\n".join(_nft_diff(desired.nft, actual.nft))
        nft_script = nft_script + "\n" if nft_script else ""
    return FabricChanges(tuple(lines), nft_script)


@dataclass(frozen=True)
class ApplyReport:
    cloud: str
    changes: FabricChanges
    unresolved: tuple[Route, ...]
    seconds: float


def read_state(clouds: Sequence[CloudFabric]) -> dict[str, FabricState]:
    """Read every fabric's current state (two commands per cloud, all in parallel)."""
    jobs = []
    for c in clouds:
        # -4: IPv4 only, which is all the fabric routes (and all hybridctl's route parser reads).
        jobs.append(netns.Job(["ip", "-4", "-n", c.namespace, "-j", "-batch", "-"], read_batch(c), c.namespace))
        jobs.append(
            netns.Job(
                netns.netns_exec_argv(c.namespace, ["nft", "-j", "list", "table", "inet", NFT_TABLE]),
                label=c.namespace,
            )
        )
    results = netns.run_parallel(jobs, check=False)
    states = {}
    for i, c in enumerate(clouds):
        ip_res, nft_res = results[2 * i], results[2 * i + 1]
        if ip_res.returncode != 0:
            raise RemoteError(
                c.namespace,
                f"cannot read the fabric: {ip_res.stderr.strip()}",
                hint="is the lab data plane up? (hybridctl lab up)",
            )
        # nft exits non-zero when the table does not exist yet: that is "no table", not an error.
        states[c.name] = parse_ip_state(ip_res.stdout, nft_res.stdout if nft_res.returncode == 0 else "")
    return states


def apply(spec: FabricSpec | CloudFabric) -> list[ApplyReport]:
    """Converge running fabric namespaces to ``spec``; change only what differs.

    Idempotent: a second call with the same spec reads the state and runs nothing else.
    The nft changes of one cloud are one atomic transaction.
    """
    clouds = list(spec.clouds) if isinstance(spec, FabricSpec) else [spec]
    start = time.monotonic()
    wanted = {c.name: desired_state(c) for c in clouds}  # validates before touching anything
    actual = read_state(clouds)
    changes = {c.name: plan(wanted[c.name].state, actual[c.name], c) for c in clouds}
    jobs = []
    for c in clouds:
        ch = changes[c.name]
        if ch.ip_lines:
            jobs.append(
                netns.Job(
                    ["ip", "-n", c.namespace, "-batch", "-"], "\n".join(ch.ip_lines) + "\n", f"{c.namespace} (ip)"
                )
            )
        if ch.nft_script:
            jobs.append(
                netns.Job(netns.netns_exec_argv(c.namespace, ["nft", "-f", "-"]), ch.nft_script, f"{c.namespace} (nft)")
            )
    netns.run_parallel(jobs)
    elapsed = time.monotonic() - start
    return [ApplyReport(c.name, changes[c.name], wanted[c.name].unresolved, elapsed) for c in clouds]


def networks(prefixes: Iterable[str]) -> tuple[IPv4Network, ...]:
    """Convenience for callers holding strings: ("192.168.1.0/24", ...) -> networks."""
    out = []
    for p in prefixes:
        net = ip_network(p)
        if not isinstance(net, IPv4Network):
            raise ValueError(f"{p} is not an IPv4 network")
        out.append(net)
    return tuple(out)
