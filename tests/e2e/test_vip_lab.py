"""Reference section 4 in the lab: a client reaches the VIP 20.0.0.100, `vip move` switches it to node2.

Two layouts. ``overlay``: runs on today's lab, in the overlay's VPC (Hybrid-VPC): client
hl-aws-br, nodes hl-aws-h20 / hl-aws-h21 (their ENIs by id). ``vip-vpc``: reference section 4
proper, needs the lab's VIP VPC (docs/vip.md, "The lab's VIP VPC"): site ``vip`` with fabric namespace
``hl-vip-fab`` for VPC 10.0.0.0/16, hosts ``hl-vip-c`` (10.0.10.10, Subnet-1a), ``hl-vip-n1``
(10.0.110.10, Subnet-2a) and ``hl-vip-n2`` (10.0.120.10, Subnet-2c), and the reconciler turning
the emulator's VPC ``VIP-VPC`` (built by :func:`hybridctl.vip.scenario.build`, here if the lab
has not) into that fabric's forwarding. Until the lab has it, this module skips.

What it shows: the client's probes are answered by node1, ``hybridctl vip move ha-vip --to
node2`` runs, then they are answered by node2; the outage window (last node1 answer -> first
node2 answer, 10 ms probes) is measured and reported, never asserted. And the collision check
fires once a second VPC routes the same VIP.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from hybridctl.lab import dataplane, manager
from hybridctl.lab.topology import build_topology
from hybridctl.vip import scenario
from tests.conftest import require_lab_prereqs

pytestmark = [pytest.mark.lab]

VIP_LAB_DIR = Path("/var/lib/hybridctl-lab-test-vip")
CLIENT, NODE1, NODE2 = "hl-vip-c", "hl-vip-n1", "hl-vip-n2"
OVERLAY_CLIENT, OVERLAY_NODE1, OVERLAY_NODE2 = "hl-aws-br", "hl-aws-h20", "hl-aws-h21"
VIP = scenario.VIP
PORT = 7100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _lab_has_vip_vpc() -> bool:
    names = {h.name for h in build_topology().hosts}
    return {CLIENT, NODE1, NODE2} <= names


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    require_lab_prereqs()
    with dataplane.lab_lock():
        result = manager.up(lab_dir=VIP_LAB_DIR, aws_port=free_port(), azure_port=free_port())
        try:
            yield result
        finally:
            manager.down(lab_dir=VIP_LAB_DIR)


@pytest.fixture(scope="module")
def ec2(lab: manager.LabUpResult) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=lab.aws_url,
        region_name="ap-northeast-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _responders(hosts: list[tuple[str, str]]) -> list[subprocess.Popen[bytes]]:
    """VIP/32 on each node's lo and a responder answering with the node's name."""
    started = []
    for host, name in hosts:
        dataplane.exec_in(host, f"ip addr replace {VIP}/32 dev lo", lab_dir=VIP_LAB_DIR)
        argv = dataplane.exec_argv(host, lab_dir=VIP_LAB_DIR)
        started.append(
            subprocess.Popen(
                [*argv, sys.executable, "-m", "hybridctl.vip.probe", "serve", "--name", name, "--port", str(PORT)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return started


def _stop(processes: list[subprocess.Popen[bytes]], hosts: list[str]) -> None:
    for process in processes:  # by PID, never by name
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    for host in hosts:
        dataplane.exec_in(host, f"ip addr del {VIP}/32 dev lo", lab_dir=VIP_LAB_DIR, check=False)


def _aws_doc(lab: manager.LabUpResult) -> dict[str, Any]:
    """The lab inventory's `aws` section: its emulator port and dummy credentials."""
    return dict(yaml.safe_load(lab.inventory.read_text())["aws"])


@pytest.fixture(scope="module")
def overlay(lab: manager.LabUpResult, ec2: Any) -> Iterator[tuple[Path, str]]:
    """The VIP in the overlay's VPC: nodes hl-aws-h20 / hl-aws-h21 by ENI id, client hl-aws-br."""
    enis = {}
    for host, name in ((OVERLAY_NODE1, "node1"), (OVERLAY_NODE2, "node2")):
        reservations = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [host.removeprefix("hl-")]}])[
            "Reservations"
        ]
        enis[name] = reservations[0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    doc = yaml.safe_load(lab.inventory.read_text())
    doc["aws"] = _aws_doc(lab)
    doc["vips"] = [
        {
            "name": "ha-vip",
            "address": VIP,
            "vpc": "Hybrid-VPC",
            "nodes": [{"name": n, "eni": e} for n, e in enis.items()],
        }
    ]
    inventory = VIP_LAB_DIR / "vip-overlay.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    processes = _responders([(OVERLAY_NODE1, "node1"), (OVERLAY_NODE2, "node2")])
    try:
        yield inventory, OVERLAY_CLIENT
    finally:
        _stop(processes, [OVERLAY_NODE1, OVERLAY_NODE2])


@pytest.fixture(scope="module")
def vip_vpc(lab: manager.LabUpResult, ec2: Any) -> Iterator[tuple[Path, str]]:
    """Reference section 4 proper: VIP-VPC 10.0.0.0/16 on its own fabric (built here unless seeded)."""
    if not _lab_has_vip_vpc():
        pytest.skip("the lab topology has no VIP VPC yet (hl-vip-c/-n1/-n2): see docs/vip.md")
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["VIP-VPC"]}])["Vpcs"]
    if not found:
        scenario.build(ec2)
    doc = yaml.safe_load((Path(__file__).parents[2] / "inventory" / "vip-lab.yaml").read_text())
    doc["aws"] = _aws_doc(lab)
    inventory = VIP_LAB_DIR / "vip-lab.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    processes = _responders([(NODE1, "node1"), (NODE2, "node2")])
    try:
        yield inventory, CLIENT
    finally:
        _stop(processes, [NODE1, NODE2])


def _probe(client: str, duration: float) -> subprocess.Popen[str]:
    argv = dataplane.exec_argv(client, lab_dir=VIP_LAB_DIR)
    command = ["-m", "hybridctl.vip.probe", "probe", VIP, "--port", str(PORT), "--duration", str(duration)]
    return subprocess.Popen([*argv, sys.executable, *command], stdout=subprocess.PIPE, text=True)


def _answers(client: str, duration: float) -> dict[str, Any]:
    out, _ = _probe(client, duration).communicate(timeout=duration + 30)
    return dict(json.loads(out))


def _hybridctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hybridctl.cli", *args], capture_output=True, text=True, timeout=120)


def _wait_for(client: str, node: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        summary = _answers(client, 1.0)
        if summary["nodes"][-1:] == [node] or time.monotonic() > deadline:
            return summary
        time.sleep(0.2)


def _failover(layout: str, inventory: Path, client: str, record_property: Any, capsys: Any) -> None:
    ensure = _hybridctl("vip", "ensure", "-i", str(inventory), "--to", "node1", "-o", "json")
    assert ensure.returncode == 0, ensure.stdout + ensure.stderr
    assert _wait_for(client, "node1")["nodes"] == ["node1"]
    ping = dataplane.exec_in(client, f"ping -c 3 -i 0.2 -W 1 {VIP}", lab_dir=VIP_LAB_DIR, check=False)
    assert ping.returncode == 0, ping.stdout

    prober = _probe(client, 10.0)
    time.sleep(2.0)
    started = time.monotonic()
    moved = _hybridctl("vip", "move", "ha-vip", "--to", "node2", "-i", str(inventory), "-o", "json")
    move_seconds = time.monotonic() - started
    out, _ = prober.communicate(timeout=60)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    summary = json.loads(out)
    assert summary["nodes"] == ["node1", "node2"], summary["counts"]
    window = summary["windows"]["node1->node2"]
    assert window is not None
    ping = dataplane.exec_in(client, f"ping -c 3 -i 0.2 -W 1 {VIP}", lab_dir=VIP_LAB_DIR, check=False)
    assert ping.returncode == 0, ping.stdout
    assert _answers(client, 1.0)["nodes"] == ["node2"]
    report = {
        "layout": layout,
        "outage_window_s": window,
        "lost_probes": summary["lost"],
        "probes_sent": summary["sent"],
        "move_command_s": round(move_seconds, 3),
        "move": json.loads(moved.stdout),
    }
    (VIP_LAB_DIR / f"vip-failover-{layout}.json").write_text(json.dumps(report, indent=1))
    record_property(f"outage_window_s_{layout}", window)
    with capsys.disabled():
        print(
            f"\nVIP failover in the lab ({layout}): outage window {window:.3f}s "
            f"({summary['lost']} of {summary['sent']} probes lost), `vip move` took {move_seconds:.3f}s"
        )


def test_failover_in_the_overlay_vpc(overlay: tuple[Path, str], record_property: Any, capsys: Any) -> None:
    _failover("overlay", *overlay, record_property, capsys)


def test_failover_in_the_vip_vpc(vip_vpc: tuple[Path, str], record_property: Any, capsys: Any) -> None:
    _failover("vip-vpc", *vip_vpc, record_property, capsys)


def test_collision_with_a_second_vpc_is_refused(overlay: tuple[Path, str], ec2: Any) -> None:
    inventory, client = overlay
    holder = _answers(client, 1.0)["nodes"]
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=other, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    table = ec2.create_route_table(VpcId=other)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock=f"{VIP}/32", NetworkInterfaceId=eni)
    try:
        target = "node1" if holder == ["node2"] else "node2"
        refused = _hybridctl("vip", "move", "ha-vip", "--to", target, "-i", str(inventory))
        assert refused.returncode == 1
        assert "collision" in refused.stderr and table in refused.stderr
        assert _answers(client, 1.0)["nodes"] == holder  # nothing moved
    finally:
        ec2.delete_route(RouteTableId=table, DestinationCidrBlock=f"{VIP}/32")
