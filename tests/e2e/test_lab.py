"""The whole lab (`hybridctl lab up`): data plane + daemon (emulators, seeded clouds, reconciler).

One lab for the module, in its own LAB_DIR and on free ports (a developer's lab on the
default ports may be running), under the machine-wide lab lock. The helpers here are
shared with the other tests/e2e/test_lab_* modules.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient

from hybridctl_lab import dataplane, manager, seed
from hybridctl_lab.daemon import free_port
from hybridctl_lab.topology import build_topology
from tests.conftest import require
from tests.integration.test_lab_dataplane import lab_leftovers, pings, require_dataplane_prereqs, root_snapshot

pytestmark = [pytest.mark.lab]

E2E_LAB_DIR = Path("/var/lib/hybridctl-lab-test-e2e")


def require_lab() -> None:
    require_dataplane_prereqs()
    for module in ("moto", "werkzeug", "cryptography"):
        require(importlib.util.find_spec(module) is not None, f"Python package {module} (hybridctl[lab])")


@contextlib.contextmanager
def running_lab(lab_dir: Path) -> Iterator[manager.LabUpResult]:
    """A whole lab in LAB_DIR on free ports, under the machine-wide lab lock; taken down after."""
    require_lab()
    with dataplane.lab_lock():
        result = manager.up(lab_dir=lab_dir, aws_port=free_port(), azure_port=free_port())
        try:
            yield result
        finally:
            manager.down(lab_dir=lab_dir)


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    require_lab()
    with dataplane.lab_lock():
        before = root_snapshot()
        result = manager.up(lab_dir=E2E_LAB_DIR, aws_port=free_port(), azure_port=free_port())
        try:
            yield result
        finally:
            manager.down(lab_dir=E2E_LAB_DIR)
        assert lab_leftovers(E2E_LAB_DIR) == []
        assert root_snapshot() == before


def hybridctl(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybridctl.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def inventory_of(lab: manager.LabUpResult) -> dict[str, Any]:
    data = yaml.safe_load(lab.inventory.read_text())
    assert isinstance(data, dict)
    return data


def ec2_client(lab: manager.LabUpResult) -> Any:
    """boto3 EC2 client configured only from the lab inventory (endpoint, credentials file, region)."""
    aws = inventory_of(lab)["aws"]
    creds = configparser.ConfigParser()
    creds.read(aws["credentials_file"])
    return boto3.client(
        "ec2",
        endpoint_url=aws["endpoint_url"],
        region_name=aws["region"],
        aws_access_key_id=creds["default"]["aws_access_key_id"],
        aws_secret_access_key=creds["default"]["aws_secret_access_key"],
    )


def network_client(lab: manager.LabUpResult) -> NetworkManagementClient:
    """azure-mgmt-network client configured only from the lab inventory."""
    az = inventory_of(lab)["azure"]
    secret = Path(az["client_secret"].removeprefix("file:")).read_text().strip()
    credential = ClientSecretCredential(
        az["tenant_id"],
        az["client_id"],
        secret,
        authority=az["authority"],
        disable_instance_discovery=True,
        connection_verify=az["ca_bundle"],
    )
    return NetworkManagementClient(
        credential,
        az["subscription_id"],
        base_url=az["arm_endpoint"],
        credential_scopes=[f"{az['arm_endpoint']}/.default"],
        connection_verify=az["ca_bundle"],
        polling_interval=0.05,
    )


def tag(obj: dict[str, Any], key: str = "Name") -> str | None:
    return next((t["Value"] for t in obj.get("Tags", []) if t["Key"] == key), None)


# --------------------------------------------------------------------------- the bare lab


def test_bare_lab_no_ping_crosses_sites(lab: manager.LabUpResult) -> None:
    matrix = manager.ping_matrix(lab_dir=E2E_LAB_DIR)
    probes = {h.name for h in build_topology(0).test_hosts}
    assert {r.source for r in matrix.results} == probes
    assert len(matrix.results) == len(probes) * (len(probes) - 1)
    cross = matrix.cross_site
    assert len(cross) == 16
    assert [r for r in cross if r.ok] == []
    # Same site: the VPC/VNet routes its own subnets (the home site has one test host).
    same = {(r.source, r.target) for r in matrix.results if not r.cross_site}
    assert same == {
        ("hl-aws-h20", "hl-aws-h21"),
        ("hl-aws-h21", "hl-aws-h20"),
        ("hl-az-h30", "hl-az-h31"),
        ("hl-az-h31", "hl-az-h30"),
    }
    assert all(r.ok for r in matrix.results if not r.cross_site)


def test_status_reports_everything_up(lab: manager.LabUpResult) -> None:
    st = manager.status(lab_dir=E2E_LAB_DIR)
    assert st.up and st.daemon_ready and st.aws_healthy and st.azure_healthy
    assert st.daemon_pid == lab.daemon_pid
    assert {h.name for h in st.dataplane.hosts if h.sshd and h.listening} == {h.name for h in lab.topology.ssh_hosts}
    assert st.reconciler is not None and st.reconciler["last"]["ok"]
    assert (E2E_LAB_DIR / "pids" / "daemon.pid").exists()


def test_cli_status_pings_exec(lab: manager.LabUpResult) -> None:
    env = {"HYBRIDCTL_LAB_DIR": str(E2E_LAB_DIR)}
    status = hybridctl("lab", "status", "-o", "json", env=env)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["up"] and doc["emulators"]["aws"]["healthy"] and doc["emulators"]["azure"]["healthy"]
    assert doc["daemon"]["pid"] == lab.daemon_pid

    expect_none = hybridctl("lab", "pings", "--expect-none", "-o", "json", env=env)
    assert expect_none.returncode == 0, expect_none.stdout
    assert json.loads(expect_none.stdout)["cross_site"] == {"pairs": 16, "ok": 0}
    assert hybridctl("lab", "pings", env=env).returncode == 1  # cross-site pairs fail on a bare lab

    out = hybridctl("lab", "exec", "hl-az-h31", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0", env=env)
    assert out.returncode == 0 and "192.168.31.10/24" in out.stdout
    assert hybridctl("lab", "exec", "hl-aws-h20", "--", "sh", "-c", "exit 3", env=env).returncode == 3
    # The inventory's names for the hosts work too (gateways, test hosts).
    for name, host in (("aws-bridge", "hl-aws-br"), ("vpnserver", "hl-home-srv"), ("az-h30", "hl-az-h30")):
        out = hybridctl("lab", "exec", name, "--", "hostname", env=env)
        assert out.returncode == 0 and out.stdout.split() == [host], (name, out.stdout, out.stderr)
    unknown = hybridctl("lab", "exec", "no-such-host", "--", "true", env=env)
    assert unknown.returncode == 1 and "no such lab host" in unknown.stderr and "aws-bridge" in unknown.stderr


def test_test_hosts_run_sshd_reachable_through_ssh_config(lab: manager.LabUpResult) -> None:
    for host in ("hl-aws-h20", "hl-aws-h21", "hl-az-h30", "hl-az-h31", "hl-home-c1", "hl-vip-c", "hl-vip-n2"):
        out = subprocess.run(
            ["ssh", "-F", str(lab.ssh_config), host, "hostname; ip -4 -o addr show dev eth0"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[0] == host
        assert str(lab.topology.host(host).primary_ip) in out.stdout


def test_inventory_plans_and_matches_the_lab(lab: manager.LabUpResult) -> None:
    planned = hybridctl("plan", "-i", str(lab.inventory), "-o", "json")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    inv = inventory_of(lab)
    assert inv["aws"]["endpoint_url"] == lab.aws_url
    assert inv["azure"]["arm_endpoint"] == lab.azure_url
    for site in inv["sites"]:
        for host in [site["gateway"], *site.get("clients", []), *site.get("test_hosts", [])]:
            assert host["ssh"]["config_file"] == str(lab.ssh_config)
            assert f"Host {host['ssh']['host']}\n" in lab.ssh_config.read_text()
    secret = Path(inv["azure"]["client_secret"].removeprefix("file:"))
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert oct(Path(inv["aws"]["credentials_file"]).stat().st_mode & 0o777) == "0o600"


def test_clouds_are_seeded_bare_through_their_apis(lab: manager.LabUpResult) -> None:
    ec2 = ec2_client(lab)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [seed.VPC_NAME]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]
    cidrs = {a["CidrBlock"] for a in vpc["CidrBlockAssociationSet"]}
    assert cidrs == {"192.168.20.0/24", "192.168.21.0/24"}
    subnets = {tag(s): s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]}  # fmt: skip
    assert set(subnets) == {"Hybrid-Subnet", "Hybrid-Subnet-Dammy"}
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
    hybrid_rt = next(t for t in tables if tag(t) == seed.AWS_ROUTE_TABLE)
    main = next(t for t in tables if any(a.get("Main") for a in t["Associations"]))
    assert [a["SubnetId"] for a in hybrid_rt["Associations"] if not a.get("Main")] == [subnets["Hybrid-Subnet"]]
    for table in (hybrid_rt, main):
        assert any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("GatewayId", "").startswith("igw-")
                   for r in table["Routes"])  # fmt: skip
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": [seed.AWS_BRIDGE_ENI]}])[
        "NetworkInterfaces"
    ][0]
    assert eni["PrivateIpAddress"] == "192.168.20.100" and eni["SourceDestCheck"] is True
    groups = {g["GroupName"] for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]}  # fmt: skip
    assert {seed.AWS_BRIDGE_SG, seed.AWS_WORKLOAD_SG} <= groups
    states = {
        (i["PrivateIpAddress"], i["State"]["Name"])
        for r in ec2.describe_instances(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Reservations"]
        for i in r["Instances"]
    }
    assert {ip for ip, state in states if state == "running"} == {"192.168.20.100", "192.168.20.10", "192.168.21.10"}
    # One forgotten, stopped instance (hybridctl_lab.seed_costs): `hybridctl leaks` must find it.
    assert [state for _, state in states if state != "running"] == ["stopped"]

    network = network_client(lab)
    rg = seed.AZURE_RESOURCE_GROUP
    vnet = network.virtual_networks.get(rg, seed.AZURE_VNET)
    assert {s.name: s.address_prefix for s in vnet.subnets or []} == {
        "Hybrid_Subnet": "192.168.30.0/24",
        "Hybrid_Subnet_Dammy": "192.168.31.0/24",
    }
    assert all(s.route_table is None for s in vnet.subnets or [])
    nic = network.network_interfaces.get(rg, seed.AZURE_BRIDGE_NIC)
    assert nic.enable_ip_forwarding is False
    assert nic.ip_configurations[0].private_ip_address == "192.168.30.100"
    assert nic.network_security_group.id.endswith(f"/networkSecurityGroups/{seed.AZURE_BRIDGE_NSG}")
    assert list(network.route_tables.list(rg)) == []
    nics = {n.ip_configurations[0].private_ip_address for n in network.network_interfaces.list(rg)}
    assert nics == {"192.168.30.100", "192.168.30.10", "192.168.31.10", "192.168.30.4"}  # .4: the bastion


# --------------------------------------------------------------------------- the VIP VPC (section 4)

VIP_HOSTS = {"hl-vip-c": "10.0.10.10", "hl-vip-n1": "10.0.110.10", "hl-vip-n2": "10.0.120.10"}


def test_vip_vpc_is_seeded_through_the_api(lab: manager.LabUpResult) -> None:
    ec2 = ec2_client(lab)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [seed.VIP_VPC_NAME]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == ["10.0.0.0/16"]
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert {tag(s): s["CidrBlock"] for s in subnets} == {
        "Subnet-1a": "10.0.10.0/24",
        "Subnet-2a": "10.0.110.0/24",
        "Subnet-2c": "10.0.120.0/24",
    }
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkInterfaces"]
    by_name = {tag({"Tags": e.get("TagSet", [])}): e for e in enis}  # ENIs carry TagSet, not Tags
    assert {n: (e["PrivateIpAddress"], e["SourceDestCheck"]) for n, e in by_name.items()} == {
        "client-eni": ("10.0.10.10", True),
        "node1-eni": ("10.0.110.10", False),
        "node2-eni": ("10.0.120.10", False),
    }
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    vip_targets = {
        tag(t): r.get("NetworkInterfaceId")
        for t in tables
        for r in t["Routes"]
        if r.get("DestinationCidrBlock") == "20.0.0.100/32"
    }
    assert vip_targets == {name: by_name["node1-eni"]["NetworkInterfaceId"] for name in ("Main", "Route-A", "Route-C")}


def test_vip_vpc_fabric_routes_the_vip_and_stays_apart_from_the_overlay(lab: manager.LabUpResult) -> None:
    # Every subnet table of hl-vip-fab sends the VIP (outside the VPC CIDR) to node1's link.
    for table in (100, 101, 102):
        out = subprocess.run(
            ["ip", "-n", "hl-vip-fab", "route", "show", "table", str(table)], capture_output=True, text=True, check=True
        ).stdout
        assert "20.0.0.100 via 10.0.110.10 dev hl-n1" in out, (table, out)
    inside = [(src, dst) for src in VIP_HOSTS for dst in VIP_HOSTS.values() if VIP_HOSTS[src] != dst]
    overlay = ["192.168.20.10", "192.168.30.10", "192.168.1.10"]
    across = [("hl-vip-c", a) for a in overlay] + [("hl-aws-h20", a) for a in VIP_HOSTS.values()]
    result = pings(inside + across, E2E_LAB_DIR)
    assert [k for k in inside if not result[k]] == []  # the VPC routes its own subnets
    assert [k for k in across if result[k]] == []  # no path between the VIP VPC and the overlay's sites
