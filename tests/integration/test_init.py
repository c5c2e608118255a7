"""`hybridctl init` against the emulators seeded as the lab seeds them (hybridctl_lab.seed).

The draft of the lab's VPC and VNet, its placeholders filled in, plans the same routes as
inventory/lab.yaml: every overlay subnet reaches every other site's networks through the same
next hop, and the bridges route the same prefixes via the same L3 switch. Unknown names fail
with exit 2 before anything is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.features.draft import PLACEHOLDER_PREFIX, placeholders
from tests.conftest import REPO
from tests.support.emulators import lab_inventory_on, seed_lab_clouds

INIT_LAB = [
    "--aws", "Hybrid-VPC",
    "--azure", "hybrid-rg/Hybrid-VNet",
    "--onprem", "192.168.1.0/24",
    "--server", "hl-home-srv",
    "--bridge", "aws-bridge",
    "--bridge", "azure-bridge-nic",
    "--transit", "192.168.10.0/24",
]  # fmt: skip


def hybridctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybridctl.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


@pytest.fixture
def seeded(fresh_aws: Any, fresh_azure: Any, tmp_path: Path) -> Path:
    """Both emulators seeded like the lab; the settings file (aws:/azure: sections) init reads."""
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump(seed_lab_clouds(fresh_aws, fresh_azure, tmp_path)))
    return settings


# What a user writes over each placeholder of the lab's draft (by the field's last key).
FILL = {
    ("home", "user"): "root",
    ("home", "private_ip"): "192.168.1.250",
    ("home", "public_address"): "203.0.113.10",
    ("home", "lan_device"): "eth1",
    ("home", "switch_address"): "192.168.1.249/24",
    ("aws", "host"): "hl-aws-br",
    ("aws", "user"): "root",
    ("azure", "host"): "hl-az-br",
    ("azure", "user"): "root",
}


def fill(doc: dict[str, Any]) -> dict[str, Any]:
    for loc, _text in placeholders(doc):
        site = doc["sites"][loc[1]]["name"]
        node: Any = doc
        for key in loc[:-1]:
            node = node[key]
        node[loc[-1]] = True if loc[-1] == "overlay" else FILL[(site, str(loc[-1]))]
    return doc


def plan_json(path: Path) -> dict[str, Any]:
    run = hybridctl("plan", "-i", str(path), "-o", "json")
    assert run.returncode == 0, run.stdout + run.stderr
    document: dict[str, Any] = json.loads(run.stdout)
    return document


def effective_routes(path: Path) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(per overlay subnet: prefix -> next hop; per bridge site: host prefix -> via), names aside.

    Table and host names may differ between two inventories of the same network; what a packet
    meets does not: which subnet's table sends which prefix where, which bridge routes what.
    """
    inventory = yaml.safe_load(path.read_text())
    sites = {s["name"]: s for s in inventory["sites"]}
    document = plan_json(path)
    subnets_of: dict[tuple[str, str], list[str]] = {}
    for site in inventory["sites"]:
        for network in site.get("networks") or []:
            if network.get("route_table") and network.get("overlay", True):
                subnets_of.setdefault((site["name"], network["route_table"]), []).append(network["cidr"])
    cloud: set[tuple[str, ...]] = set()
    host: set[tuple[str, ...]] = set()
    gateway_site = {s["gateway"]["name"]: name for name, s in sites.items()}
    for change in document["changes"]:
        key, fields = change["key"], change["expected"] or {}
        if change["layer"] == "cloud-route":
            site, table, prefix = key[0], key[1], key[2]
            target = str(fields.get("target", ""))
            for cidr in subnets_of[(site, table)]:
                cloud.add((site, cidr, prefix, target))
        elif change["layer"] == "host-route":
            host.add((gateway_site.get(key[0], key[0]), *[str(k) for k in key[1:]], str(fields.get("via", ""))))
    return cloud, host


def test_draft_of_the_lab_plans_the_lab_routes(seeded: Path, tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    run = hybridctl("init", "--settings", str(seeded), *INIT_LAB, "-f", str(draft))
    assert run.returncode == 0, run.stderr
    text = draft.read_text()
    doc = yaml.safe_load(text)
    left = placeholders(doc)
    # Placeholders exactly where init cannot know: server facts, SSH logins, bridge SSH hosts, overlay.
    kinds = sorted({str(loc[-1]) for loc, _ in left})
    assert kinds == ["host", "lan_device", "overlay", "private_ip", "public_address", "switch_address", "user"]
    values = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert sum(line.count(PLACEHOLDER_PREFIX) for line in values) == len(left) == 13
    # What it read: the bridges, their ENI / NIC, addresses and groups, and the subnets' tables.
    aws = next(s for s in doc["sites"] if s["name"] == "aws")
    assert aws["gateway"] | {"ssh": None} == {
        "name": "aws-bridge",
        "role": "vpn-bridge",
        "ssh": None,
        "private_ip": "192.168.20.100",
        "eni": "aws-bridge-eni",
        "security_group": "aws-bridge-sg",
    }
    assert [(n["name"], n["cidr"]) for n in aws["networks"]] == [
        ("Hybrid-Subnet", "192.168.20.0/24"),
        ("Hybrid-Subnet-Dammy", "192.168.21.0/24"),
    ]
    assert aws["networks"][0]["route_table"] == "Hybrid-RT"
    assert aws["networks"][1]["route_table"].startswith("rtb-")  # the VPC's main table, said in a comment
    assert "uses the VPC's main table" in text
    azure = next(s for s in doc["sites"] if s["name"] == "azure")
    assert azure["gateway"]["nic"] == "azure-bridge-nic" and azure["gateway"]["private_ip"] == "192.168.30.100"
    assert azure["gateway"]["security_group"] == "azure-bridge-nsg"
    assert azure["route_tables"] == [{"name": "hybridctl-rt", "create": True}]

    # Unfilled, the draft does not plan: every placeholder is named at once, exit 2.
    unfilled = hybridctl("plan", "-i", str(draft), "-o", "json")
    assert unfilled.returncode == 2
    problems = json.loads(unfilled.stdout)["problems"]
    assert len(problems) == 13 and all("placeholder" in p["message"] and p["line"] for p in problems)

    filled = tmp_path / "filled.yaml"
    filled.write_text(yaml.safe_dump(fill(doc), sort_keys=False))
    # The lab inventory, against the same emulators (its own sections point at a running lab).
    lab = lab_inventory_on(yaml.safe_load(seeded.read_text()))
    lab_copy = tmp_path / "lab.yaml"
    lab_copy.write_text(yaml.safe_dump(lab, sort_keys=False))

    draft_cloud, draft_host = effective_routes(filled)
    lab_cloud, lab_host = effective_routes(lab_copy)
    assert draft_cloud == lab_cloud and draft_host == lab_host
    # Not vacuous: each of the 4 cloud subnets gets the 3 networks of the other two sites.
    assert len(lab_cloud) == 4 * 3 and all(ip_network(p) for _s, _c, p, _t in lab_cloud)
    assert lab_host


def test_init_refuses_to_overwrite(seeded: Path, tmp_path: Path) -> None:
    existing = tmp_path / "inventory.yaml"
    existing.write_text("# mine\n")
    run = hybridctl("init", "--settings", str(seeded), *INIT_LAB, "-f", str(existing))
    assert run.returncode == 2 and "never overwrites" in run.stderr
    assert existing.read_text() == "# mine\n"


def test_init_to_stdout_without_a_bridge_lists_candidates(seeded: Path) -> None:
    run = hybridctl("init", "--settings", str(seeded), "--aws", "Hybrid-VPC", "-o", "json")
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    site = document["sites"][0]
    # Three instances in the VPC (bridge and two test hosts): none is guessed.
    assert site["bridge"] is None and len(site["bridge_candidates"]) == 3
    assert any("aws-bridge" in c for c in site["bridge_candidates"])
    gateway = yaml.safe_load(document["draft"])["sites"][0]["gateway"]
    assert str(gateway["eni"]).startswith(PLACEHOLDER_PREFIX)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--aws", "No-Such-VPC"], "No-Such-VPC"),
        (["--azure", "no-such-rg/Hybrid-VNet"], "no-such-rg"),
        (["--azure", "hybrid-rg/No-Such-VNet"], "No-Such-VNet"),
    ],
)
def test_unknown_vpc_or_group_is_bad_input(seeded: Path, tmp_path: Path, args: list[str], name: str) -> None:
    out = tmp_path / "draft.yaml"
    run = hybridctl("init", "--settings", str(seeded), *args, "-f", str(out), "-o", "json")
    assert run.returncode == 2, run.stdout + run.stderr
    problem = json.loads(run.stdout)["problems"][0]
    assert name in problem["message"] and problem["field"] in ("--aws", "--azure")
    assert not out.exists()
