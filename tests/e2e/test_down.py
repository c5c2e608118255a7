"""`hybridctl down` on the lab (issue 5): after `up` then `down`, cloud and host state equal a
snapshot taken before `up`; a foreign route in a managed table survives both; `down` is idempotent."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hybridctl_lab import dataplane, manager
from tests.e2e.test_lab import ec2_client, free_port, hybridctl, network_client, require_lab

pytestmark = [pytest.mark.lab]

LAB_DIR = Path("/var/lib/hybridctl-lab-test-down")
MANAGED = ("hl-home-srv", "hl-aws-br", "hl-az-br", "hl-home-c1")
FOREIGN = "10.99.0.0/16"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[manager.LabUpResult, dict[str, str]]]:
    require_lab()
    env = {"HYBRIDCTL_STATE_DIR": str(tmp_path_factory.mktemp("state"))}
    with dataplane.lab_lock():
        result = manager.up(lab_dir=LAB_DIR, aws_port=free_port(), azure_port=free_port())
        try:
            yield result, env
        finally:
            manager.down(lab_dir=LAB_DIR)


def aws_snapshot(lab: manager.LabUpResult) -> dict[str, Any]:
    ec2 = ec2_client(lab)
    tables = {}
    for table in ec2.describe_route_tables()["RouteTables"]:
        name = next((t["Value"] for t in table.get("Tags", []) if t["Key"] == "Name"), table["RouteTableId"])
        tables[name] = {
            "routes": sorted(
                (r.get("DestinationCidrBlock", ""), r.get("NetworkInterfaceId") or r.get("GatewayId") or "")
                for r in table["Routes"]
            ),
            "associations": sorted(a.get("SubnetId", "main") for a in table.get("Associations", [])),
        }
    enis = {
        e["NetworkInterfaceId"]: e["SourceDestCheck"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]
    }
    groups = {
        g["GroupName"]: sorted(json.dumps(p, sort_keys=True) for p in g["IpPermissions"])
        for g in ec2.describe_security_groups()["SecurityGroups"]
    }
    return {"tables": tables, "enis": enis, "groups": groups}


def azure_snapshot(lab: manager.LabUpResult) -> dict[str, Any]:
    network = network_client(lab)
    return {
        "route_tables": sorted(t.name for t in network.route_tables.list("hybrid-rg")),
        "subnets": sorted(
            (s.name, s.route_table.id if s.route_table else None)
            for s in network.subnets.list("hybrid-rg", "Hybrid-VNet")
        ),
        "nics": sorted((n.name, bool(n.enable_ip_forwarding)) for n in network.network_interfaces.list("hybrid-rg")),
        "nsg_rules": sorted(
            (g.name, r.name) for g in network.network_security_groups.list("hybrid-rg") for r in g.security_rules or []
        ),
    }


def processes(namespace: str) -> list[str]:
    """Names of the programs running in a lab host's namespace (sshd before up; SoftEther during)."""
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()
    names = set()
    for pid in pids:
        try:
            names.add(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue  # exited meanwhile
    return sorted(names)


def host_snapshot() -> dict[str, Any]:
    script = (
        "ip -4 -o addr show | awk '{print $2, $4}' | sort; echo --; ip -4 route show table all | sort; echo --;"
        " sysctl -n net.ipv4.ip_forward; echo --;"
        " ls -A /etc/systemd/system /etc/sysctl.d /etc/hybridctl /var/lib/softether 2>&1; echo --;"
        " ls /sys/class/net"
    )
    return {
        host: {"state": dataplane.exec_in(host, script, lab_dir=LAB_DIR).stdout, "processes": processes(host)}
        for host in MANAGED
    }


def snapshot(lab: manager.LabUpResult) -> dict[str, Any]:
    return {"aws": aws_snapshot(lab), "azure": azure_snapshot(lab), "hosts": host_snapshot()}


def test_down_returns_the_lab_to_its_bare_state(lab: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    result, env = lab
    ec2 = ec2_client(result)
    table = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": ["Hybrid-RT"]}])["RouteTables"][0]
    test_host_eni = ec2.describe_network_interfaces(
        Filters=[{"Name": "private-ip-address", "Values": ["192.168.20.10"]}]
    )["NetworkInterfaces"][0]["NetworkInterfaceId"]
    # A foreign route in a managed table: created outside hybridctl, must survive up and down.
    ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock=FOREIGN, NetworkInterfaceId=test_host_eni)
    before = snapshot(result)

    up = hybridctl("up", "-i", str(result.inventory), "--yes", env=env, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    during = snapshot(result)
    assert during != before  # up really changed clouds and hosts
    assert "vpnbridge" in during["hosts"]["hl-aws-br"]["processes"]
    assert FOREIGN in json.dumps(during["aws"]["tables"]["Hybrid-RT"])

    down = hybridctl("down", "-i", str(result.inventory), "--yes", env=env, timeout=600)
    assert down.returncode == 0, down.stdout + down.stderr
    after = snapshot(result)
    assert after["aws"] == before["aws"]
    assert after["azure"] == before["azure"]
    assert after["hosts"] == before["hosts"]
    assert FOREIGN in json.dumps(after["aws"]["tables"]["Hybrid-RT"])

    again = hybridctl("down", "-i", str(result.inventory), "--yes", "-o", "json", env=env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["changes"] == []  # idempotent: nothing left to remove
    assert snapshot(result) == before


def test_down_ends_by_listing_what_still_bills(lab: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    """An interface endpoint `hybridctl endpoint ensure` made bills by the hour: `down` names it, with its cost."""
    result, env = lab
    ec2 = ec2_client(result)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["Hybrid-VPC"]}])["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["Hybrid-Subnet"]}])["Subnets"][0]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName="com.amazonaws.ap-northeast-1.ec2",
        VpcEndpointType="Interface",
        PrivateDnsEnabled=False,
        SubnetIds=[subnet["SubnetId"]],
        TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": [{"Key": "Name", "Value": "hybridctl-ec2"}]}],
    )["VpcEndpoint"]["VpcEndpointId"]
    try:
        down = hybridctl("down", "-i", str(result.inventory), "--yes", "-o", "json", env=env, timeout=600)
        assert down.returncode == 0, down.stdout + down.stderr
        leftovers = json.loads(down.stdout)["billing_leftovers"]
        assert [(x["kind"], x["id"]) for x in leftovers] == [("vpc-endpoint", endpoint)]
        assert leftovers[0]["monthly_cost"] > 0 and endpoint in leftovers[0]["remove"]
        table = hybridctl("down", "-i", str(result.inventory), "--yes", env=env, timeout=600)
        assert table.returncode == 0, table.stdout + table.stderr
        assert "Still billing" in table.stdout and endpoint in table.stdout
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    clean = hybridctl("down", "-i", str(result.inventory), "--yes", env=env, timeout=600)
    assert "Nothing hybridctl created still bills" in clean.stdout, clean.stdout + clean.stderr
