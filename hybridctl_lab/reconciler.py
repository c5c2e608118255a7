"""The fabric reconciler: the lab's cloud router namespaces follow the emulated clouds' APIs.

Two halves:

- :func:`build_spec` (pure): the AWS emulator's :class:`FabricView` and a snapshot of the
  Azure store -> a :class:`~hybridctl_lab.fabric.FabricSpec` for the lab topology. It
  applies each cloud's rules the way the cloud does:

  * which VPC / VNet stands behind each fabric: by Name tag (``Hybrid-VPC`` for ``hl-aws-fab``,
    ``VIP-VPC`` for ``hl-vip-fab``, ``Hybrid-VNet``), else the one holding most of its subnets;
  * which route table a subnet uses: AWS the explicitly associated table, else the VPC's
    main table; Azure the subnet's ``routeTable``, else none (system routes only);
  * route targets: AWS ENI / instance (the instance's primary ENI) and Azure
    ``VirtualAppliance`` resolve to that NIC's private IP; a route whose target is gone
    (AWS ``blackhole``), Azure ``None``, or a target the lab has no data plane for (transit
    gateway, NAT gateway, peering, virtual network gateway) drops traffic (blackhole);
  * ``local`` / ``VnetLocal`` routes and internet routes (AWS ``igw-``, Azure ``Internet``)
    are not copied: the fabric always routes VPC-local destinations locally and gives
    hosts with a public IP their implicit internet path;
  * ``may_forward``: AWS source/dest check off, Azure ``enableIPForwarding`` on.

- :class:`Reconciler`: a thread that is woken by both emulators' change notifications
  (debounced), and by a periodic safety poll, builds the spec and calls
  :func:`hybridctl_lab.fabric.apply` (which changes only what differs). After every pass it
  writes ``LAB_DIR/reconciler.json`` so ``lab status`` and tests can see what was applied
  and when (``snapshot_at``: wall-clock time at which the cloud state was read).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any, Protocol

from hybridctl_lab import fabric
from hybridctl_lab.fabric import CloudFabric, FabricSpec, Route
from hybridctl_lab.seed import AZURE_VNET, VPC_NAME, aws_vpc_name
from hybridctl_lab.topology import Topology

log = logging.getLogger(__name__)

STATUS_FILE = "reconciler.json"
NETWORK_PROVIDER = "microsoft.network/"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
ROUTE_TABLE_TYPE = "Microsoft.Network/routeTables"


# --------------------------------------------------------------------------- pure spec building


@dataclass(frozen=True)
class AzureSnapshot:
    """The Azure resources the fabric depends on, as ARM GET renders them."""

    virtual_networks: tuple[dict[str, Any], ...] = ()
    network_interfaces: tuple[dict[str, Any], ...] = ()
    route_tables: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_store(cls, store: _StoreLike) -> AzureSnapshot:
        """One consistent read (``Store.snapshot`` renders everything under the store's lock)."""
        resources = store.snapshot().get("resources", [])

        def of(kind: str) -> tuple[dict[str, Any], ...]:
            return tuple(r for r in resources if str(r.get("type", "")).lower() == kind.lower())

        return cls(of(VNET_TYPE), of(NIC_TYPE), of(ROUTE_TABLE_TYPE))


class _StoreLike(Protocol):
    def snapshot(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SpecBuild:
    spec: FabricSpec
    notes: tuple[str, ...] = ()  # what could not be matched (a subnet missing in the cloud, ...)


def _ipv4_net(text: object) -> IPv4Network | None:
    try:
        net = ip_network(str(text), strict=False)
    except ValueError:
        return None  # IPv6 handled below, prefix lists, Azure service tags
    return net if isinstance(net, IPv4Network) else None


def _ipv4(text: object) -> IPv4Address | None:
    try:
        addr = ip_address(str(text))
    except ValueError:
        return None
    return addr if isinstance(addr, IPv4Address) else None


def aws_routes(routes: Iterable[Any]) -> list[Route]:
    """AWS routes (``RouteView``) as fabric routes (pure)."""
    out: list[Route] = []
    for r in routes:
        prefix = _ipv4_net(r.destination)
        if prefix is None or r.target_type == "local":
            continue
        if r.target_type == "gateway" and str(r.target_id).startswith("igw-"):
            continue  # the internet: the fabric's implicit path for hosts with a public IP
        if r.target_type in ("network-interface", "instance"):
            hop = _ipv4(r.next_hop_ip) if r.state == "active" else None
            out.append(Route(prefix, hop))
        else:
            # Virtual private gateway, transit gateway, NAT gateway, peering...: no lab data
            # plane stands behind them, so the traffic goes nowhere (it would leave the VPC).
            out.append(Route(prefix, None))
    return out


def _pick_vpc(view: Any, subnets: Sequence[IPv4Network], vpc_name: str) -> str | None:
    named = sorted(v.vpc_id for v in view.vpcs.values() if v.tags.get("Name") == vpc_name)
    if named:
        return named[0]
    # No VPC of that name: the one holding most of the lab's subnets (ties: lowest id).
    score: dict[str, int] = {}
    for s in view.subnets.values():
        if _ipv4_net(s.cidr) in subnets:
            score[s.vpc_id] = score.get(s.vpc_id, 0) + 1
    return min(score, key=lambda v: (-score[v], v)) if score else None


def aws_cloud(bare: CloudFabric, view: Any | None, vpc_name: str = VPC_NAME) -> tuple[CloudFabric, list[str]]:
    """The AWS cloud of the spec from a :class:`~hybridctl_lab.aws_emulator.FabricView` (pure)."""
    notes: list[str] = []
    label = "AWS" if bare.name == "aws" else f"AWS {bare.name}"  # the lab has two AWS fabrics
    if view is None:
        return bare, [f"{label}: no state"]
    vpc_id = _pick_vpc(view, bare.subnets, vpc_name)
    if vpc_id is None:
        return bare, [f"{label}: no VPC {vpc_name!r} and none holds the lab's subnets: no routes, every NIC strict"]
    route_tables: dict[str, list[Route]] = {}
    associations: dict[IPv4Network, str] = {}
    for cidr in bare.subnets:
        matches = sorted(
            (s for s in view.subnets.values() if s.vpc_id == vpc_id and _ipv4_net(s.cidr) == cidr),
            key=lambda s: s.subnet_id,
        )
        if not matches:
            notes.append(f"{label}: no subnet {cidr} in {vpc_id}")
            continue
        table = view.route_table_for_subnet(matches[0].subnet_id)
        if table is None:
            notes.append(f"{label}: subnet {cidr} has no route table")
            continue
        route_tables.setdefault(table.route_table_id, aws_routes(table.routes))
        associations[cidr] = table.route_table_id
    forwarding: dict[IPv4Address, bool] = {}
    for eni in sorted(view.enis.values(), key=lambda e: e.eni_id):
        if eni.vpc_id != vpc_id:
            continue
        for text in eni.private_ips:
            ip = _ipv4(text)
            if ip is not None and bare.host(ip) is not None:
                forwarding[ip] = not eni.source_dest_check
    cloud = dataclasses.replace(
        bare, route_tables=route_tables, associations=associations, default_table=None
    ).with_forwarding(forwarding)
    return cloud, notes


def _props(body: Mapping[str, Any]) -> Mapping[str, Any]:
    props = body.get("properties")
    return props if isinstance(props, Mapping) else {}


def azure_routes(table: Mapping[str, Any]) -> list[Route]:
    """Routes of an Azure route table body as fabric routes (pure)."""
    out: list[Route] = []
    for entry in _props(table).get("routes") or []:
        props = _props(entry)
        prefix = _ipv4_net(props.get("addressPrefix"))
        if prefix is None:
            continue  # a service tag or IPv6: nothing the lab routes
        hop_type = str(props.get("nextHopType", "")).lower()
        if hop_type in ("vnetlocal", "internet"):
            continue  # the fabric's local rule / implicit internet path
        if hop_type == "virtualappliance":
            out.append(Route(prefix, _ipv4(props.get("nextHopIpAddress"))))
        else:
            out.append(Route(prefix, None))  # None (drop), VirtualNetworkGateway (none in the lab)
    return out


def _subnet_prefixes(subnet: Mapping[str, Any]) -> list[IPv4Network]:
    props = _props(subnet)
    raw = [props.get("addressPrefix"), *(props.get("addressPrefixes") or [])]
    return [n for n in (_ipv4_net(p) for p in raw if p) if n is not None]


def azure_cloud(
    bare: CloudFabric, snapshot: AzureSnapshot | None, vnet_name: str = AZURE_VNET
) -> tuple[CloudFabric, list[str]]:
    """The Azure cloud of the spec from the ARM bodies of VNets, NICs and route tables (pure)."""
    notes: list[str] = []
    if snapshot is None:
        return bare, ["Azure: no state"]
    vnets = sorted(snapshot.virtual_networks, key=lambda v: str(v.get("id", "")).lower())
    named = [v for v in vnets if v.get("name") == vnet_name]
    candidates = named or [
        v for v in vnets if any(set(_subnet_prefixes(s)) & set(bare.subnets) for s in _props(v).get("subnets") or [])
    ]
    if not candidates:
        return bare, [f"Azure: no VNet {vnet_name!r} and none holds the lab's subnets: no routes, every NIC strict"]
    vnet = candidates[0]
    tables = {str(t.get("id", "")).lower(): t for t in snapshot.route_tables}
    route_tables: dict[str, list[Route]] = {}
    associations: dict[IPv4Network, str] = {}
    subnet_ids: set[str] = set()
    for cidr in bare.subnets:
        subnet = next((s for s in _props(vnet).get("subnets") or [] if cidr in _subnet_prefixes(s)), None)
        if subnet is None:
            notes.append(f"Azure: no subnet {cidr} in {vnet.get('name')}")
            continue
        subnet_ids.add(str(subnet.get("id", "")).lower())
        ref = _props(subnet).get("routeTable")
        table_id = str(ref.get("id", "")).lower() if isinstance(ref, Mapping) else ""
        if not table_id:
            continue  # system routes only
        table = tables.get(table_id)
        if table is None:
            notes.append(f"Azure: subnet {cidr} names a missing route table {table_id}")
            continue
        route_tables.setdefault(table_id, azure_routes(table))
        associations[cidr] = table_id
    forwarding: dict[IPv4Address, bool] = {}
    for nic in sorted(snapshot.network_interfaces, key=lambda n: str(n.get("id", "")).lower()):
        props = _props(nic)
        for config in props.get("ipConfigurations") or []:
            cprops = _props(config)
            subnet_ref = cprops.get("subnet")
            in_vnet = isinstance(subnet_ref, Mapping) and str(subnet_ref.get("id", "")).lower() in subnet_ids
            ip = _ipv4(cprops.get("privateIPAddress"))
            if in_vnet and ip is not None and bare.host(ip) is not None:
                forwarding[ip] = bool(props.get("enableIPForwarding", False))
    cloud = dataclasses.replace(
        bare, route_tables=route_tables, associations=associations, default_table=None
    ).with_forwarding(forwarding)
    return cloud, notes


def build_spec(topology: Topology, aws_view: Any | None, azure: AzureSnapshot | None) -> SpecBuild:
    """The fabric spec the clouds' state asks for (pure). Missing state = that cloud stays bare."""
    bare = fabric.bare_spec(topology)
    clouds: list[CloudFabric] = []
    notes: list[str] = []
    for cloud in bare.clouds:
        kind = topology.site(cloud.name).kind
        if kind == "aws":
            # One VPC per AWS fabric, by its Name tag: Hybrid-VPC (overlay), VIP-VPC (section 4),
            # S1-VPC... (extra sites).
            built, why = aws_cloud(cloud, aws_view, aws_vpc_name(cloud.name))
        elif kind == "azure":
            built, why = azure_cloud(cloud, azure)
        else:  # pragma: no cover - only clouds have fabrics
            built, why = cloud, []
        clouds.append(built)
        notes += why
    return SpecBuild(FabricSpec(tuple(clouds)), tuple(notes))


# --------------------------------------------------------------------------- the thread


@dataclass
class PassResult:
    snapshot_at: float  # time.time() just before the cloud state was read
    ok: bool
    seconds: float = 0.0
    changed: bool = False  # the kernel needed changes
    error: str | None = None
    unresolved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reason: str = "poll"  # "event", "poll", "retry", "start"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ApplyFn = Callable[[FabricSpec], Sequence[fabric.ApplyReport]]


class Reconciler:
    """Keeps the fabric in step with the emulators; one thread, started by the lab daemon.

    ``read_aws`` / ``read_azure`` return the current cloud state (``fabric_view(region)`` and
    :meth:`AzureSnapshot.from_store`); ``ready`` says whether the data plane exists (no
    apply before it does); ``apply`` is :func:`fabric.apply` (tests may pass a recorder).
    """

    def __init__(
        self,
        topology: Topology,
        *,
        read_aws: Callable[[], Any | None],
        read_azure: Callable[[], AzureSnapshot | None],
        apply: ApplyFn = fabric.apply,
        ready: Callable[[], bool] = lambda: True,
        status_file: Path | None = None,
        debounce: float = 0.03,
        max_debounce: float = 0.2,
        poll_interval: float = 2.0,
        retry_interval: float = 0.25,
    ) -> None:
        self.topology = topology
        self._read_aws = read_aws
        self._read_azure = read_azure
        self._apply = apply
        self._ready = ready
        self.status_file = status_file
        self.debounce = debounce
        self.max_debounce = max_debounce
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.events = 0
        self.passes = 0
        self.applies_with_changes = 0
        self.last: PassResult | None = None
        self.last_change: PassResult | None = None  # the last pass that changed the kernel
        self.last_ok_snapshot_at: float | None = None
        self.last_spec: FabricSpec | None = None

    # -- notifications ------------------------------------------------------------------------

    def notify(self, *_: object) -> None:
        """A cloud changed (any thread, cheap: counts and wakes the loop)."""
        with self._lock:
            self.events += 1
        self._wake.set()

    def on_aws_event(self, event: Any) -> None:
        """AwsEmulator subscriber: EC2 changes matter, budgets or IAM do not."""
        if getattr(event, "service", "") == "ec2":
            self.notify()

    def on_azure_changes(self, changes: Sequence[Any]) -> None:
        """Azure Store subscriber: network resources (and resource group deletes) matter."""
        if any(
            str(c.resource_type).lower().startswith(NETWORK_PROVIDER)
            or str(c.resource_type).lower() == "microsoft.resources/resourcegroups"
            for c in changes
        ):
            self.notify()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fabric-reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        reason = "start"
        while not self._stop.is_set():
            result = self.run_once(reason)
            wait = self.retry_interval if not result.ok else self.poll_interval
            woke = self._wake.wait(wait)
            if self._stop.is_set():
                break
            if woke:
                self._settle()
                reason = "event"
            else:
                reason = "retry" if not result.ok else "poll"

    def _settle(self) -> None:
        """Debounce: let a burst of API calls land, but never wait longer than max_debounce."""
        first = time.monotonic()
        while True:
            self._wake.clear()
            if not self._wake.wait(self.debounce) or time.monotonic() - first >= self.max_debounce:
                break
        self._wake.clear()

    # -- one pass -----------------------------------------------------------------------------

    def run_once(self, reason: str = "poll") -> PassResult:
        start = time.monotonic()
        snapshot_at = time.time()
        if not self._ready():
            result = PassResult(snapshot_at, False, error="the lab data plane is not up", reason=reason)
        else:
            try:
                build = build_spec(self.topology, self._read_aws(), self._read_azure())
                reports = self._apply(build.spec)
                unresolved = {f"{r.cloud}: {u.prefix} -> {u.next_hop}" for r in reports for u in r.unresolved}
                result = PassResult(
                    snapshot_at,
                    True,
                    changed=any(not r.changes.empty for r in reports),
                    unresolved=sorted(unresolved),
                    notes=list(build.notes),
                    reason=reason,
                )
                self.last_spec = build.spec
            except Exception as exc:  # logged and retried: the daemon must outlive a bad pass
                log.exception("fabric reconcile failed")
                result = PassResult(snapshot_at, False, error=f"{type(exc).__name__}: {exc}", reason=reason)
        result.seconds = time.monotonic() - start
        with self._lock:
            self.passes += 1
            if result.changed:
                self.applies_with_changes += 1
                self.last_change = result
            if result.ok:
                self.last_ok_snapshot_at = snapshot_at
            self.last = result
        if result.changed:
            log.info("fabric updated (%s) in %.0f ms", reason, result.seconds * 1000)
        self._write_status()
        return result

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pid": os.getpid(),
                "events": self.events,
                "passes": self.passes,
                "applies_with_changes": self.applies_with_changes,
                "last_ok_snapshot_at": self.last_ok_snapshot_at,
                "last": self.last.as_dict() if self.last else None,
                "last_change": self.last_change.as_dict() if self.last_change else None,
                "poll_interval": self.poll_interval,
            }

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        tmp = self.status_file.with_name(f".{self.status_file.name}.tmp")
        try:
            tmp.write_text(json.dumps(self.status(), indent=1) + "\n")
            os.replace(tmp, self.status_file)
        except OSError:  # the lab dir went away under us (lab down racing): nothing to report to
            log.debug("cannot write %s", self.status_file, exc_info=True)


def read_status(lab_dir: Path) -> dict[str, Any] | None:
    """LAB_DIR/reconciler.json, or None."""
    try:
        data = json.loads((lab_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None
