"""`hybridctl check` on the lab: it passes on a converged overlay and names the layer at fault.

One lab for the module (LAB_DIR /var/lib/hybridctl-lab-test-check, free ports, under the lab
lock), brought up bare and converged once with `up`. Each test breaks one layer from outside
hybridctl (the cloud API through boto3, a host over its namespace), runs `check` (exit 1,
the failing probes name the layer), then `up` repairs it and `check` passes again.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hybridctl_lab import dataplane, manager
from tests.e2e.test_lab import ec2_client, running_lab
from tests.e2e.test_up import Run

pytestmark = [pytest.mark.lab]

LAB_DIR = Path("/var/lib/hybridctl-lab-test-check")


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    with running_lab(LAB_DIR) as result:
        yield result


@pytest.fixture(scope="module")
def state_dir(lab: manager.LabUpResult) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="hybridctl-e2e-check-") as path:
        up = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], path)
        assert up.rc == 0, up
        yield path


def check(lab: manager.LabUpResult, state_dir: str) -> tuple[int, list[dict[str, Any]]]:
    run = Run(["check", "-i", str(lab.inventory), "-o", "json"], state_dir)
    probes = run.json()["probes"]
    assert isinstance(probes, list)
    return run.rc, probes


def repair(lab: manager.LabUpResult, state_dir: str) -> dict[str, Any]:
    up = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
    assert up.rc == 0, up
    rc, probes = check(lab, state_dir)
    assert rc == 0 and all(p["ok"] for p in probes), [p for p in probes if not p["ok"]]
    return up.json()


def failing(probes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in probes if not p["ok"]]


def test_converged_lab_passes(lab: manager.LabUpResult, state_dir: str) -> None:
    rc, probes = check(lab, state_dir)
    assert rc == 0, json.dumps(failing(probes), indent=1)
    # 5 test hosts in 3 sites: 16 cross-site pairs (same-site pairs are not probed), plus services.
    assert len([p for p in probes if p["kind"] == "ping"]) == 16 and all(p["ok"] for p in probes)


def test_source_dest_check_on_is_named(lab: manager.LabUpResult, state_dir: str) -> None:
    ec2 = ec2_client(lab)
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": ["aws-bridge-eni"]}])[
        "NetworkInterfaces"
    ][0]
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni["NetworkInterfaceId"], SourceDestCheck={"Value": True}
    )
    time.sleep(0.5)  # the lab's fabric follows the API within ~0.15 s
    rc, probes = check(lab, state_dir)
    assert rc == 1
    bad = failing(probes)
    assert bad and all(p["source_site"] == "aws" or p["target_site"] == "aws" for p in bad)
    assert all("forwarding flag" in p["suspect"] and "source_dest_check" in p["suspect"] for p in bad), bad
    changes = repair(lab, state_dir)["changes"]
    assert [(c["layer"], c["key"][-1]) for c in changes] == [("flag", "source_dest_check")]


def test_missing_host_route_on_a_bridge_is_named(lab: manager.LabUpResult, state_dir: str) -> None:
    dataplane.exec_in("hl-aws-br", "ip route del 192.168.1.0/24", lab_dir=LAB_DIR)
    rc, probes = check(lab, state_dir)
    assert rc == 1
    bad = failing(probes)
    # Traffic between AWS and home, in either direction, needs that route on the way back or out.
    assert bad and all({p["source_site"], p["target_site"]} == {"aws", "home"} for p in bad), bad
    assert all("host route (aws-bridge 192.168.1.0/24)" in p["suspect"] for p in bad), bad
    changes = repair(lab, state_dir)["changes"]
    assert {(c["layer"], c["key"][0], c["key"][-1]) for c in changes} == {
        ("host-route", "aws-bridge", "192.168.1.0/24")
    }


def cascades(lab: manager.LabUpResult, state_dir: str) -> dict[str, str]:
    run = Run(["routes", "diff", "-i", str(lab.inventory), "--layer", "softether", "-o", "json"], state_dir)
    document = json.loads(run.stdout)
    out = {}
    for change in document["drift"]:
        if change["key"][1] == "cascade" and change["actual"]:
            out[change["key"][0]] = change["actual"].get("status", "")
    return out


def test_vpn_server_down_then_stuck_cascades_are_named_and_repaired(lab: manager.LabUpResult, state_dir: str) -> None:
    # The VPN server crashes: SIGKILL to its watchdog parent first, then the worker, by PID. The
    # lab's hosts run systemd, whose Restart=on-failure would start it again at once: stopping
    # the unit right after stands for a crash that stays down (say, its restart limit hit).
    stop = (
        "for f in /run/softether/.pid_*; do p=$(cat $f); "
        "pp=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status); kill -KILL $pp $p; done; "
        "if [ -d /run/systemd/system ]; then systemctl stop softether-vpnserver.service; fi"
    )
    dataplane.exec_in("hl-home-srv", stop, lab_dir=LAB_DIR)
    rc, probes = check(lab, state_dir)
    assert rc == 1
    bad = failing(probes)
    assert bad and all("SoftEther service (vpnserver softether-vpnserver)" in p["suspect"] for p in bad), bad
    # The bridges notice the server is gone after the 20 s session timeout; with softether
    # 5.01/OpenSSL 3 their links then never recover on their own (docs/softether.md).
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        states = cascades(lab, state_dir)
        if set(states) == {"aws-bridge", "azure-bridge"} and all(s.startswith("error") for s in states.values()):
            break
        time.sleep(2)
    else:
        pytest.fail(f"the bridges' cascades did not report the failure: {cascades(lab, state_dir)}")
    # `up` starts the server, then restarts both bridges (their cascades were down): all pass.
    changes = repair(lab, state_dir)["changes"]
    touched = {(c["layer"], c["key"][0]) for c in changes}
    assert ("host-service", "vpnserver") in touched
    assert {("softether", "aws-bridge"), ("softether", "azure-bridge")} <= touched


def test_mtu_black_hole_is_named_with_the_size_that_passes(lab: manager.LabUpResult, state_dir: str) -> None:
    """One hop carries 1400 bytes and its ICMP 'fragmentation needed' is dropped: ping passes, size fails."""
    from hybridctl_lab.topology import build_topology

    host = next(h for h in build_topology().hosts if h.name == "hl-aws-h20")
    nic = host.nics[0]
    fabric, link = nic.peer_ns, nic.peer_link
    drop = "icmp type destination-unreachable icmp code frag-needed drop"
    rules = (
        "table inet hctl_blackhole {\n"
        f"  chain c_out {{ type filter hook output priority 0; {drop}; }}\n"
        f"  chain c_fwd {{ type filter hook forward priority 0; {drop}; }}\n"
        "}\n"
    )
    dataplane.exec_in(fabric, f"ip link set {link} mtu 1400", lab_dir=LAB_DIR)
    dataplane.exec_in(fabric, "nft -f -", input=rules, lab_dir=LAB_DIR)
    try:
        rc, probes = check(lab, state_dir)
    finally:
        dataplane.exec_in(
            fabric, f"ip link set {link} mtu 1500; nft delete table inet hctl_blackhole", lab_dir=LAB_DIR, check=False
        )
    assert rc == 1
    bad = failing(probes)
    # Only the pairs through that hop fail, and only by size: every ping still passes.
    assert bad and all("aws-h20" in (p["source"], p["target"]) for p in bad), bad
    assert {p["kind"] for p in bad} == {"mtu"}, bad
    assert all(p["ok"] for p in probes if p["kind"] == "ping")
    mtu = [p for p in bad if p["kind"] == "mtu"]
    # Both directions of all three remote endpoints' pairs with aws-h20.
    assert len(mtu) == 6, mtu
    # Towards aws-h20 the fabric's egress MTU (1400) is the limit; from it, the fabric's veth end
    # also takes a frame the size of a VLAN tag over its MTU (the kernel's receive slack): <= 1404.
    inbound = [p for p in mtu if p["target"] == "aws-h20"]
    assert len(inbound) == 3 and all(p["size"] == 1400 and "pass up to 1400 bytes" in p["detail"] for p in inbound)
    assert all(1400 <= p["size"] <= 1404 for p in mtu), mtu
    assert all("MTU black hole" in p["suspect"] and str(p["size"]) in p["suspect"] for p in bad), bad
    # Restored, every probe passes again (nothing in the plan changed).
    rc, probes = check(lab, state_dir)
    assert rc == 0, failing(probes)
