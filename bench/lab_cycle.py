"""Benchmark: one lab cycle, phase by phase (root, Linux; takes the machine-wide lab lock).

Phases per run:
- ``lab up`` total, and inside it: data plane, lab daemon ready (from its start; it imports
  and seeds while the data plane is built), seeding (AWS through boto3, Azure), fabric synced;
- API -> fabric: how long after a cloud API call the fabric reflects it, with no nudge
  (the reconciler is woken by the emulators' notifications): an AWS route through boto3,
  the ENI source/dest check, an Azure NIC's IP forwarding through azure-mgmt-network;
- ``hybridctl up --yes`` on the lab (cold: bare hosts; the clouds carry the API phase's changes,
  which the plan wants too), again (warm, nothing to do), then ``hybridctl check`` (must pass),
  then ``hybridctl routes diff`` (in sync), each as a command (wall time, Python start-up included);
- ``lab down``, and ``lab down`` again.

    python bench/lab_cycle.py [--runs 3] [--extra-clients 0] [--json] [--no-api] [--timings]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bytecode import byte_compile_checkout

from hybridctl_lab import dataplane, manager, reconciler, seed
from hybridctl_lab.daemon import free_port

LAB_DIR = Path("/var/lib/hybridctl-lab-bench")


# --------------------------------------------------------------------------- hybridctl on the lab


TIMINGS: list[str] = []  # `up` arguments added with --timings (its timeline goes to stderr)


def _hybridctl(lab: manager.LabUpResult, *args: str) -> float:
    """Wall seconds of ``hybridctl ARGS -i <lab.inventory>`` as a user runs it (a fresh process);
    raises if it fails. Its journal goes to a state directory of this lab's own."""
    env = dict(os.environ, HYBRIDCTL_STATE_DIR=str(LAB_DIR / "bench-state"))
    argv = [str(Path(sys.executable).parent / "hybridctl"), *args, "-i", str(lab.inventory)]
    t = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
    seconds = time.monotonic() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-1500:]}")
    if "--timings" in args:
        timeline = proc.stdout[proc.stdout.find("timeline (") :]  # the last table of the output
        print(f"== hybridctl {' '.join(args)}: {seconds:.2f} s\n{timeline}", file=sys.stderr)
    return seconds


def phase_hybridctl_up(lab: manager.LabUpResult) -> float | None:
    """Seconds for ``hybridctl up -i <lab.inventory> --yes`` on the bare lab (cold)."""
    shutil.rmtree(LAB_DIR / "bench-state", ignore_errors=True)  # the lab is new: so is its journal
    return _hybridctl(lab, "up", "--yes", *TIMINGS)


def phase_hybridctl_up_warm(lab: manager.LabUpResult) -> float | None:
    """Seconds for a second ``hybridctl up --yes`` (nothing to do)."""
    return _hybridctl(lab, "up", "--yes", *TIMINGS)


def phase_routes_diff(lab: manager.LabUpResult) -> float | None:
    """Seconds for ``hybridctl routes diff`` after ``up`` (in sync: exit 0)."""
    return _hybridctl(lab, "routes", "diff")


def phase_check(lab: manager.LabUpResult) -> float | None:
    """Seconds for ``hybridctl check -i <lab.inventory>`` after ``up`` (must pass)."""
    return _hybridctl(lab, "check")


# --------------------------------------------------------------------------- API -> fabric


def _clients(lab: manager.LabUpResult) -> tuple[Any, Any]:
    """boto3 EC2 and azure-mgmt-network clients, configured from the lab inventory's values."""
    import boto3
    import yaml
    from azure.identity import ClientSecretCredential
    from azure.mgmt.network import NetworkManagementClient

    inv = yaml.safe_load(lab.inventory.read_text())
    aws, az = inv["aws"], inv["azure"]
    ec2 = boto3.client(
        "ec2",
        endpoint_url=aws["endpoint_url"],
        region_name=aws["region"],
        aws_access_key_id=seed.AWS_ACCESS_KEY_ID,
        aws_secret_access_key=seed.AWS_SECRET_ACCESS_KEY,
    )
    secret = Path(az["client_secret"].removeprefix("file:")).read_text().strip()
    credential = ClientSecretCredential(
        az["tenant_id"], az["client_id"], secret, authority=az["authority"],
        disable_instance_discovery=True, connection_verify=az["ca_bundle"],
    )  # fmt: skip
    network = NetworkManagementClient(
        credential, az["subscription_id"], base_url=az["arm_endpoint"],
        credential_scopes=[f"{az['arm_endpoint']}/.default"], connection_verify=az["ca_bundle"],
        polling_interval=0.05,
    )  # fmt: skip
    return ec2, network


def _fabric_latency(action: Callable[[], None], timeout: float = 10.0) -> float:
    """Seconds from the start of ``action`` (an API call) until a reconcile pass that changed the
    kernel, started after the call began, has finished (no kick: notifications only)."""
    start = time.time()
    action()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = reconciler.read_status(LAB_DIR) or {}
        change = status.get("last_change") or {}
        if change.get("snapshot_at", 0) >= start:
            return float(change["snapshot_at"] + change["seconds"] - start)
        time.sleep(0.002)
    raise TimeoutError("the fabric did not follow the API call")


def api_to_fabric(lab: manager.LabUpResult) -> dict[str, float]:
    ec2, network = _clients(lab)
    rtb = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [seed.AWS_ROUTE_TABLE]}])["RouteTables"][0]
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": [seed.AWS_BRIDGE_ENI]}])[
        "NetworkInterfaces"
    ][0]["NetworkInterfaceId"]
    out = {
        "api_to_fabric_aws_route_s": _fabric_latency(
            lambda: ec2.create_route(
                RouteTableId=rtb["RouteTableId"], DestinationCidrBlock="192.168.30.0/24", NetworkInterfaceId=eni
            )
        ),
        "api_to_fabric_aws_source_dest_check_s": _fabric_latency(
            lambda: ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
        ),
    }
    nic = network.network_interfaces.get(seed.AZURE_RESOURCE_GROUP, seed.AZURE_BRIDGE_NIC)
    nic.enable_ip_forwarding = True

    def azure_forwarding() -> None:
        poller = network.network_interfaces.begin_create_or_update(
            seed.AZURE_RESOURCE_GROUP, seed.AZURE_BRIDGE_NIC, nic
        )
        poller.result()

    out["api_to_fabric_azure_ip_forwarding_s"] = _fabric_latency(azure_forwarding)
    return out


# --------------------------------------------------------------------------- one cycle


def one_cycle(extra_clients: int, api: bool = True) -> dict[str, float | None]:
    row: dict[str, float | None] = {}
    t = time.monotonic()
    lab = manager.up(extra_clients=extra_clients, lab_dir=LAB_DIR, aws_port=free_port(), azure_port=free_port())
    row["lab_up_s"] = time.monotonic() - t
    row["dataplane_s"] = lab.timings["dataplane_s"]
    row["daemon_ready_s"] = lab.timings["daemon_ready_s"]
    row["seed_aws_s"] = lab.timings.get("daemon.seed_aws_s")
    row["seed_azure_s"] = lab.timings.get("daemon.seed_azure_s")
    row["fabric_synced_s"] = lab.timings["fabric_synced_s"]
    try:
        if api:
            row.update(api_to_fabric(lab))
        row["hybridctl_up_s"] = phase_hybridctl_up(lab)
        row["hybridctl_up_warm_s"] = phase_hybridctl_up_warm(lab)
        row["routes_diff_s"] = phase_routes_diff(lab)
        row["check_s"] = phase_check(lab)
    finally:
        t = time.monotonic()
        manager.down(lab_dir=LAB_DIR)
        row["lab_down_s"] = time.monotonic() - t
        t = time.monotonic()
        manager.down(lab_dir=LAB_DIR)
        row["lab_down_again_s"] = time.monotonic() - t
    return row


def summarize(rows: list[dict[str, float | None]]) -> dict[str, dict[str, float] | None]:
    out: dict[str, dict[str, float] | None] = {}
    for key in rows[0]:
        values = [v for r in rows if (v := r.get(key)) is not None]
        out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--extra-clients", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-api", action="store_true", help="skip the API -> fabric phase (only hybridctl's)")
    parser.add_argument("--timings", action="store_true", help="print the timeline of each `up` to stderr")
    args = parser.parse_args()
    byte_compile_checkout()  # as an installed copy would run (bench/bytecode.py)
    if args.timings:
        TIMINGS.append("--timings")
    manager.require_lab_machine()
    with dataplane.lab_lock():
        rows = [one_cycle(args.extra_clients, not args.no_api) for _ in range(args.runs)]
    summary = summarize(rows)
    if args.json:
        print(json.dumps({"runs": rows, "summary": summary, "extra_clients": args.extra_clients}, indent=1))
        return
    print(f"lab cycle, {args.runs} runs, {args.extra_clients} extra clients (seconds)")
    print(f"{'phase':40} {'median':>8} {'min':>8} {'max':>8}")
    for key, stats in summary.items():
        if stats is None:
            print(f"{key:40} {'-':>8} {'-':>8} {'-':>8}   (hook not filled in)")
        else:
            print(f"{key:40} {stats['median']:8.3f} {stats['min']:8.3f} {stats['max']:8.3f}")


if __name__ == "__main__":
    main()
