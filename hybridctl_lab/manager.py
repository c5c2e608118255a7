"""``hybridctl lab``: the whole lab, data plane + lab daemon + inventory, up and down.

``up`` (idempotent: it tears down whatever an earlier lab left first):

1. checks the machine (Linux, root, programs, Python packages);
2. writes the cloud credential files (``LAB_DIR/aws/credentials``, ``LAB_DIR/azure/client_secret``);
3. starts the lab daemon detached (own session; PID in ``LAB_DIR/pids/daemon.pid``; log in
   ``LAB_DIR/daemon.log``): it imports and starts the emulators and seeds the clouds while
4. the data plane comes up (:func:`hybridctl_lab.dataplane.up`);
5. waits until the daemon says it is ready and both health endpoints answer, and until the
   reconciler has applied the clouds' state to the fabric;
6. writes ``LAB_DIR/lab.yaml`` (:mod:`hybridctl_lab.inventory`).

``down`` kills the daemon by PID (start time checked), then the data plane, then removes the
files that describe the running lab. Everything here raises :mod:`hybridctl.core.errors`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hybridctl
from hybridctl.backends.base import NoProgress, Progress
from hybridctl.core.errors import PreconditionError, RemoteError
from hybridctl_lab import PYTHON_MODULES, dataplane, hosts, netns, reconciler, seed
from hybridctl_lab import inventory as lab_inventory
from hybridctl_lab.daemon import DEFAULT_HOST, LOG_FILE, PID_FILE, STATE_FILE, DaemonInfo, default_ports
from hybridctl_lab.hosts import LabPaths, PidRecord
from hybridctl_lab.topology import Topology

LAB_TOOLS = (*dataplane.REQUIRED_TOOLS, "ping")
APT_PACKAGES = (
    "iproute2 nftables openssh-server openssh-client netcat-openbsd util-linux iputils-ping "
    "softether-vpnserver softether-vpnbridge softether-vpncmd"
)
DAEMON_MODULE = "hybridctl_lab.daemon"
# Files that describe a running lab; `down` removes them (credentials and the client key stay).
RUN_FILES = (STATE_FILE, reconciler.STATUS_FILE, lab_inventory.INVENTORY_FILE, "azure/state.json", "azure/azure.env")


def lab_paths(lab_dir: Path | str | None = None) -> LabPaths:
    return LabPaths(hosts.lab_dir(lab_dir))


def require_lab_machine() -> None:
    """Raise :class:`PreconditionError` naming what is missing to run the lab here."""
    if not sys.platform.startswith("linux"):
        raise PreconditionError(f"the lab runs on Linux only (network namespaces); this is {sys.platform}")
    if os.geteuid() != 0:
        raise PreconditionError("the lab needs root (network and mount namespaces): run it with sudo")
    missing = [t for t in LAB_TOOLS if shutil.which(t) is None]
    if missing:
        raise PreconditionError(
            f"missing programs for the lab: {', '.join(missing)} (Debian: apt-get install {APT_PACKAGES})"
        )
    modules = [m for m in PYTHON_MODULES if importlib.util.find_spec(m) is None]
    if modules:
        raise PreconditionError(
            f"missing Python packages for the lab: {', '.join(modules)} (pip install 'hybridctl[lab]')"
        )


# --------------------------------------------------------------------------- the daemon process


def _daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    # The daemon runs from / (it must not hold the caller's directory); keep the package importable
    # even when hybridctl runs from a source tree without being installed.
    package_root = str(Path(hybridctl.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


def start_daemon(paths: LabPaths, aws_port: int, azure_port: int, extra_sites: int = 0) -> int:
    """Start the lab daemon detached; record its PID (with start time) in LAB_DIR/pids/daemon.pid."""
    paths.pids.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        DAEMON_MODULE,
        "--lab-dir",
        str(paths.root),
        "--aws-port",
        str(aws_port),
        "--azure-port",
        str(azure_port),
        "--extra-sites",
        str(extra_sites),
    ]
    with open(paths.root / LOG_FILE, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C at the terminal that ran `lab up` must not reach it
            cwd="/",
            env=_daemon_env(),
        )
    record = PidRecord(proc.pid, netns.proc_starttime(proc.pid), None)
    (paths.pids / PID_FILE).write_text(record.render())
    return proc.pid


def _log_tail(paths: LabPaths, lines: int = 15) -> str:
    try:
        text = (paths.root / LOG_FILE).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:])


def _running(pid: int, starttime: int | None = None) -> bool:
    started = netns.proc_starttime(pid)
    if started is None or (starttime is not None and started != starttime):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _is_our_daemon(pid: int, paths: LabPaths) -> bool:
    """The PID runs the lab daemon for this lab directory (checked before trusting daemon.json)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [c.decode(errors="replace") for c in cmd]
    return DAEMON_MODULE in args and str(paths.root) in args


def daemon_record(paths: LabPaths) -> PidRecord | None:
    try:
        return PidRecord.parse((paths.pids / PID_FILE).read_text())
    except (FileNotFoundError, ValueError, KeyError):
        return None


def stop_daemon(paths: LabPaths) -> list[int]:
    """Kill the lab daemon by PID (recorded start time checked); return the PIDs signalled."""
    targets: dict[int, int | None] = {}
    record = daemon_record(paths)
    if record is not None:
        targets[record.pid] = record.starttime
    info = DaemonInfo.read(paths.root)
    if info is not None and info.pid not in targets and _is_our_daemon(info.pid, paths):
        targets[info.pid] = None  # the PID file was lost, but daemon.json names it and /proc confirms
    killed = netns.kill_pids(targets) if targets else []
    (paths.pids / PID_FILE).unlink(missing_ok=True)
    return killed


def check_ports(host: str, ports: dict[str, int]) -> None:
    """Fail early, with the way out, when an emulator's port is taken (e.g. another lab's daemon)."""
    for what, port in ports.items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise PreconditionError(
                    f"port {port} for the {what} is in use ({exc.strerror}): another lab's daemon? "
                    "Stop it with `hybridctl lab down --lab-dir <its dir>`, or pick another port "
                    "(--aws-port / --azure-port, HYBRIDCTL_LAB_AWS_PORT / HYBRIDCTL_LAB_AZURE_PORT)"
                ) from None


def _https_context(ca_bundle: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_bundle))


def health(url: str, *, ca_bundle: Path | None = None, timeout: float = 2.0) -> bool:
    """GET ``url/_emulator/health`` answers 200 (both emulators have this admin endpoint)."""
    if not url:
        return False
    try:
        context = _https_context(ca_bundle) if url.startswith("https") and ca_bundle else None
        with urllib.request.urlopen(f"{url}/_emulator/health", timeout=timeout, context=context) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
        return False


def wait_daemon(paths: LabPaths, pid: int, timeout: float = 60.0) -> DaemonInfo:
    """Wait until the daemon wrote ``ready`` and both emulators answer their health endpoint."""
    deadline = time.monotonic() + timeout
    ca = paths.root / seed.AZURE_CA_BUNDLE
    while True:
        if not _running(pid):
            raise RemoteError("lab daemon", f"exited during start; {LOG_FILE}:\n{_log_tail(paths)}")
        info = DaemonInfo.read(paths.root)
        if info is not None and info.pid == pid:
            if info.error:
                raise RemoteError("lab daemon", info.error, hint=f"see {paths.root / LOG_FILE}")
            if info.ready and health(info.aws_url) and health(info.azure_url, ca_bundle=ca):
                return info
        if time.monotonic() > deadline:
            raise RemoteError("lab daemon", f"not ready after {timeout:.0f}s; {LOG_FILE}:\n{_log_tail(paths)}")
        time.sleep(0.05)


def kick_reconciler(paths: LabPaths) -> None:
    """Ask the daemon for a reconcile pass now (SIGUSR1 through a pidfd; start time checked)."""
    record = daemon_record(paths)
    if record is None or not _running(record.pid, record.starttime):
        return
    try:
        fd = os.pidfd_open(record.pid)
    except OSError:
        return
    try:
        signal.pidfd_send_signal(fd, signal.SIGUSR1)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def wait_reconciled(
    after: float | None = None, *, timeout: float = 10.0, kick: bool = True, lab_dir: Path | str | None = None
) -> dict[str, Any]:
    """Wait until the reconciler applied cloud state read after ``after`` (a ``time.time()``, default now).

    Call it once an API call has *returned*: the fabric then reflects that call. With ``kick``
    (default) the daemon is asked for a pass at once, so this returns within tens of ms
    instead of waiting for the next change or safety poll. Returns LAB_DIR/reconciler.json.
    """
    paths = lab_paths(lab_dir)
    after = time.time() if after is None else after
    if kick:
        kick_reconciler(paths)
    deadline = time.monotonic() + timeout
    while True:
        status = reconciler.read_status(paths.root)
        if status is not None and (status.get("last_ok_snapshot_at") or 0) > after:
            return status
        if time.monotonic() > deadline:
            last = (status or {}).get("last") or {}
            raise RemoteError(
                "fabric reconciler",
                f"no successful pass after {timeout:.0f}s (last error: {last.get('error') or 'none'})",
                hint=f"see {paths.root / LOG_FILE}",
            )
        time.sleep(0.01)


# --------------------------------------------------------------------------- up / down


@dataclass(frozen=True)
class LabUpResult:
    lab_dir: Path
    inventory: Path
    ssh_config: Path
    topology: Topology
    daemon_pid: int
    aws_url: str
    azure_url: str
    timings: dict[str, float]  # phase -> seconds
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "lab_dir": str(self.lab_dir),
            "inventory": str(self.inventory),
            "ssh_config": str(self.ssh_config),
            "extra_clients": self.topology.extra_clients,
            "extra_sites": self.topology.extra_sites,
            "daemon_pid": self.daemon_pid,
            "aws_url": self.aws_url,
            "azure_url": self.azure_url,
            "timings": self.timings,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class LabDownResult:
    killed: list[int]
    namespaces: list[str]
    seconds: float


def up(
    *,
    extra_clients: int = 0,
    extra_sites: int = 0,
    lab_dir: Path | str | None = None,
    aws_port: int | None = None,
    azure_port: int | None = None,
    progress: Progress | None = None,
    timeout: float = 90.0,
) -> LabUpResult:
    """Bring the whole lab up from scratch (see the module docstring)."""
    require_lab_machine()
    say = progress or NoProgress()
    default_aws, default_azure = default_ports()
    aws_port = aws_port or default_aws
    azure_port = azure_port or default_azure
    paths = lab_paths(lab_dir)
    start = time.monotonic()
    timings: dict[str, float] = {}

    say.step("lab", f"cleaning up leftovers in {paths.root}")
    down(lab_dir=paths.root)
    timings["cleanup_s"] = time.monotonic() - start
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)
    seed.ensure_credentials(paths.root)
    check_ports(DEFAULT_HOST, {"AWS emulator": aws_port, "Azure emulator": azure_port})
    try:
        say.step("lab daemon", f"starting (AWS emulator :{aws_port}, Azure emulator :{azure_port})")
        pid = start_daemon(paths, aws_port, azure_port, extra_sites)
        t = time.monotonic()
        say.step(
            "data plane",
            f"building namespaces, links and hosts booting systemd ({extra_clients} extra clients, "
            f"{extra_sites} extra sites)",
        )
        dp = dataplane.up(extra_clients=extra_clients, extra_sites=extra_sites, lab_dir=paths.root)
        timings["dataplane_s"] = time.monotonic() - t
        dataplane_done = time.time()
        say.step("lab daemon", "waiting for the emulators and the seeded clouds")
        info = wait_daemon(paths, pid, timeout)
        timings["daemon_ready_s"] = time.monotonic() - t  # from its start, overlapping the data plane
        timings.update({f"daemon.{k}": v for k, v in info.timings.items()})  # measured inside the daemon
        wait_reconciled(dataplane_done, timeout=timeout, lab_dir=paths.root)
        timings["fabric_synced_s"] = time.monotonic() - t
        inventory = lab_inventory.write(
            paths.root / lab_inventory.INVENTORY_FILE, dp.topology, paths.root, aws_port=aws_port, azure_port=azure_port
        )
    except BaseException:
        down(lab_dir=paths.root)
        raise
    seconds = time.monotonic() - start
    timings["total_s"] = seconds
    say.step("lab", f"up in {seconds:.1f}s")
    return LabUpResult(
        paths.root, inventory, dp.ssh_config, dp.topology, pid, info.aws_url, info.azure_url, timings, seconds
    )


def down(*, lab_dir: Path | str | None = None) -> LabDownResult:
    """Tear the whole lab down (daemon, then data plane); succeeds when it is already down."""
    if os.geteuid() != 0:
        raise PreconditionError("the lab needs root (network and mount namespaces): run it with sudo")
    start = time.monotonic()
    paths = lab_paths(lab_dir)
    killed = stop_daemon(paths)
    dp = dataplane.down(lab_dir=paths.root)
    for name in RUN_FILES:
        (paths.root / name).unlink(missing_ok=True)
    return LabDownResult(sorted(set(killed + dp.killed)), dp.namespaces, time.monotonic() - start)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class LabStatus:
    lab_dir: Path
    dataplane: dataplane.DataplaneStatus
    daemon_pid: int | None
    daemon_running: bool
    daemon_ready: bool
    aws_url: str
    aws_healthy: bool
    azure_url: str
    azure_healthy: bool
    reconciler: dict[str, Any] | None
    inventory: Path | None

    @property
    def up(self) -> bool:
        return self.dataplane.up and self.daemon_running and self.aws_healthy and self.azure_healthy

    def as_dict(self) -> dict[str, Any]:
        return {
            "lab_dir": str(self.lab_dir),
            "up": self.up,
            "inventory": str(self.inventory) if self.inventory else None,
            "daemon": {"pid": self.daemon_pid, "running": self.daemon_running, "ready": self.daemon_ready},
            "emulators": {
                "aws": {"url": self.aws_url, "healthy": self.aws_healthy},
                "azure": {"url": self.azure_url, "healthy": self.azure_healthy},
            },
            "reconciler": self.reconciler,
            "dataplane": self.dataplane.as_dict(),
        }


def status(*, lab_dir: Path | str | None = None) -> LabStatus:
    paths = lab_paths(lab_dir)
    dp = dataplane.status(lab_dir=paths.root)
    record = daemon_record(paths)
    running = record is not None and _running(record.pid, record.starttime)
    info = DaemonInfo.read(paths.root)
    ready = bool(running and info is not None and record is not None and info.pid == record.pid and info.ready)
    aws_url = info.aws_url if info else ""
    azure_url = info.azure_url if info else ""
    inventory = paths.root / lab_inventory.INVENTORY_FILE
    return LabStatus(
        paths.root,
        dp,
        record.pid if record else None,
        running,
        ready,
        aws_url,
        running and health(aws_url),
        azure_url,
        running and health(azure_url, ca_bundle=paths.root / seed.AZURE_CA_BUNDLE),
        reconciler.read_status(paths.root) if running else None,
        inventory if inventory.exists() else None,
    )


# --------------------------------------------------------------------------- exec and pings


def exec_command(host: str, command: Sequence[str], *, lab_dir: Path | str | None = None) -> int:
    """Run ``command`` inside lab ``host`` with this process's stdin/stdout/stderr; its exit code."""
    argv = dataplane.exec_argv(host, lab_dir=lab_dir) + (list(command) or ["sh"])
    return subprocess.run(argv, check=False).returncode


@dataclass(frozen=True)
class PingResult:
    source: str  # namespace
    source_site: str
    target: str  # namespace
    target_site: str
    address: str
    ok: bool

    @property
    def cross_site(self) -> bool:
        return self.source_site != self.target_site

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_site": self.source_site,
            "target": self.target,
            "target_site": self.target_site,
            "address": self.address,
            "cross_site": self.cross_site,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class PingMatrix:
    results: list[PingResult] = field(default_factory=list)

    @property
    def cross_site(self) -> list[PingResult]:
        return [r for r in self.results if r.cross_site]

    def as_dict(self) -> dict[str, Any]:
        cross = self.cross_site
        same = [r for r in self.results if not r.cross_site]
        return {
            "results": [r.as_dict() for r in self.results],
            "cross_site": {"pairs": len(cross), "ok": sum(r.ok for r in cross)},
            "same_site": {"pairs": len(same), "ok": sum(r.ok for r in same)},
        }


def ping_matrix(*, lab_dir: Path | str | None = None, wait: int = 1) -> PingMatrix:
    """From each test host's namespace, one ping to every other test host's address (all at once)."""
    topo = dataplane.current_topology(lab_dir)
    probes = topo.test_hosts
    pairs = [(src, dst) for src in probes for dst in probes if src.name != dst.name]
    procs = [
        subprocess.Popen(
            [*dataplane.exec_argv(src.name, lab_dir=lab_dir), "ping", "-nq", "-c1", f"-W{wait}", str(dst.primary_ip)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for src, dst in pairs
    ]
    results = [
        PingResult(src.name, src.site, dst.name, dst.site, str(dst.primary_ip), proc.wait(timeout=wait + 20) == 0)
        for (src, dst), proc in zip(pairs, procs, strict=True)
    ]
    return PingMatrix(results)
