"""The lab's data plane: bring it up, tear it down, report on it, run commands in it.

``up`` builds every namespace of :func:`hybridctl_lab.topology.build_topology` in a
handful of processes: one ``ip -batch`` in the root namespace creates the namespaces and
the veth pairs *directly inside them* (the root namespace never gains a link or an
address), one command per namespace (all in parallel) addresses and wires it, the hosts
boot systemd in parallel (:mod:`hybridctl_lab.hosts`) while the fabric gets its bare spec, and
we wait until each host's sshd (its ssh.service) listens.

``down`` powers every recorded host off (SIGRTMIN+4 to its init, start time checked), kills
what a grace period leaves in its cgroup, then by PID every process still in an ``hl-``
network namespace or a host's mount namespace (a command entered with nsenter), deletes the
namespaces, the hosts' cgroups and the files ``up`` wrote. Only the lab client key persists.
``down`` on a lab that is down succeeds.

The control plane (emulators, fabric reconciler) is not here; it calls
:func:`hybridctl_lab.fabric.apply` with a spec built from the emulators' state.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridctl.core.errors import PreconditionError, RemoteError
from hybridctl_lab import fabric, hosts, netns
from hybridctl_lab.hosts import LabPaths
from hybridctl_lab.topology import (
    FABRIC_WAN_LINK,
    PREFIX,
    SWITCH_BRIDGE,
    Host,
    Topology,
    build_topology,
    fabric_wan_peer,
)

BOOT_SECONDS_PER_HOST = 0.5  # wait_hosts' bound for big labs (measured ~0.23 s per host on 2 cores)

REQUIRED_TOOLS = (
    "ip", "nft", "unshare", "nsenter", "setpriv", "sysctl", "nc", "ssh", hosts.SSHD, hosts.SYSTEMD, "mount", "mknod",
    "hostname", "sudo",
)  # fmt: skip
LOCK_FILE = Path("/run/lock/hybridctl-lab.lock")
STATE_VERSION = 1


@dataclass(frozen=True)
class UpResult:
    lab_dir: Path
    topology: Topology
    ssh_config: Path
    known_hosts: Path
    client_key: Path
    host_pids: dict[str, int]  # each host's `unshare` (the parent of its init)
    spec: fabric.FabricSpec  # the bare spec the fabric was given
    seconds: float


@dataclass(frozen=True)
class DownResult:
    killed: list[int]
    namespaces: list[str]
    seconds: float


@dataclass(frozen=True)
class HostStatus:
    name: str
    managed: bool
    namespace: bool  # the network namespace exists
    sshd_pid: int | None = None
    sshd_running: bool = False
    listening: bool = False
    sshd: bool = False  # the host runs an sshd (managed and test hosts)
    init_pid: int | None = None  # the host's systemd (PID 1 of its namespaces)
    user: str | None = None  # who logs in over SSH

    @property
    def ok(self) -> bool:
        return self.namespace and (not self.sshd or (self.sshd_running and self.listening))


@dataclass(frozen=True)
class DataplaneStatus:
    lab_dir: Path
    up: bool  # every namespace exists and every host's sshd listens
    extra_clients: int | None  # None: no state file (never up, or torn down)
    hosts: list[HostStatus] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)  # hl- namespaces that exist
    stray: list[str] = field(default_factory=list)  # hl- namespaces the topology does not know

    def as_dict(self) -> dict[str, object]:
        return {
            "lab_dir": str(self.lab_dir),
            "up": self.up,
            "extra_clients": self.extra_clients,
            "namespaces": self.namespaces,
            "stray": self.stray,
            "hosts": [
                {
                    "name": h.name,
                    "managed": h.managed,
                    "sshd": h.sshd,
                    "namespace": h.namespace,
                    "sshd_pid": h.sshd_pid,
                    "sshd_running": h.sshd_running,
                    "listening": h.listening,
                    "init_pid": h.init_pid,
                    "user": h.user,
                    "ok": h.ok,
                }
                for h in self.hosts
            ],
        }


# --------------------------------------------------------------------------- pure plans


def root_batch(topo: Topology) -> list[str]:
    """``ip -batch`` lines for the root namespace: namespaces and veths created in place (pure)."""
    lines = [f"netns add {ns}" for ns in topo.namespaces]
    for h in topo.hosts:
        for nic in h.nics:
            lines.append(f"link add {nic.name} netns {h.name} type veth peer name {nic.peer_link} netns {nic.peer_ns}")
    for site in topo.cloud_sites:
        lines.append(
            f"link add {FABRIC_WAN_LINK} netns {site.fabric_ns} type veth "
            f"peer name {fabric_wan_peer(site)} netns hl-inet"
        )
    return lines


@dataclass(frozen=True)
class NamespaceSetup:
    namespace: str
    sysctls: tuple[str, ...]  # "key=value", applied before the ip lines
    ip_lines: tuple[str, ...]
    phase: int  # 0 hosts, 1 switches and fabrics (see configure_namespaces)


def namespace_setups(topo: Topology) -> list[NamespaceSetup]:
    """Per-namespace configuration (pure); every namespace's links exist already."""
    common = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    setups = []
    for sw in topo.switches:
        lines = ["link set lo up", f"link add {SWITCH_BRIDGE} type bridge stp_state 0 mcast_snooping 0"]
        for port in sw.ports:
            lines += [f"link set {port} master {SWITCH_BRIDGE}", f"link set {port} up"]
        if sw.address is not None:
            lines.append(f"addr add {sw.address} dev {SWITCH_BRIDGE}")
        lines.append(f"link set {SWITCH_BRIDGE} up")
        setups.append(NamespaceSetup(sw.name, (*common, "net.ipv4.ip_forward=0"), tuple(lines), 1))

    for site in topo.cloud_sites:
        assert site.fabric_ns is not None
        gateways = {s.cidr: s.gateway for s in site.subnets}
        sysctls = [
            *common,
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.all.promote_secondaries=1",
        ]
        lines = ["link set lo up", f"link set {FABRIC_WAN_LINK} up"]
        for _host, nic in topo.fabric_links(site.name):
            assert nic.address is not None
            link = nic.peer_link
            # The subnet's .1 on every host link (/32: no connected route; the fabric routes
            # to each host by its /32), and proxy ARP, answered at once (proxy_delay 0):
            # the fabric answers ARP for every address it routes elsewhere, as clouds do.
            lines += [f"addr add {gateways[nic.address.network]}/32 dev {link}", f"link set {link} up"]
            sysctls += [
                f"net.ipv4.conf.{link}.proxy_arp=1",
                f"net.ipv4.conf.{link}.rp_filter=0",
                f"net.ipv4.neigh.{link}.proxy_delay=0",
            ]
        setups.append(NamespaceSetup(site.fabric_ns, tuple(sysctls), tuple(lines), 1))

    for h in topo.hosts:
        lines = ["link set lo up"]
        for nic in h.nics:
            if nic.address is not None:
                lines.append(f"addr add {nic.address} dev {nic.name}")
            if nic.promisc:
                lines.append(f"link set {nic.name} promisc on")
            lines.append(f"link set {nic.name} up")
        if h.gateway is not None:
            lines.append(f"route add default via {h.gateway}")
        # Bare: no forwarding until hybridctl turns it on (new namespaces may inherit it).
        setups.append(NamespaceSetup(h.name, (*common, "net.ipv4.ip_forward=0"), tuple(lines), 0))
    return setups


def configure_namespaces(setups: Sequence[NamespaceSetup]) -> None:
    """Sysctls first (IPv6 off before links go up), then one ``ip -n NS -batch`` each, in parallel.

    Hosts go first, switches and fabrics after: when both ends of a veth are set up at the
    same instant from two namespaces, the kernel can leave both without carrier (each
    end's open sees its peer still down), so one side of every pair is up before the other.
    """
    netns.write_sysctls({s.namespace: s.sysctls for s in setups})
    for phase in (0, 1):
        netns.run_parallel(
            [
                netns.Job(["ip", "-n", s.namespace, "-batch", "-"], "\n".join(s.ip_lines) + "\n", s.namespace)
                for s in setups
                if s.phase == phase
            ]
        )


# --------------------------------------------------------------------------- state file


def _paths(lab_dir: Path | str | None) -> LabPaths:
    return LabPaths(hosts.lab_dir(lab_dir))


def _read_state(paths: LabPaths) -> dict[str, object] | None:
    try:
        data = json.loads(paths.state.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def current_topology(lab_dir: Path | str | None = None) -> Topology:
    """The topology the running lab was built with (from LAB_DIR/dataplane.json)."""
    state = _read_state(_paths(lab_dir))
    if state is None:
        raise PreconditionError("the lab data plane is not up (no dataplane.json); run `hybridctl lab up`")
    return _state_topology(state)


def _state_topology(state: dict[str, Any]) -> Topology:
    """The topology recorded in dataplane.json (extra clients and extra sites)."""
    extra = state.get("extra_clients", 0)
    sites = state.get("extra_sites", 0)
    return build_topology(int(extra) if isinstance(extra, int) else 0, int(sites) if isinstance(sites, int) else 0)


# --------------------------------------------------------------------------- up / down


def login_users(topo: Topology) -> dict[str, str]:
    """Host name -> the user SSH logs in as (pure)."""
    return {h.name: hosts.login_user(h, topo.site(h.site).kind) for h in topo.ssh_hosts}


def _prepare_files(paths: LabPaths, topo: Topology, with_sshd: Sequence[Host]) -> None:
    hosts.write_init_script(paths)
    client_pub = hosts.ensure_client_key(paths)
    users = login_users(topo)
    bastions = {h.name: b for h in with_sshd if (b := topo.bastion_for(h)) is not None}
    uid = hosts.free_uid()
    host_keys = {
        h.name: hosts.prepare_host(paths, h, users[h.name], client_pub, uid, bastions.get(h.name)) for h in with_sshd
    }
    hosts.write_client_files(paths, with_sshd, host_keys, users, bastions)


def up(*, extra_clients: int = 0, extra_sites: int = 0, lab_dir: Path | str | None = None) -> UpResult:
    """Build the data plane from scratch (tearing down leftovers of an earlier one first).

    Managed hosts come up bare: no SoftEther config, ip_forward=0, no routes beyond their
    subnet and default gateway. The fabric gets :func:`fabric.bare_spec`.
    """
    netns.require_root_and_tools(REQUIRED_TOOLS)
    start = time.monotonic()
    paths = _paths(lab_dir)
    topo = build_topology(extra_clients, extra_sites)
    down(lab_dir=paths.root)
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        os.chmod(paths.root, 0o700)  # holds private keys; sshd StrictModes wants it not group-writable
        with_sshd = topo.ssh_hosts  # managed hosts and test hosts
        hosts.mount_hosts_dir(paths)
        # Keys and configs are file work, the namespaces kernel work: do both at once.
        with ThreadPoolExecutor(max_workers=1) as pool:
            files = pool.submit(_prepare_files, paths, topo, with_sshd)
            netns.ip_batch(root_batch(topo), label="ip -batch (namespaces and links)")
            configure_namespaces(namespace_setups(topo))
            files.result()
        pids = hosts.start_hosts(paths, with_sshd)
        spec = fabric.bare_spec(topo)
        fabric.apply(spec)  # runs while the hosts boot
        # 200 systemd boots on two cores take ~45 s: the bound grows with the number of hosts.
        hosts.wait_hosts(paths, pids, timeout=max(hosts.BOOT_TIMEOUT, BOOT_SECONDS_PER_HOST * len(pids)))
        paths.state.write_text(
            json.dumps(
                {
                    "version": STATE_VERSION,
                    "extra_clients": extra_clients,
                    "extra_sites": extra_sites,
                    "host_pids": pids,
                },
                indent=1,
            )
            + "\n"
        )
    except BaseException:
        down(lab_dir=paths.root)
        raise
    return UpResult(
        paths.root,
        topo,
        paths.ssh_config,
        paths.known_hosts,
        paths.client_key,
        pids,
        spec,
        time.monotonic() - start,
    )


def down(*, lab_dir: Path | str | None = None) -> DownResult:
    """Tear the data plane down; succeeds when it is already down."""
    start = time.monotonic()
    paths = _paths(lab_dir)
    if os.geteuid() != 0:
        raise PreconditionError("the lab needs root (network and mount namespaces)")
    records = hosts.read_pid_records(paths)
    mnt = [r.mnt_inode for r in records.values() if r.mnt_inode is not None]
    # Hosts first: a clean poweroff stops their units (SoftEther included) and ends every
    # process of their PID namespaces; then anything left in the network namespaces (a command
    # entered with nsenter -n only); a second pass catches what a dying process forked meanwhile.
    before = netns.pids_in_namespaces(netns.list_namespaces(PREFIX), mnt)
    killed: list[int] = hosts.stop_hosts(records)
    # Everything that lived in the lab was ended by this `down` (a host's poweroff ends the
    # processes of its PID namespace without us signalling each).
    killed += [pid for pid in before if netns.proc_starttime(pid) is None]
    targets: dict[int, int | None] = {}
    for _ in range(5):
        namespaces = netns.list_namespaces(PREFIX)
        for pid in netns.pids_in_namespaces(namespaces, mnt):
            targets.setdefault(pid, None)
        if not targets:
            break
        killed += netns.kill_pids(targets)
        targets = {}
    namespaces = netns.list_namespaces(PREFIX)
    left = netns.pids_in_namespaces(namespaces, mnt)
    if left:
        raise RemoteError("lab down", f"processes survive in lab namespaces: {sorted(left)}")
    netns.delete_namespaces(namespaces)
    stuck = hosts.remove_cgroups(hosts.lab_cgroups(PREFIX))
    if stuck:
        raise RemoteError("lab down", f"cgroups still in use: {', '.join(map(str, stuck))}")
    hosts.clear_host_files(paths)
    return DownResult(sorted(set(killed)), namespaces, time.monotonic() - start)


@contextmanager
def lab_lock(timeout: float | None = None) -> Iterator[None]:
    """Hold the machine-wide lab lock: there is one set of ``hl-`` namespaces per machine,
    so tests (or scripts) that bring the lab up must not overlap, whatever their LAB_DIR.

    Waits ``timeout`` seconds, default ``$HYBRIDCTL_LAB_LOCK_TIMEOUT`` or 600 (several
    checkouts testing on one machine queue up here)."""
    if timeout is None:
        timeout = float(os.environ.get("HYBRIDCTL_LAB_LOCK_TIMEOUT", "600"))
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PreconditionError(f"another lab holds {LOCK_FILE} for over {timeout}s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- status / exec


def status(*, lab_dir: Path | str | None = None) -> DataplaneStatus:
    paths = _paths(lab_dir)
    state = _read_state(paths)
    existing = netns.list_namespaces(PREFIX)
    if state is None:
        return DataplaneStatus(paths.root, False, None, [], existing, existing)
    topo = _state_topology(state)
    records = hosts.read_pid_records(paths)
    users = login_users(topo)
    host_status = []
    for h in topo.hosts:
        rec = records.get(h.name)
        running = rec is not None and rec.init is not None and hosts.alive(rec)
        host_status.append(
            HostStatus(
                h.name,
                h.managed,
                h.name in existing,
                rec.pid if rec else None,
                running,
                running and rec is not None and rec.init is not None and hosts.listening(rec.init, hosts.SSH_PORT),
                h.sshd,
                rec.init if rec else None,
                users.get(h.name),
            )
        )
    infra_ok = all(ns in existing for ns in topo.namespaces)
    stray = [ns for ns in existing if ns not in topo.namespaces]
    return DataplaneStatus(
        paths.root, infra_ok and all(h.ok for h in host_status), topo.extra_clients, host_status, existing, stray
    )


def lab_host(name: str) -> str:
    """The lab host (namespace) for ``name``: a namespace name as is, or a name the lab's
    inventories use for it (``aws-bridge`` -> ``hl-aws-br``, ``vpnserver`` -> ``hl-home-srv``,
    ``aws-h20``, ``node1``: :func:`hybridctl_lab.inventory.host_names`)."""
    if name.startswith(PREFIX):
        return name
    from hybridctl_lab.inventory import host_names

    # Extra LAN clients are named as their hosts (hl-home-c100...), so topology 0 has every alias.
    return host_names(build_topology(0)).get(name, name)


def exec_argv(host: str, *, lab_dir: Path | str | None = None) -> list[str]:
    """The command prefix that runs something inside ``host`` (for callers that need Popen).

    ``host`` is a namespace or an inventory name (:func:`lab_host`). Hosts (managed, test and
    VIP hosts): ``nsenter`` into every namespace of their init (mount, UTS, IPC, network, PID,
    cgroup), so the command sees the host's files, processes and units exactly as an SSH session
    does (as root). Switches and fabrics: ``ip netns exec``.
    """
    asked, host = host, lab_host(host)
    paths = _paths(lab_dir)
    record = hosts.read_pid_records(paths).get(host)
    if record is not None:
        if not hosts.alive(record) or record.init is None:
            raise RemoteError(host, f"its init (PID {record.init}) is gone", hint="hybridctl lab up")
        return hosts.enter_argv(record)
    if not (netns.NETNS_DIR / host).exists() or not host.startswith(PREFIX):
        from hybridctl_lab.inventory import host_names

        known = ", ".join(sorted(host_names(build_topology(0))))
        raise RemoteError(
            asked,
            "no such lab host or namespace",
            hint=f"is the lab up? (hybridctl lab status); a namespace (hl-...) or one of {known}",
        )
    return ["ip", "netns", "exec", host]


def exec_in(
    host: str,
    command: Sequence[str] | str,
    *,
    lab_dir: Path | str | None = None,
    input: str | None = None,
    timeout: float | None = 60.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` inside lab ``host``; a string runs through ``sh -c``.

    Raises :class:`RemoteError` when ``check`` and the command fails.
    """
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    label = f"{host}: {command if isinstance(command, str) else shlex.join(command)}"
    return netns.run(exec_argv(host, lab_dir=lab_dir) + argv, input=input, timeout=timeout, check=check, label=label)
