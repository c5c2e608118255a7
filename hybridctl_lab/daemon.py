"""The lab daemon: both cloud emulators and the fabric reconciler in one process.

``python -m hybridctl_lab.daemon --lab-dir D`` (``hybridctl lab up`` starts it detached,
in its own session, logging to ``LAB_DIR/daemon.log``):

1. AWS emulator (moto + extensions) on 127.0.0.1:5511, HTTP;
2. Azure emulator on 127.0.0.1:5512, HTTPS, state and TLS under ``LAB_DIR/azure``, with the
   lab's pinned subscription / tenant / client ids and the client secret read from
   ``LAB_DIR/azure/client_secret`` (never from argv);
3. unless ``--no-seed``: both clouds reset and seeded bare (:mod:`hybridctl_lab.seed`), AWS
   through boto3 against its own endpoint, with reference section 4's ``VIP-VPC`` next to
   the overlay's VPC;
4. the reconciler thread, subscribed to both emulators;
5. ``LAB_DIR/daemon.json`` says ``ready`` with the endpoints and the start-up timings.

SIGTERM / SIGINT stop it cleanly; SIGUSR1 makes the reconciler run a pass at once
(``lab up`` sends it when the data plane is ready). Ports: ``--aws-port`` / ``--azure-port``
or ``HYBRIDCTL_LAB_AWS_PORT`` / ``HYBRIDCTL_LAB_AZURE_PORT``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from hybridctl.core.errors import HybridctlError
from hybridctl_lab import hosts, reconciler, seed
from hybridctl_lab.seed_costs import seed_costs
from hybridctl_lab.topology import build_topology

log = logging.getLogger("hybridctl_lab.daemon")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_AWS_PORT = 5511
DEFAULT_AZURE_PORT = 5512
AWS_PORT_ENV = "HYBRIDCTL_LAB_AWS_PORT"
AZURE_PORT_ENV = "HYBRIDCTL_LAB_AZURE_PORT"
STATE_FILE = "daemon.json"
LOG_FILE = "daemon.log"
PID_FILE = "daemon.pid"  # under LAB_DIR/pids/, written by whoever starts the daemon


def env_port(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else default


def default_ports() -> tuple[int, int]:
    """(AWS, Azure) ports: the environment, else 5511 / 5512 (what inventory/lab.yaml uses)."""
    return env_port(AWS_PORT_ENV, DEFAULT_AWS_PORT), env_port(AZURE_PORT_ENV, DEFAULT_AZURE_PORT)


def free_port() -> int:
    """A loopback TCP port free right now: for a second lab (tests, benchmarks) beside the default one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class DaemonInfo:
    """What LAB_DIR/daemon.json holds."""

    pid: int
    ready: bool
    aws_url: str
    azure_url: str
    region: str
    timings: dict[str, float]
    error: str | None = None

    @staticmethod
    def read(lab_dir: Path) -> DaemonInfo | None:
        try:
            data = json.loads((lab_dir / STATE_FILE).read_text())
            return DaemonInfo(
                int(data["pid"]),
                bool(data["ready"]),
                str(data.get("aws_url", "")),
                str(data.get("azure_url", "")),
                str(data.get("region", seed.AWS_REGION)),
                {str(k): float(v) for k, v in (data.get("timings") or {}).items()},
                data.get("error"),
            )
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None


def _write_info(lab_dir: Path, info: dict[str, Any]) -> None:
    path = lab_dir / STATE_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, path)


def data_plane_ready(lab_dir: Path, namespaces: Sequence[str]) -> bool:
    """This lab's data plane is up: its dataplane.json exists (written last by dataplane.up,
    after its own bare fabric apply), the fabric namespaces exist, and they are the ones that
    data plane built (a recorded host still lives in its namespace). The last check
    keeps a daemon from steering the fabric of another LAB_DIR's lab (a test's, say) that
    replaced its namespaces."""
    try:
        state = json.loads((lab_dir / "dataplane.json").read_text())
    except (FileNotFoundError, ValueError):
        return False
    if not all(os.path.exists(f"/run/netns/{ns}") for ns in namespaces):
        return False
    pids = state.get("host_pids") if isinstance(state, dict) else None
    if not isinstance(pids, dict) or not pids:
        return False
    host, pid = next(iter(pids.items()))  # one witness is enough: namespaces go as a whole
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{host}").st_ino
    except OSError:
        return False


def run(
    lab_dir: Path,
    *,
    host: str = DEFAULT_HOST,
    aws_port: int = DEFAULT_AWS_PORT,
    azure_port: int = DEFAULT_AZURE_PORT,
    region: str = seed.AWS_REGION,
    do_seed: bool = True,
    extra_sites: int = 0,
    reconcile: bool = True,
    poll_interval: float = 2.0,
    stop: threading.Event | None = None,
    graceful: bool = True,
) -> int:
    """Serve until ``stop`` is set (or a signal arrives when run as the main program)."""
    # moto builds 1,235 sample AMIs per region on first use (0.8 s of start-up); nothing in
    # hybridctl or the lab describes images, and instances accept any AMI id (no validation).
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    import boto3

    from hybridctl_lab.aws_emulator import AwsEmulator, fabric_view
    from hybridctl_lab.azure_emulator import AzureEmulator

    stop = stop or threading.Event()
    kick: list[reconciler.Reconciler] = []  # filled once the reconciler exists
    if threading.current_thread() is threading.main_thread():
        # Before anything slow: SIGUSR1's default action would kill the process.
        _install_signals(stop, kick)
    timings: dict[str, float] = {}
    info: dict[str, Any] = {"pid": os.getpid(), "ready": False, "region": region, "timings": timings}
    _write_info(lab_dir, info)
    t0 = time.monotonic()
    creds = seed.ensure_credentials(lab_dir)
    aws = AwsEmulator(host, aws_port)
    azure = AzureEmulator(
        lab_dir / seed.AZURE_DIR,
        host,
        azure_port,
        subscription_id=seed.AZURE_SUBSCRIPTION_ID,
        tenant_id=seed.AZURE_TENANT_ID,
        client_id=seed.AZURE_CLIENT_ID,
        client_secret=creds.read_azure_secret(),
    )
    rec: reconciler.Reconciler | None = None
    try:
        aws.start()
        azure.start()
        timings["emulators_s"] = time.monotonic() - t0
        info.update(aws_url=aws.endpoint_url, azure_url=azure.base_url)
        log.info("AWS emulator on %s, Azure emulator on %s", aws.endpoint_url, azure.base_url)
        # The clouds do not depend on the number of LAN clients; extra sites are VPCs of their own.
        topology = build_topology(0, extra_sites)
        if do_seed:
            t = time.monotonic()
            aws.reset()
            azure.reset()
            session = boto3.Session(
                aws_access_key_id=seed.AWS_ACCESS_KEY_ID,
                aws_secret_access_key=seed.AWS_SECRET_ACCESS_KEY,
                region_name=region,
            )
            ec2 = session.client("ec2", endpoint_url=aws.endpoint_url)
            aws_ids = seed.seed_aws(ec2, topology)
            timings["seed_aws_s"] = time.monotonic() - t
            if extra_sites:
                t = time.monotonic()
                seed.seed_extra_sites(ec2, topology)
                timings["seed_extra_sites_s"] = time.monotonic() - t
            t = time.monotonic()
            # Reference section 4's VPC, next to the overlay's (serial: in a second thread it
            # only competes for the GIL and the emulator, measured slower).
            seed.seed_vip(ec2, session.client("iam", endpoint_url=aws.endpoint_url), topology)
            timings["seed_vip_s"] = time.monotonic() - t
            t = time.monotonic()
            seed.seed_azure(azure, topology)
            # A few forgotten resources and some weeks of spend for `hybridctl cost` / `leaks`.
            seed_costs(ec2, aws, azure, aws_ids)
            timings["seed_azure_s"] = time.monotonic() - t
            aws.reset_call_counts()  # counters start at zero for what hybridctl does
            azure.requests.reset()
            log.info(
                "clouds seeded in %.2f s",
                timings["seed_aws_s"] + timings["seed_vip_s"] + timings["seed_azure_s"],
            )
        if reconcile:
            fabrics = [s.fabric_ns for s in topology.cloud_sites if s.fabric_ns]
            rec = reconciler.Reconciler(
                topology,
                read_aws=lambda: fabric_view(region),
                read_azure=lambda: reconciler.AzureSnapshot.from_store(azure.store),
                ready=lambda: data_plane_ready(lab_dir, fabrics),
                status_file=lab_dir / reconciler.STATUS_FILE,
                poll_interval=poll_interval,
            )
            aws.subscribe(rec.on_aws_event)
            azure.store.subscribe(rec.on_azure_changes)
            rec.start()
            kick.append(rec)
        timings["ready_s"] = time.monotonic() - t0
        info["ready"] = True
        _write_info(lab_dir, info)
        log.info("ready in %.2f s", timings["ready_s"])

        while not stop.wait(1.0):
            pass
        log.info("stopping")
        return 0
    except HybridctlError as exc:
        log.error("%s", exc)
        info["error"] = str(exc)
        _write_info(lab_dir, info)
        return 1
    finally:
        if rec is not None:
            rec.stop()  # no fabric change is cut half-way
        if graceful:
            aws.stop()
            azure.stop()
        # Otherwise the process exits right away: the Azure state is on disk after every
        # commit and the AWS state is in memory by design, so there is nothing to flush
        # (werkzeug's shutdown alone would add half a second to every `lab down`).


def _install_signals(stop: threading.Event, kick: list[reconciler.Reconciler]) -> None:
    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_kick(signum: int, frame: FrameType | None) -> None:
        for rec in kick:
            rec.notify()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_kick)


def main(argv: Sequence[str] | None = None) -> int:
    aws_default, azure_default = default_ports()
    parser = argparse.ArgumentParser(prog="python -m hybridctl_lab.daemon", description=__doc__.split("\n")[0])
    parser.add_argument("--lab-dir", type=Path, default=None, help="lab directory (default $HYBRIDCTL_LAB_DIR)")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--aws-port", type=int, default=aws_default)
    parser.add_argument("--azure-port", type=int, default=azure_default)
    parser.add_argument("--region", default=seed.AWS_REGION)
    parser.add_argument("--no-seed", action="store_true", help="keep the clouds as they are (Azure state persists)")
    parser.add_argument("--extra-sites", type=int, default=0, help="extra AWS sites s1.. to seed and reconcile")
    parser.add_argument("--no-reconciler", action="store_true", help="emulators only")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="reconciler safety poll, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # werkzeug/azure-core would log every request; the lab keeps the log for what matters.
    for noisy in ("werkzeug", "azure", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    lab_dir = hosts.lab_dir(args.lab_dir)
    lab_dir.mkdir(parents=True, exist_ok=True)
    return run(
        lab_dir,
        host=args.host,
        aws_port=args.aws_port,
        azure_port=args.azure_port,
        region=args.region,
        do_seed=not args.no_seed,
        extra_sites=args.extra_sites,
        reconcile=not args.no_reconciler,
        poll_interval=args.poll_interval,
        graceful=False,
    )


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    os._exit(code)  # server threads need no orderly shutdown (see run(graceful=False))
