"""Benchmark: ClusterLabs' aws-vpc-move-ip and ``hybridctl vip agent`` moving the same VIP in the lab.

Both OCF agents run ``start`` on the lab's VIP node ``hl-vip-n2`` (reference section 4,
``VIP-VPC``), taking the VIP 20.0.0.100 over from node1 in 1, 10 or 50 route tables (Main,
Route-A, Route-C, then unassociated tables Route-X000...; the tables not in play hold no VIP
route), with the same injected API latency, in one run:

- ``aws-vpc-move-ip``: Debian's resource-agents 4.12 script itself, unmodified. It calls
  the AWS CLI once per table and action (``awscli`` 1.x from PyPI, bench extra); the emulator is
  reached through the AWS CLI's own configuration: ``profile=lab`` in an ``AWS_CONFIG_FILE``
  whose ``[profile lab]`` has ``endpoint_url``. ``routing_table`` = the comma-separated table
  ids, ``interface=eth0``, ``lookup_type=NetworkInterfaceId`` (it finds this node's ENI from
  eth0's MAC through the instance metadata service: a small one answers at 169.254.169.254
  inside the node, for this node only). It also manages the address: after the last route
  write it adds ``VIP/32`` to eth0, so the node answers only from then on.
- ``hybridctl``: ``hybridctl vip agent start`` through the wrapper ``hybridctl vip install-agent``
  writes, inventory ``vip-lab.yaml`` with ``route_tables`` = the tables in play; it adds
  ``VIP/32`` to lo after its writes and read-back.

Every API call of both goes through bench/vip_failover.py's ``LatencyProxy`` (``--latency``,
default 0.1 s per call), listening on the node's loopback (hybridctl_lab/nsrelay.py), in front
of the lab's AWS emulator. Node1 holds the VIP and answers until the routes leave it; node2
holds it only once its agent adds it, as in a cluster where the standby does not own it.

Measured per (agent, tables): ``start`` = the start action's wall time (what the cluster
waits for); ``failover`` = start invoked -> every table points at node2 (read from the
emulator directly, every 20 ms); ``first write`` = start -> the first table points at node2;
``outage`` = the client's view: UDP probes every 10 ms from ``hl-vip-c`` (Subnet-1a, table
Main), last node1 answer -> first node2 answer (hybridctl_lab/vip_probe.py), and ``lost`` probes.
``--warmup`` rounds of both agents run untimed first, as on a node whose agent has run before
(the cluster's monitor runs it every few seconds): the first Python start-up reads everything
from disk.

    python bench/vip_agents.py [--tables 1 10 50] [--latency 0.1] [--repeat 1] [--warmup 1] [--json]

Root, the lab's packages, ``resource-agents`` (apt) and ``pip install -c constraints.txt -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import yaml
from background_http import BackgroundServer
from vip_failover import LatencyProxy

from hybridctl.backends.aws_lookup import name_of
from hybridctl_lab import dataplane, manager, nsrelay
from hybridctl_lab import vip_probe as probe
from hybridctl_lab import vip_scenario as scenario
from hybridctl_lab.daemon import free_port

LAB_DIR = Path("/var/lib/hybridctl-lab-bench-vip")
CLIENT, NODE1, NODE2 = "hl-vip-c", "hl-vip-n1", "hl-vip-n2"
MOVE_IP = Path("/usr/lib/ocf/resource.d/heartbeat/aws-vpc-move-ip")
NODE_DIR = "/run/hybridctl-bench"
WRAPPER = f"{NODE_DIR}/resource.d/hybridctl/vip"
REGION = "ap-northeast-1"
VIP = scenario.VIP
PORT = 7100
REPO = Path(__file__).resolve().parents[1]
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class Imds(BackgroundServer):
    """Instance metadata (IMDSv2 token, instance-id, the ENI of a MAC) for one instance."""

    def __init__(self, sock: Any, instance_id: str, enis_by_mac: dict[str, str]) -> None:
        answers = {
            "/latest/meta-data/instance-id": instance_id,
            **{f"/latest/meta-data/network/interfaces/macs/{m}/interface-id": e for m, e in enis_by_mac.items()},
        }

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if self.path == "/latest/api/token":
                    self._send(200, "bench-imds-token")
                else:
                    self._send(404, "")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != "bench-imds-token":
                    self._send(401, "")
                elif self.path in answers:
                    self._send(200, answers[self.path])
                else:
                    self._send(404, "")

        super().__init__(Handler, sock)

    def __enter__(self) -> Imds:
        super().__enter__()
        return self


def _in(host: str, command: list[str] | str, input: str | None = None, check: bool = True) -> Any:
    return dataplane.exec_in(host, command, lab_dir=LAB_DIR, input=input, check=check, timeout=600)


class Bench:
    def __init__(self, lab: manager.LabUpResult, args: argparse.Namespace) -> None:
        self.lab = lab
        self.args = args
        self.ec2 = boto3.client(
            "ec2",
            endpoint_url=lab.aws_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ec2 = self.ec2
        self.vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["VIP-VPC"]}])["Vpcs"][0]["VpcId"]
        tables = {
            name_of(t) or "": t["RouteTableId"]
            for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [self.vpc]}])["RouteTables"]
        }
        self.order = ["Main", "Route-A", "Route-C"]
        for i in range(max(0, max(args.tables) - 3)):
            name = f"Route-X{i:03d}"
            tables[name] = ec2.create_route_table(
                VpcId=self.vpc,
                TagSpecifications=[{"ResourceType": "route-table", "Tags": [{"Key": "Name", "Value": name}]}],
            )["RouteTable"]["RouteTableId"]
            self.order.append(name)
        self.tables = tables
        enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [self.vpc]}])["NetworkInterfaces"]
        self.eni = {name_of(e) or "": e["NetworkInterfaceId"] for e in enis}
        reservations = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["node2"]}])["Reservations"]
        self.instance2 = reservations[0]["Instances"][0]["InstanceId"]
        self.ns = {host: nsrelay.host_netns(host, lab_dir=LAB_DIR) for host in (CLIENT, NODE2)}
        aws = Path(sys.executable).parent / "aws"
        self.awscli = str(aws) if aws.exists() else shutil.which("aws") or ""

    # -- the two agents' environments ------------------------------------------------------------

    def move_ip_env(self, names: list[str]) -> dict[str, str]:
        return {
            "PATH": PATH,
            "OCF_ROOT": "/usr/lib/ocf",
            "OCF_RESOURCE_INSTANCE": "ha-vip",
            "OCF_RESKEY_ip": VIP,
            "OCF_RESKEY_routing_table": ",".join(self.tables[n] for n in names),
            "OCF_RESKEY_interface": "eth0",
            "OCF_RESKEY_lookup_type": "NetworkInterfaceId",
            "OCF_RESKEY_profile": "lab",
            "OCF_RESKEY_region": REGION,
            "OCF_RESKEY_awscli": self.awscli,
            "AWS_CONFIG_FILE": f"{NODE_DIR}/aws/config",
            "AWS_SHARED_CREDENTIALS_FILE": f"{NODE_DIR}/aws/credentials",
        }

    def hybridctl_env(self, names: list[str]) -> dict[str, str]:
        return {
            "PATH": PATH,
            "OCF_RESOURCE_INSTANCE": "ha-vip",
            "OCF_RESKEY_inventory": f"{NODE_DIR}/inventory-{len(names)}.yaml",
            "OCF_RESKEY_vip": "ha-vip",
            "OCF_RESKEY_node": "node2",
            "OCF_RESKEY_state_dir": f"{NODE_DIR}/state",
        }

    def setup_node(self, proxy_url: str) -> None:
        credentials = "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        credentials += credentials.replace("[default]", "[lab]")
        config = f"[profile lab]\nregion = {REGION}\nendpoint_url = {proxy_url}\noutput = text\n"
        _in(NODE2, f"mkdir -p {NODE_DIR}/aws && umask 077 && cat > {NODE_DIR}/aws/credentials", credentials)
        _in(NODE2, f"cat > {NODE_DIR}/aws/config", config)
        for tables in self.args.tables:
            doc = yaml.safe_load((REPO / "inventory" / "vip-lab.yaml").read_text())
            doc["aws"] = {
                "region": REGION,
                "endpoint_url": proxy_url,
                "credentials_file": f"{NODE_DIR}/aws/credentials",
            }
            doc["vips"][0]["route_tables"] = self.order[:tables]
            _in(NODE2, f"cat > {NODE_DIR}/inventory-{tables}.yaml", yaml.safe_dump(doc, sort_keys=False))
        hybridctl = str(Path(sys.executable).parent / "hybridctl")
        _in(NODE2, [hybridctl, "vip", "install-agent", "--dir", str(Path(WRAPPER).parent)])

    # -- one measurement ----------------------------------------------------------------------------

    def reset(self, tables: int) -> None:
        """The ``tables`` first tables route the VIP to node1, the others not at all; node2 holds nothing."""
        ec2, dest = self.ec2, f"{VIP}/32"
        for index, name in enumerate(self.order):
            table = self.tables[name]
            routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
            has = any(r.get("DestinationCidrBlock") == dest for r in routes)
            if index < tables:
                call = ec2.replace_route if has else ec2.create_route
                call(RouteTableId=table, DestinationCidrBlock=dest, NetworkInterfaceId=self.eni["node1-eni"])
            elif has:
                ec2.delete_route(RouteTableId=table, DestinationCidrBlock=dest)
        _in(NODE2, f"ip addr del {dest} dev lo; ip addr del {dest} dev eth0; rm -rf {NODE_DIR}/state", check=False)
        manager.wait_reconciled(lab_dir=LAB_DIR)
        deadline = time.monotonic() + 20
        while self.client_probe(1.0).nodes != ["node1"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the client does not reach node1 after the reset")

    def client_probe(self, duration: float, until: Callable[[probe.ProbeResult], bool] | None = None) -> Any:
        return nsrelay.run_in(
            self.ns[CLIENT], lambda: probe.probe(VIP, PORT, interval=0.01, duration=duration, until=until), "probe"
        )

    def pointing_at_node2(self) -> int:
        found = self.ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": [self.vpc]},
                {"Name": "route.destination-cidr-block", "Values": [f"{VIP}/32"]},
            ]
        )["RouteTables"]
        return sum(
            1
            for t in found
            for r in t["Routes"]
            if r.get("DestinationCidrBlock") == f"{VIP}/32" and r.get("NetworkInterfaceId") == self.eni["node2-eni"]
        )

    def measure(self, agent: str, tables: int) -> dict[str, Any]:
        names = self.order[:tables]
        if agent == "aws-vpc-move-ip":
            argv, env = [str(MOVE_IP)], self.move_ip_env(names)
        else:
            argv, env = [WRAPPER], self.hybridctl_env(names)
        self.reset(tables)
        stop = threading.Event()
        probed: list[probe.ProbeResult] = []
        prober = threading.Thread(
            target=lambda: probed.append(self.client_probe(3600.0, until=lambda _: stop.is_set())), daemon=True
        )
        prober.start()
        time.sleep(1.0)
        marks: dict[str, float] = {}
        watching = threading.Event()

        def watch() -> None:
            while not watching.is_set():
                count = self.pointing_at_node2()
                now = time.monotonic()
                if count and "first" not in marks:
                    marks["first"] = now
                if count == tables:
                    marks["all"] = now
                    return
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        host = dataplane.exec_argv(NODE2, lab_dir=LAB_DIR)
        started = time.monotonic()
        watcher.start()
        done = subprocess.run(
            [*host, "env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv, "start"],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        ended = time.monotonic()
        watcher.join(timeout=30)
        watching.set()
        time.sleep(1.0)
        stop.set()
        prober.join(timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"{agent} start exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        stopped = subprocess.run(
            [*host, "env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv, "stop"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if stopped.returncode != 0:
            raise RuntimeError(f"{agent} stop exited {stopped.returncode}:\n{stopped.stderr}")
        summary = probed[0].as_dict()
        window = probed[0].window("node1", "node2")
        if "all" not in marks or window is None:
            raise RuntimeError(f"{agent}, {tables} tables: not every table moved or node2 never answered {marks}")
        return {
            "start": ended - started,
            "failover": marks["all"] - started,
            "first_write": marks["first"] - started,
            "outage": window,
            "lost": summary["lost"],
        }


def run(lab: manager.LabUpResult, args: argparse.Namespace) -> list[dict[str, Any]]:
    bench = Bench(lab, args)
    port = urlsplit(lab.aws_url).port
    assert port is not None
    mac = _in(NODE2, "cat /sys/class/net/eth0/address").stdout.strip()
    _in(NODE2, "ip addr replace 169.254.169.254/32 dev lo")
    _in(NODE1, f"ip addr replace {VIP}/32 dev lo")
    responders = [
        subprocess.Popen(
            [
                *dataplane.exec_argv(h, lab_dir=LAB_DIR),
                sys.executable,
                "-m",
                "hybridctl_lab.vip_probe",
                "serve",
                "--name",
                n,
                "--port",
                str(PORT),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for h, n in ((NODE1, "node1"), (NODE2, "node2"))
    ]
    rows: list[dict[str, Any]] = []
    try:
        with (
            Imds(
                nsrelay.listen_in(bench.ns[NODE2], "169.254.169.254", 80),
                bench.instance2,
                {mac: bench.eni["node2-eni"]},
            ),
            LatencyProxy(port, args.latency, sock=nsrelay.listen_in(bench.ns[NODE2])) as proxy,
        ):
            bench.setup_node(proxy.url)
            for _ in range(args.warmup):  # untimed: a node whose agent has run before (its monitor does)
                for agent in ("hybridctl", "aws-vpc-move-ip"):
                    bench.measure(agent, min(args.tables))
            for tables in args.tables:
                for agent in ("hybridctl", "aws-vpc-move-ip"):
                    runs = [bench.measure(agent, tables) for _ in range(args.repeat)]
                    row: dict[str, Any] = {"agent": agent, "tables": tables}
                    row.update({k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]})
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        for process in responders:  # by PID
            process.terminate()
            process.wait(timeout=10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every API call")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1, help="untimed start/stop rounds of each agent first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("vip_agents.py: run as root (the lab)")
    if not MOVE_IP.exists():
        sys.exit(f"vip_agents.py: {MOVE_IP} missing (apt-get install resource-agents)")
    if not (Path(sys.executable).parent / "aws").exists() and shutil.which("aws") is None:
        sys.exit("vip_agents.py: the AWS CLI is missing (pip install -c constraints.txt -e '.[bench]')")
    with dataplane.lab_lock():
        lab = manager.up(lab_dir=LAB_DIR, aws_port=free_port(), azure_port=free_port())
        try:
            rows = run(lab, args)
        finally:
            manager.down(lab_dir=LAB_DIR)
    if args.json:
        print(
            json.dumps({"latency": args.latency, "repeat": args.repeat, "warmup": args.warmup, "rows": rows}, indent=2)
        )
        return
    print(f"latency per API call {args.latency}s, median of {args.repeat}")
    print("| tables | agent | start s | failover s | first write s | client outage s | lost probes |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['tables']} | {r['agent']} | {r['start']} | {r['failover']} | {r['first_write']} "
            f"| {r['outage']} | {r['lost']} |"
        )


if __name__ == "__main__":
    main()
