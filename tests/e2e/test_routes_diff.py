"""`hybridctl routes diff` on the lab (issue 5): in sync after `up`; each kind of drift, injected by
hand through the real APIs / on the hosts, is named exactly (layer, object, expected, actual) with
exit 2; the next `up` repairs it and the diff is clean again. A broken inventory exits 1, never 2."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.mgmt.network import models as nm

from hybridctl.core.softether.vpncmd import check_transcript, parse_transcript, read_invocation
from hybridctl_lab import dataplane, manager
from hybridctl_lab.vpncmd_local import run_local
from tests.e2e.test_lab import ec2_client, free_port, hybridctl, inventory_of, network_client, require_lab

pytestmark = [pytest.mark.lab]

LAB_DIR = Path("/var/lib/hybridctl-lab-test-drift")


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[manager.LabUpResult, dict[str, str]]]:
    require_lab()
    state = tmp_path_factory.mktemp("state")
    env = {"HYBRIDCTL_STATE_DIR": str(state)}
    with dataplane.lab_lock():
        lab = manager.up(lab_dir=LAB_DIR, aws_port=free_port(), azure_port=free_port())
        try:
            done = hybridctl("up", "-i", str(lab.inventory), "--yes", env=env, timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr
            yield lab, env
        finally:
            manager.down(lab_dir=LAB_DIR)


def diff(lab: manager.LabUpResult, env: dict[str, str], *layers: str) -> tuple[int, dict[str, Any]]:
    args = ["routes", "diff", "-i", str(lab.inventory), "-o", "json"]
    for layer in layers:
        args += ["--layer", layer]
    done = hybridctl(*args, env=env, timeout=300)
    assert done.returncode in (0, 2), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def secret(lab: manager.LabUpResult, name: str) -> str:
    store = Path(inventory_of(lab)["secrets"]["store"])
    return str(json.loads(store.read_text())[name])


def vpncmd(lab: manager.LabUpResult, host: str, admin_secret: str, commands: list[str]) -> None:
    """Run vpncmd commands on a lab host as an operator would (admin password on stdin)."""
    invocation = read_invocation(commands, secret(lab, admin_secret))
    _, output = run_local(invocation, netns=host)
    check_transcript(parse_transcript(output), commands, target=host)


def route_table_id(ec2: Any, name: str) -> str:
    tables = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [name]}])["RouteTables"]
    return str(tables[0]["RouteTableId"])


def eni_id(ec2: Any, address: str) -> str:
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "private-ip-address", "Values": [address]}])
    return str(enis["NetworkInterfaces"][0]["NetworkInterfaceId"])


# -- drift injections ---------------------------------------------------------------------------


def aws_route_deleted(lab: manager.LabUpResult) -> None:
    ec2 = ec2_client(lab)
    ec2.delete_route(RouteTableId=route_table_id(ec2, "Hybrid-RT"), DestinationCidrBlock="192.168.1.0/24")


def aws_route_repointed(lab: manager.LabUpResult) -> None:
    ec2 = ec2_client(lab)
    ec2.replace_route(
        RouteTableId=route_table_id(ec2, "Hybrid-RT"),
        DestinationCidrBlock="192.168.30.0/24",
        NetworkInterfaceId=eni_id(ec2, "192.168.20.10"),
    )


def azure_next_hop_changed(lab: manager.LabUpResult) -> None:
    network = network_client(lab)
    route = nm.Route(
        {
            "properties": {
                "addressPrefix": "192.168.20.0/24",
                "nextHopType": "VirtualAppliance",
                "nextHopIpAddress": "192.168.30.10",
            }
        }
    )
    network.routes.begin_create_or_update("hybrid-rg", "Hybrid-RT", "hybridctl-192-168-20-0-24", route).result()


def host_route_deleted(lab: manager.LabUpResult) -> None:
    dataplane.exec_in("hl-az-br", ["ip", "route", "del", "192.168.21.0/24"], lab_dir=LAB_DIR)


def l3_switch_route_deleted(lab: manager.LabUpResult) -> None:
    vpncmd(
        lab,
        "hl-home-srv",
        "admin/vpnserver",
        [
            "RouterStop L3SW",
            "RouterTableDel L3SW /NETWORK:192.168.31.0/255.255.255.0 /GATEWAY:192.168.10.3 /METRIC:1",
            "RouterStart L3SW",
        ],
    )


def cascade_offline(lab: manager.LabUpResult) -> None:
    vpncmd(lab, "hl-aws-br", "admin/aws-bridge", ["Hub BRIDGE", "CascadeOffline HYBRID"])


def source_dest_check_on(lab: manager.LabUpResult) -> None:
    ec2 = ec2_client(lab)
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": ["aws-bridge-eni"]}])
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=enis["NetworkInterfaces"][0]["NetworkInterfaceId"], SourceDestCheck={"Value": True}
    )


# (name, injection, layer, key, attribute, expected, actual-predicate)
DRIFTS: list[
    tuple[str, Callable[[manager.LabUpResult], None], str, list[str], str, str | None, Callable[[str | None], bool]]
] = [
    (
        "aws route deleted",
        aws_route_deleted,
        "cloud-route",
        ["aws", "Hybrid-RT", "192.168.1.0/24"],
        "target",
        "eni:aws-bridge-eni",
        lambda actual: actual is None,
    ),
    (
        "aws route repointed",
        aws_route_repointed,
        "cloud-route",
        ["aws", "Hybrid-RT", "192.168.30.0/24"],
        "target",
        "eni:aws-bridge-eni",
        lambda actual: actual is not None and actual.startswith("eni:eni-"),
    ),
    (
        "azure next hop changed",
        azure_next_hop_changed,
        "cloud-route",
        ["azure", "Hybrid-RT", "192.168.20.0/24"],
        "target",
        "virtual-appliance:192.168.30.100",
        lambda actual: actual == "virtual-appliance:192.168.30.10",
    ),
    (
        "host route deleted",
        host_route_deleted,
        "host-route",
        ["azure-bridge", "192.168.21.0/24"],
        "via",
        "192.168.10.1",
        lambda actual: actual is None,
    ),
    (
        "l3 switch route deleted",
        l3_switch_route_deleted,
        "softether",
        ["vpnserver", "l3-route", "L3SW", "192.168.31.0/24"],
        "gateway",
        "192.168.10.3",
        lambda actual: actual is None,
    ),
    (
        "cascade offline",
        cascade_offline,
        "softether",
        ["aws-bridge", "cascade", "BRIDGE", "HYBRID"],
        "online",
        "true",
        lambda actual: actual == "false",
    ),
    (
        "source/dest check on",
        source_dest_check_on,
        "flag",
        ["aws", "aws-bridge-eni", "source_dest_check"],
        "value",
        "false",
        lambda actual: actual == "true",
    ),
]


def test_in_sync_after_up(overlay: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    lab, env = overlay
    code, document = diff(lab, env)
    assert code == 0, document
    assert document["in_sync"] is True
    assert document["drift"] == []


def test_bad_inventory_exits_1_not_2(overlay: tuple[manager.LabUpResult, dict[str, str]], tmp_path: Path) -> None:
    """terraform plan -detailed-exitcode: 2 is drift and nothing else, so a broken inventory is 1."""
    lab, env = overlay
    broken = inventory_of(lab) | {"no_such_section": 1}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    done = hybridctl("routes", "diff", "-i", str(path), "-o", "json", env=env, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    (problem,) = json.loads(done.stdout)["problems"]
    assert problem["file"] == str(path) and problem["field"] == "no_such_section"
    missing = hybridctl("routes", "diff", "-i", str(tmp_path / "missing.yaml"), env=env, timeout=120)
    assert missing.returncode == 1 and "not found" in missing.stderr, missing.stderr
    code, document = diff(lab, env)  # the real inventory still diffs clean
    assert code == 0 and document["in_sync"] is True, document


@pytest.mark.parametrize(
    ("name", "inject", "layer", "key", "attribute", "expected", "actual_ok"), DRIFTS, ids=[d[0] for d in DRIFTS]
)
def test_drift_is_named_and_repaired(
    overlay: tuple[manager.LabUpResult, dict[str, str]],
    name: str,
    inject: Callable[[manager.LabUpResult], None],
    layer: str,
    key: list[str],
    attribute: str,
    expected: str,
    actual_ok: Callable[[str | None], bool],
) -> None:
    lab, env = overlay
    inject(lab)
    code, document = diff(lab, env)
    assert code == 2, document
    matching = [d for d in document["drift"] if d["layer"] == layer and d["key"] == key]
    assert matching, json.dumps(document["drift"], indent=1)
    (item,) = matching
    assert item["expected"][attribute] == expected
    actual = (item["actual"] or {}).get(attribute)
    assert actual_ok(actual), item
    # Only this drift (and what follows from it on the same object) is reported.
    assert all(d["layer"] == layer for d in document["drift"]), document["drift"]
    repaired = hybridctl("up", "-i", str(lab.inventory), "--yes", env=env, timeout=600)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    code, document = diff(lab, env)
    assert code == 0, document


def test_layer_filter_narrows_the_diff(overlay: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    lab, env = overlay
    source_dest_check_on(lab)
    try:
        code, document = diff(lab, env, "cloud-route")
        assert code == 0 and document["layers"] == ["cloud-route"]
        code, document = diff(lab, env, "flag")
        assert code == 2 and {d["layer"] for d in document["drift"]} == {"flag"}
    finally:
        repaired = hybridctl("up", "-i", str(lab.inventory), "--yes", env=env, timeout=600)
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr


def test_foreign_colliding_routes_are_flagged_not_touched(overlay: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    """A more specific foreign route inside an overlay prefix steals traffic: shown as `!`, left alone."""
    lab, env = overlay
    ec2 = ec2_client(lab)
    table = route_table_id(ec2, "Hybrid-RT")
    ec2.create_route(
        RouteTableId=table, DestinationCidrBlock="192.168.30.128/25", NetworkInterfaceId=eni_id(ec2, "192.168.20.10")
    )
    try:
        code, document = diff(lab, env, "cloud-route")
        assert code == 2
        (item,) = [d for d in document["drift"] if d["key"] == ["aws", "Hybrid-RT", "192.168.30.128/25"]]
        assert item["symbol"] == "!" and "steals" in item["why"]
        done = hybridctl("up", "-i", str(lab.inventory), "--yes", env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
        assert any(r.get("DestinationCidrBlock") == "192.168.30.128/25" for r in routes)
    finally:
        ec2.delete_route(RouteTableId=table, DestinationCidrBlock="192.168.30.128/25")
