"""Reference section 4 in the lab: a client reaches the VIP 20.0.0.100, `vip move` switches it to node2.

Two layouts. ``vip-vpc`` is reference section 4 proper, on the lab's VIP VPC (docs/lab.md,
"The VIP VPC"): ``hybridctl lab up`` seeds ``VIP-VPC`` 10.0.0.0/16 into the AWS emulator
(:func:`hybridctl_lab.vip_scenario.build`) and gives it its own fabric ``hl-vip-fab`` with the
client ``hl-vip-c`` (10.0.10.10, Subnet-1a) and the nodes ``hl-vip-n1`` (10.0.110.10,
Subnet-2a) and ``hl-vip-n2`` (10.0.120.10, Subnet-2c); the reconciler keeps that fabric's
forwarding in step with the VPC's route tables. ``overlay`` runs in the overlay's VPC
(Hybrid-VPC): client hl-aws-br, nodes hl-aws-h20 / hl-aws-h21 (their ENIs by id), with its
own VIP 20.0.0.200: VIP-VPC already routes 20.0.0.100 in the same region, and a VIP must be
unique per account and region (the collision check would refuse it, rightly).

What it shows: the client's probes are answered by node1, ``hybridctl vip move ha-vip --to
node2`` runs, then they are answered by node2; the outage window (last node1 answer -> first
node2 answer, 10 ms probes) is measured and reported (``LAB_DIR/vip-failover-LAYOUT.json``),
never asserted. And the collision check fires once a second VPC routes the same VIP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl_lab import dataplane, manager, seed
from hybridctl_lab import vip_scenario as scenario
from tests.conftest import require_lab_prereqs, require_visible_in_lab_hosts
from tests.e2e.test_lab import ec2_client, running_lab
from tests.support.vip_lab import lab_aws_section, vip_vpc_document

pytestmark = [pytest.mark.lab]

VIP_LAB_DIR = Path("/var/lib/hybridctl-lab-test-vip")
CLIENT, NODE1, NODE2 = "hl-vip-c", "hl-vip-n1", "hl-vip-n2"
OVERLAY_CLIENT, OVERLAY_NODE1, OVERLAY_NODE2 = "hl-aws-br", "hl-aws-h20", "hl-aws-h21"
VIP = scenario.VIP
OVERLAY_VIP = "20.0.0.200"  # not 20.0.0.100: VIP-VPC routes that one in the same region
PORT = 7100


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    require_lab_prereqs()
    require_visible_in_lab_hosts()  # the nodes run this venv's hybridctl
    with running_lab(VIP_LAB_DIR) as result:
        yield result


@pytest.fixture(scope="module")
def ec2(lab: manager.LabUpResult) -> Any:
    return ec2_client(lab)


def _responders(hosts: list[tuple[str, str]], vip: str) -> list[subprocess.Popen[bytes]]:
    """VIP/32 on each node's lo and a responder answering with the node's name."""
    started = []
    for host, name in hosts:
        dataplane.exec_in(host, f"ip addr replace {vip}/32 dev lo", lab_dir=VIP_LAB_DIR)
        argv = dataplane.exec_argv(host, lab_dir=VIP_LAB_DIR)
        started.append(
            subprocess.Popen(
                [*argv, sys.executable, "-m", "hybridctl_lab.vip_probe", "serve", "--name", name, "--port", str(PORT)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return started


def _stop(processes: list[subprocess.Popen[bytes]], hosts: list[str], vip: str) -> None:
    for process in processes:  # by PID, never by name
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    for host in hosts:
        dataplane.exec_in(host, f"ip addr del {vip}/32 dev lo", lab_dir=VIP_LAB_DIR, check=False)


@dataclass(frozen=True)
class Layout:
    name: str
    inventory: Path
    client: str
    vip: str


@pytest.fixture(scope="module")
def overlay(lab: manager.LabUpResult, ec2: Any) -> Iterator[Layout]:
    """The VIP in the overlay's VPC: nodes hl-aws-h20 / hl-aws-h21 by ENI id, client hl-aws-br."""
    enis = {}
    for host, name in ((OVERLAY_NODE1, "node1"), (OVERLAY_NODE2, "node2")):
        reservations = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [host.removeprefix("hl-")]}])[
            "Reservations"
        ]
        enis[name] = reservations[0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    doc = yaml.safe_load(lab.inventory.read_text())
    doc["aws"] = lab_aws_section(lab)
    doc["vips"] = [
        {
            "name": "ha-vip",
            "address": OVERLAY_VIP,
            "vpc": seed.VPC_NAME,
            "nodes": [{"name": n, "eni": e} for n, e in enis.items()],
        }
    ]
    inventory = VIP_LAB_DIR / "vip-overlay.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    processes = _responders([(OVERLAY_NODE1, "node1"), (OVERLAY_NODE2, "node2")], OVERLAY_VIP)
    try:
        yield Layout("overlay", inventory, OVERLAY_CLIENT, OVERLAY_VIP)
    finally:
        _stop(processes, [OVERLAY_NODE1, OVERLAY_NODE2], OVERLAY_VIP)


@pytest.fixture(scope="module")
def vip_vpc(lab: manager.LabUpResult, ec2: Any) -> Iterator[Layout]:
    """Reference section 4 proper: VIP-VPC 10.0.0.0/16, seeded by `lab up`, on its own fabric."""
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [seed.VIP_VPC_NAME]}])["Vpcs"]
    assert [v["CidrBlock"] for v in found] == [scenario.VPC_CIDR]  # `lab up` seeded it
    doc = vip_vpc_document(lab_aws_section(lab))
    inventory = VIP_LAB_DIR / "vip-lab.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    processes = _responders([(NODE1, "node1"), (NODE2, "node2")], VIP)
    try:
        yield Layout("vip-vpc", inventory, CLIENT, VIP)
    finally:
        _stop(processes, [NODE1, NODE2], VIP)


def _probe(client: str, vip: str, duration: float) -> subprocess.Popen[str]:
    argv = dataplane.exec_argv(client, lab_dir=VIP_LAB_DIR)
    command = ["-m", "hybridctl_lab.vip_probe", "probe", vip, "--port", str(PORT), "--duration", str(duration)]
    return subprocess.Popen([*argv, sys.executable, *command], stdout=subprocess.PIPE, text=True)


def _answers(client: str, vip: str, duration: float) -> dict[str, Any]:
    out, _ = _probe(client, vip, duration).communicate(timeout=duration + 30)
    return dict(json.loads(out))


def _hybridctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybridctl.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def _wait_for(client: str, vip: str, node: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        summary = _answers(client, vip, 1.0)
        if summary["nodes"][-1:] == [node] or time.monotonic() > deadline:
            return summary
        time.sleep(0.2)


def _failover(layout: Layout, record_property: Any, capsys: Any) -> None:
    inventory, client, vip = layout.inventory, layout.client, layout.vip
    ensure = _hybridctl("vip", "ensure", "-i", str(inventory), "--to", "node1", "-o", "json")
    assert ensure.returncode == 0, ensure.stdout + ensure.stderr
    assert _wait_for(client, vip, "node1")["nodes"] == ["node1"]
    ping = dataplane.exec_in(client, f"ping -c 3 -i 0.2 -W 1 {vip}", lab_dir=VIP_LAB_DIR, check=False)
    assert ping.returncode == 0, ping.stdout

    prober = _probe(client, vip, 10.0)
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
    ping = dataplane.exec_in(client, f"ping -c 3 -i 0.2 -W 1 {vip}", lab_dir=VIP_LAB_DIR, check=False)
    assert ping.returncode == 0, ping.stdout
    assert _answers(client, vip, 1.0)["nodes"] == ["node2"]
    report = {
        "layout": layout.name,
        "outage_window_s": window,
        "lost_probes": summary["lost"],
        "probes_sent": summary["sent"],
        "move_command_s": round(move_seconds, 3),
        "move": json.loads(moved.stdout),
    }
    (VIP_LAB_DIR / f"vip-failover-{layout.name}.json").write_text(json.dumps(report, indent=1))
    record_property(f"outage_window_s_{layout.name}", window)
    with capsys.disabled():
        print(
            f"\nVIP failover in the lab ({layout.name}): outage window {window:.3f}s "
            f"({summary['lost']} of {summary['sent']} probes lost), `vip move` took {move_seconds:.3f}s"
        )


def test_failover_in_the_overlay_vpc(overlay: Layout, record_property: Any, capsys: Any) -> None:
    _failover(overlay, record_property, capsys)


def test_failover_in_the_vip_vpc(vip_vpc: Layout, record_property: Any, capsys: Any) -> None:
    _failover(vip_vpc, record_property, capsys)


def test_collision_with_a_second_vpc_is_refused(overlay: Layout, ec2: Any) -> None:
    inventory, client, vip = overlay.inventory, overlay.client, overlay.vip
    holder = _answers(client, vip, 1.0)["nodes"]
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=other, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    table = ec2.create_route_table(VpcId=other)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock=f"{vip}/32", NetworkInterfaceId=eni)
    try:
        target = "node1" if holder == ["node2"] else "node2"
        refused = _hybridctl("vip", "move", "ha-vip", "--to", target, "-i", str(inventory))
        assert refused.returncode == 1
        assert "collision" in refused.stderr and table in refused.stderr
        assert _answers(client, vip, 1.0)["nodes"] == holder  # nothing moved
    finally:
        ec2.delete_route(RouteTableId=table, DestinationCidrBlock=f"{vip}/32")


def test_doctor_passes_on_the_seeded_nodes_and_names_a_detached_profile(vip_vpc: Layout, ec2: Any) -> None:
    """`lab up` seeds the nodes' instance profile (reference section 4); detached, doctor fails on it."""

    def doctor() -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
        done = _hybridctl("doctor", "-i", str(vip_vpc.inventory), "-o", "json", "--timeout", "20", "--no-overlay")
        document = json.loads(done.stdout)
        return done.returncode, {(c["id"], c["subject"]): c for c in document["checks"]}

    code, checks = doctor()
    assert code == 0, [c for c in checks.values() if c["status"] == "fail"]
    for node in ("node1", "node2"):
        assert checks[("instance-profile", f"node ha-vip/{node}")]["status"] == "ok"
        assert checks[("node-iam", f"node ha-vip/{node}")]["status"] == "ok"

    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [seed.VIP_VPC_NAME]}])["Vpcs"]
    [reservation] = ec2.describe_instances(
        Filters=[{"Name": "tag:Name", "Values": ["node2"]}, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    )["Reservations"]
    instance_id = reservation["Instances"][0]["InstanceId"]
    [association] = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    try:
        code, checks = doctor()
        assert code == 1
        detached = checks[("instance-profile", "node ha-vip/node2")]
        assert detached["status"] == "fail" and detached["message"] == f"{instance_id} has no instance profile"
        assert checks[("instance-profile", "node ha-vip/node1")]["status"] == "ok"
    finally:
        profile = {"Arn": association["IamInstanceProfile"]["Arn"]}
        ec2.associate_iam_instance_profile(IamInstanceProfile=profile, InstanceId=instance_id)
