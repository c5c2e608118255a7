"""First contact on the lab, as docs/real-clouds.md walks it: init, doctor, plan, up, check, budget, down.

The lab stands in for real accounts: its VPC and VNet are what a user has before hybridctl (the
seed), its hosts answer SSH like cloud VMs. `doctor` passes on the bare lab and names a bridge that
cannot reach the server's VPN port (a drop in the AWS fabric); the draft `init` writes, filled in,
builds a working overlay with `up`, which `check` proves and `down` removes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.features.draft import placeholders
from hybridctl_lab import dataplane, manager
from tests.e2e.test_lab import running_lab
from tests.e2e.test_up import Run

pytestmark = [pytest.mark.lab]

LAB_DIR = Path("/var/lib/hybridctl-lab-test-first-contact")


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    with running_lab(LAB_DIR) as result:
        yield result


@pytest.fixture(scope="module")
def state_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="hybridctl-e2e-first-contact-") as path:
        yield path


def doctor(lab_inventory: Path, state_dir: str) -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
    run = Run(["doctor", "-i", str(lab_inventory), "-o", "json", "--timeout", "30"], state_dir)
    checks = {(c["id"], c["subject"]): c for c in run.json()["checks"]}
    return run.rc, checks


def test_doctor_passes_on_the_bare_lab(lab: manager.LabUpResult, state_dir: str) -> None:
    rc, checks = doctor(lab.inventory, state_dir)
    assert rc == 0, [c for c in checks.values() if c["status"] == "fail"]
    ids = {key[0] for key in checks}
    assert {"aws-vpc", "aws-eni-placement", "azure-nic-placement", "azure-permissions", "route-quota"} <= ids
    assert {"ssh", "host-key", "sudo", "distribution", "package", "server-port"} <= ids
    for host in ("vpnserver", "aws-bridge", "azure-bridge", "hl-home-c1"):
        assert checks[("ssh", f"host {host}")]["status"] == "ok"
    # Nothing listens on 5555 before the first `up`: the path is open, the port refuses.
    for bridge in ("aws-bridge", "azure-bridge"):
        assert checks[("server-port", f"host {bridge}")]["status"] == "warn"


def test_a_bridge_that_cannot_reach_the_server_port_fails_by_name(lab: manager.LabUpResult, state_dir: str) -> None:
    rules = (
        "table inet hctl_doctor_block {\n"
        "  chain c_fwd { type filter hook forward priority 0; ip daddr 203.0.113.10 tcp dport 5555 drop; }\n"
        "}\n"
    )
    dataplane.exec_in("hl-aws-fab", "nft -f -", input=rules, lab_dir=LAB_DIR)
    try:
        rc, checks = doctor(lab.inventory, state_dir)
    finally:
        dataplane.exec_in("hl-aws-fab", "nft delete table inet hctl_doctor_block", lab_dir=LAB_DIR, check=False)
    assert rc == 1
    failing = [key for key, c in checks.items() if c["status"] == "fail"]
    assert failing == [("server-port", "host aws-bridge")], failing
    check = checks[("server-port", "host aws-bridge")]
    assert "203.0.113.10:5555" in check["message"] and "no answer" in check["message"] and check["fix"]
    assert checks[("server-port", "host azure-bridge")]["status"] == "warn"


def fill(draft: dict[str, Any], lab_inventory: dict[str, Any]) -> dict[str, Any]:
    """What the guide tells the user to write over the placeholders (here: the lab's facts)."""
    lab_sites = {s["name"]: s for s in lab_inventory["sites"]}
    for loc, _text in placeholders(draft):
        site = draft["sites"][loc[1]]
        node: Any = draft
        for key in loc[:-1]:
            node = node[key]
        field = str(loc[-1])
        if field == "overlay":
            node[field] = True
        elif loc[2] == "gateway" and loc[3] == "ssh":
            node[field] = lab_sites[site["name"]]["gateway"]["ssh"][field]
        else:
            node[field] = lab_sites[site["name"]]["gateway"][field]
    for site in draft["sites"]:
        lab_site = lab_sites[site["name"]]
        # The lab reaches its hosts through its own ssh_config / key / known_hosts (a user's ~/.ssh).
        site["gateway"]["ssh"] = lab_site["gateway"]["ssh"]
        site["test_hosts"] = lab_site.get("test_hosts", [])
        site["clients"] = lab_site.get("clients", [])  # LAN clients hybridctl routes (guide, step 2)
    draft["secrets"] = lab_inventory["secrets"]
    return draft


def test_the_guide_from_init_to_down(lab: manager.LabUpResult, state_dir: str, tmp_path: Path) -> None:
    draft_path = tmp_path / "overlay.yaml"
    init = Run(
        [
            "init",
            "--settings", str(lab.inventory),
            "--aws", "Hybrid-VPC",
            "--azure", "hybrid-rg/Hybrid-VNet",
            "--onprem", "192.168.1.0/24",
            "--server", "hl-home-srv",
            "--bridge", "aws-bridge",
            "--bridge", "azure-bridge-nic",
            "--transit", "192.168.10.0/24",
            "--name", "first-contact",
            "-f", str(draft_path),
        ],
        state_dir,
    )  # fmt: skip
    assert init.rc == 0, init.stderr
    lab_inventory = yaml.safe_load(lab.inventory.read_text())
    filled = fill(yaml.safe_load(draft_path.read_text()), lab_inventory)
    filled["secrets"] = {"store": str(tmp_path / "secrets.json")}
    inventory = tmp_path / "filled.yaml"
    inventory.write_text(yaml.safe_dump(filled, sort_keys=False))

    policy = Run(["iam-policy", "-i", str(inventory)], state_dir)
    assert policy.rc == 0 and "ec2:CreateRoute" in policy.stdout
    role = Run(["iam-policy", "-i", str(inventory), "--cloud", "azure"], state_dir)
    assert role.rc == 0 and "Microsoft.Network/routeTables/routes/write" in json.loads(role.stdout)["Actions"]
    rc, checks = doctor(inventory, state_dir)
    assert rc == 0, [c for c in checks.values() if c["status"] == "fail"]
    plan = Run(["plan", "-i", str(inventory), "-o", "json"], state_dir)
    assert plan.rc == 0 and plan.json()["changes"]
    up = Run(["up", "-i", str(inventory), "--accept-new-host-keys", "--yes", "-o", "json"], state_dir)
    assert up.rc == 0, up
    check = Run(["check", "-i", str(inventory), "-o", "json"], state_dir)
    probes = check.json()["probes"]
    assert check.rc == 0, json.dumps([p for p in probes if not p["ok"]], indent=1)
    assert {p["kind"] for p in probes} >= {"ping", "mtu"}
    # After `up` the server listens: doctor's port check passes outright now.
    rc, checks = doctor(inventory, state_dir)
    assert rc == 0 and checks[("server-port", "host aws-bridge")]["status"] == "ok"
    budget = Run(
        ["budget", "set", "hybrid-guard", "-i", str(inventory), "--amount", "30", "--preset", "guard",
         "--email", "me@example.com", "-o", "json"],
        state_dir,
    )  # fmt: skip
    assert budget.rc == 0, budget
    down = Run(["down", "-i", str(inventory), "--yes", "-o", "json"], state_dir)
    assert down.rc == 0, down
    check = Run(["check", "-i", str(inventory), "-o", "json"], state_dir)
    assert check.rc == 1 and not any(p["ok"] for p in check.json()["probes"] if p["kind"] == "ping")
