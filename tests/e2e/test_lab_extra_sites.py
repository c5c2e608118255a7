"""A lab with two extra cloud sites (`lab up --extra-sites 2`): `hybridctl up` and `check` across all of them.

One lab (LAB_DIR /var/lib/hybridctl-lab-test-sites, free ports, under the lab lock), brought up
through the CLI as a user would; then `hybridctl up` from bare (four bridges cascading to the one
server) and `hybridctl check`: every test host pings every test host of every other site, the
extra sites' included, and each extra VPC's route table sends the overlay to its own bridge.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hybridctl_lab import dataplane, manager
from tests.e2e.test_lab import ec2_client, free_port, hybridctl, require_lab
from tests.e2e.test_up import Run

pytestmark = [pytest.mark.lab]

LAB_DIR = Path("/var/lib/hybridctl-lab-test-sites")
SITES = ["home", "aws", "azure", "s1", "s2"]


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    require_lab()
    env = {
        "HYBRIDCTL_LAB_DIR": str(LAB_DIR),
        "HYBRIDCTL_LAB_AWS_PORT": str(free_port()),
        "HYBRIDCTL_LAB_AZURE_PORT": str(free_port()),
    }
    with dataplane.lab_lock():
        try:
            up = hybridctl("lab", "up", "--extra-sites", "2", "-o", "json", env=env, timeout=300)
            assert up.returncode == 0, up.stderr
            assert json.loads(up.stdout)["extra_sites"] == 2
            status = manager.status(lab_dir=LAB_DIR)
            assert status.up, status.as_dict()
            # The lab's own view of the running lab (lab status) has the extra sites' hosts.
            hosts = {h["name"] for h in status.as_dict()["dataplane"]["hosts"]}
            assert {"hl-s1-br", "hl-s1-h10", "hl-s2-br", "hl-s2-h21"} <= hosts
            yield manager.LabUpResult(
                LAB_DIR,
                LAB_DIR / "lab.yaml",
                LAB_DIR / "ssh_config",
                dataplane.current_topology(LAB_DIR),
                status.daemon_pid or 0,
                status.aws_url,
                status.azure_url,
                {},
                0.0,
            )
        finally:
            down = hybridctl("lab", "down", env=env)
            assert down.returncode == 0, down.stderr


def test_up_and_check_across_the_extra_sites(lab: manager.LabUpResult) -> None:
    inventory = yaml.safe_load(lab.inventory.read_text())
    assert [s["name"] for s in inventory["sites"]] == SITES
    with tempfile.TemporaryDirectory(prefix="hybridctl-e2e-sites-") as state_dir:
        up = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
        assert up.rc == 0, up
        check = Run(["check", "-i", str(lab.inventory), "-o", "json"], state_dir)
        probes = check.json()["probes"]
        assert check.rc == 0, [p for p in probes if not p["ok"]]
    pings = [p for p in probes if p["kind"] == "ping"]
    assert pings and all(p["ok"] for p in probes)
    pairs = {(p["source_site"], p["target_site"]) for p in pings}
    # Every ordered pair of distinct sites was probed (and passed): the extra sites reach the
    # reference ones and each other through the server's L3 switch.
    assert pairs == {(a, b) for a in SITES for b in SITES if a != b}
    # The extra VPCs as the cloud has them now: S1-RT / S2-RT route the home LAN to their bridge's
    # ENI, whose source/dest check is off.
    ec2 = ec2_client(lab)
    for site in ("s1", "s2"):
        name = site.upper()
        table = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [f"{name}-RT"]}])["RouteTables"][0]
        eni = ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": [f"{site}-bridge-eni"]}])[
            "NetworkInterfaces"
        ][0]
        home = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "192.168.1.0/24"]
        assert [r.get("NetworkInterfaceId") for r in home] == [eni["NetworkInterfaceId"]]
        assert eni["SourceDestCheck"] is False
        assert len(table["Associations"]) == 2  # both of the site's subnets
