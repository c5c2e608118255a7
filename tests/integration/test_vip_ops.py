"""VIP status / move / ensure against the lab's AWS emulator, with real boto3 over HTTP.

Reference section 4 is built with plain boto3 (:func:`hybridctl_lab.vip_scenario.build`); the
emulator's own counters check which calls were made. One emulator per module (port 0);
moto's state is process-wide, so every test resets it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.core.errors import InputError, RemoteError
from hybridctl.core.inventory.load import LoadedInventory
from hybridctl.features.vip import ops
from hybridctl.features.vip.aws import AwsApi
from hybridctl.features.vip.checks import Status, UnsafeError
from hybridctl.features.vip.read import read_context
from hybridctl_lab import vip_scenario as scenario
from tests.support.emulators import load_vip_inventory, vip_api

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_aws")]
VIP = "20.0.0.100/32"


Write = Callable[..., LoadedInventory]


@pytest.fixture
def write_inventory(tmp_path: Path, aws_emulator: Any) -> Write:
    """(vips=None, edit=None) -> the loaded, VIP-checked inventory of reference section 4."""
    return functools.partial(load_vip_inventory, tmp_path, aws_emulator)


@pytest.fixture
def api(aws_emulator: Any, tmp_path: Path) -> Iterator[AwsApi]:
    with vip_api(aws_emulator, tmp_path, max_attempts=4) as client:
        yield client


def _targets(ec2: Any, vpc_id: str) -> dict[str, str]:
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    out = {}
    for table in tables:
        for route in table["Routes"]:
            if route.get("DestinationCidrBlock") == VIP:
                out[table["RouteTableId"]] = route.get("NetworkInterfaceId", "")
    return out


def test_status_reads_every_table_and_names_the_active_node(ec2: Any, write_inventory: Write, api: AwsApi) -> None:
    built = scenario.build(ec2)
    vip = write_inventory().inventory.vips[0]
    status = ops.status(api, vip)
    assert status.active_node == "node1"
    assert status.in_sync
    assert {t.table_id for t in status.tables} == set(built.tables.values())
    assert all(t.node == "node1" and t.target == built.enis["node1"] for t in status.tables)
    assert {c.id: c.status for c in status.checks}["collision"] is Status.ok
    # reads only
    assert not any(not k.split(":")[1].startswith("Describe") for k in status.calls)


def test_move_repoints_every_table_in_parallel_and_verifies(
    aws_emulator: Any, ec2: Any, write_inventory: Write, api: AwsApi
) -> None:
    built = scenario.build(ec2, extra_tables=7)
    vip = write_inventory().inventory.vips[0]
    aws_emulator.reset_call_counts()
    result = ops.move(api, vip, "node2")
    assert result.ok
    assert _targets(ec2, built.vpc_id) == {t: built.enis["node2"] for t in built.tables.values()}
    assert len(result.tables) == len(built.tables) == 10
    assert all(t.op == "replace" and t.after == built.enis["node2"] for t in result.tables)
    # one ReplaceRoute per table, nothing else mutating
    assert aws_emulator.call_count("ec2", "ReplaceRoute") == 10
    assert aws_emulator.call_count(kind="mutating") == 10
    # moving again is a no-op
    aws_emulator.reset_call_counts()
    again = ops.move(api, vip, "node2")
    assert again.tables == []
    assert aws_emulator.call_count(kind="mutating") == 0


def test_move_creates_the_route_in_declared_tables_that_lack_it(ec2: Any, write_inventory: Write, api: AwsApi) -> None:
    built = scenario.build(ec2)
    ec2.delete_route(RouteTableId=built.tables["Route-C"], DestinationCidrBlock=VIP)
    vip = write_inventory().inventory.vips[0]
    result = ops.move(api, vip, "node2")
    ops_by_table = {t.table_id: t.op for t in result.tables}
    assert ops_by_table[built.tables["Route-C"]] == "create"
    assert ops_by_table[built.tables["Main"]] == "replace"
    assert _targets(ec2, built.vpc_id)[built.tables["Route-C"]] == built.enis["node2"]


def test_move_with_declared_tables_leaves_no_holder_behind(ec2: Any, write_inventory: Write, api: AwsApi) -> None:
    """Tables that hold the VIP but are not declared are repointed too (else traffic splits)."""
    built = scenario.build(ec2)
    ec2.delete_route(RouteTableId=built.tables["Route-C"], DestinationCidrBlock=VIP)
    loaded = write_inventory(
        vips=[
            {
                "name": "ha-vip",
                "address": "20.0.0.100",
                "vpc": "VIP-VPC",
                "route_tables": ["Route-A"],
                "nodes": [{"name": "node1", "eni": "node1-eni"}, {"name": "node2", "eni": built.enis["node2"]}],
            }
        ]
    )
    result = ops.move(api, loaded.inventory.vips[0], "node2")
    targets = _targets(ec2, built.vpc_id)
    assert targets == {built.tables["Main"]: built.enis["node2"], built.tables["Route-A"]: built.enis["node2"]}
    assert {t.op for t in result.tables} == {"replace"}


def test_move_survives_a_route_deleted_after_the_read(ec2: Any, write_inventory: Write, api: AwsApi) -> None:
    built = scenario.build(ec2)
    vip = write_inventory().inventory.vips[0]
    ctx = read_context(api, vip)
    ec2.delete_route(RouteTableId=built.tables["Route-A"], DestinationCidrBlock=VIP)
    result = ops.move(api, vip, "node2", ctx=ctx)
    by_table = {t.table_id: t for t in result.tables}
    assert by_table[built.tables["Route-A"]].op == "create"  # replace hit InvalidRoute.NotFound, then created
    assert _targets(ec2, built.vpc_id)[built.tables["Route-A"]] == built.enis["node2"]


def test_throttled_writes_are_retried(aws_emulator: Any, ec2: Any, write_inventory: Write, api: AwsApi) -> None:
    scenario.build(ec2)
    vip = write_inventory().inventory.vips[0]
    aws_emulator.reset_call_counts()
    aws_emulator.inject_fault("ec2", "ReplaceRoute", count=2)
    result = ops.move(api, vip, "node2")
    assert result.ok
    stats = {(s.action): s for s in aws_emulator.call_counts() if s.service == "ec2"}
    assert stats["ReplaceRoute"].throttled == 2
    assert stats["ReplaceRoute"].count == 3 + 2


def test_collision_in_another_vpc_is_refused_with_the_offenders(
    aws_emulator: Any, ec2: Any, write_inventory: Write, api: AwsApi
) -> None:
    built = scenario.build(ec2, collision_vpc=True)
    vip = write_inventory().inventory.vips[0]
    aws_emulator.reset_call_counts()
    with pytest.raises(UnsafeError) as caught:
        ops.move(api, vip, "node2")
    assert caught.value.ids == {"collision"}
    check = caught.value.checks[0]
    assert any(built.collision_table_id in d and built.collision_vpc_id in d for d in check.details)
    assert aws_emulator.call_count(kind="mutating") == 0
    assert set(_targets(ec2, built.vpc_id).values()) == {built.enis["node1"]}
    # told to proceed: our VPC moves, the other VPC's table is never touched
    result = ops.move(api, vip, "node2", allow_collisions=True)
    assert {c.id: c.status for c in result.checks}["collision"] is Status.warn
    other = ec2.describe_route_tables(RouteTableIds=[built.collision_table_id])["RouteTables"][0]
    assert [r["NetworkInterfaceId"] for r in other["Routes"] if r.get("DestinationCidrBlock") == VIP] != [
        built.enis["node2"]
    ]


def test_vip_inside_the_vpc_is_refused(ec2: Any, write_inventory: Write, api: AwsApi) -> None:
    scenario.build(ec2, vip="10.0.200.100")
    loaded = write_inventory(
        vips=[
            {
                "name": "inside",
                "address": "10.0.200.100",
                "vpc": "VIP-VPC",
                "nodes": [{"name": "node1", "eni": "node1-eni"}, {"name": "node2", "eni": "node2-eni"}],
            }
        ]
    )
    with pytest.raises(UnsafeError) as caught:
        ops.move(api, loaded.inventory.vips[0], "node2")
    assert "vip-outside-vpc" in caught.value.ids
    assert "10.0.0.0/16" in caught.value.checks[0].message


def test_source_dest_check_on_is_refused_and_ensure_fixes_it(
    aws_emulator: Any, ec2: Any, write_inventory: Write, api: AwsApi
) -> None:
    built = scenario.build(ec2, source_dest_check=True)
    vip = write_inventory().inventory.vips[0]
    with pytest.raises(UnsafeError) as caught:
        ops.move(api, vip, "node2")
    assert caught.value.ids == {"source-dest-check"}
    result = ops.ensure(api, vip)
    assert result.source_dest_check == {built.enis["node1"]: "disabled", built.enis["node2"]: "disabled"}
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=list(result.source_dest_check))["NetworkInterfaces"]
    assert [e["SourceDestCheck"] for e in enis] == [False, False]
    assert ops.move(api, vip, "node2").ok


def test_ensure_is_idempotent_and_builds_section_5(
    aws_emulator: Any, ec2: Any, write_inventory: Write, api: AwsApi
) -> None:
    built = scenario.build(ec2, transit_gateway=True)
    for table in built.tables.values():
        ec2.delete_route(RouteTableId=table, DestinationCidrBlock=VIP)

    def edit(doc: dict[str, Any]) -> None:
        doc["vips"][0]["transit_gateway"] = {
            "route_table": "VIP-VPC-tgw-rt",
            "attachment": built.tgw_attachment_id,
            "onprem_networks": ["192.168.1.0/24"],
        }

    vip = write_inventory(edit=edit).inventory.vips[0]
    result = ops.ensure(api, vip, "node2")
    assert result.ok
    assert _targets(ec2, built.vpc_id) == {t: built.enis["node2"] for t in built.tables.values()}
    assert result.tgw is not None and result.tgw.op == "create"
    routes = ec2.search_transit_gateway_routes(
        TransitGatewayRouteTableId=built.tgw_route_table_id,
        Filters=[{"Name": "route-search.exact-match", "Values": [VIP]}],
    )["Routes"]
    assert routes[0]["TransitGatewayAttachments"][0]["TransitGatewayAttachmentId"] == built.tgw_attachment_id
    onprem = {
        t["RouteTableId"]: [
            r.get("TransitGatewayId") for r in t["Routes"] if r["DestinationCidrBlock"] == "192.168.1.0/24"
        ]
        for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [built.vpc_id]}])["RouteTables"]
    }
    assert onprem == {t: [built.tgw_id] for t in built.tables.values()}
    assert ops.status(api, vip).in_sync
    aws_emulator.reset_call_counts()
    again = ops.ensure(api, vip)
    assert again.ok and again.tables == [] and again.onprem == [] and again.tgw is not None
    assert again.tgw.op == "none"
    assert aws_emulator.call_count(kind="mutating") == 0


def test_onprem_route_to_another_target_is_left_and_reported(ec2: Any, write_inventory: Write, api: AwsApi) -> None:
    built = scenario.build(ec2, transit_gateway=True)
    ec2.create_route(
        RouteTableId=built.tables["Main"],
        DestinationCidrBlock="192.168.1.0/24",
        NetworkInterfaceId=built.enis["client"],
    )

    def edit(doc: dict[str, Any]) -> None:
        doc["vips"][0]["transit_gateway"] = {
            "route_table": built.tgw_route_table_id,
            "attachment": "VIP-VPC-attach",
            "onprem_networks": ["192.168.1.0/24"],
        }

    result = ops.ensure(api, write_inventory(edit=edit).inventory.vips[0])
    assert [c.id for c in result.checks if c.status is Status.warn] == ["onprem-route"]
    assert len(result.onprem) == 2  # Route-A and Route-C got it; Main kept the client's route


def test_unknown_names_are_remote_errors_naming_the_field(ec2: Any, write_inventory: Write, api: AwsApi) -> None:
    scenario.build(ec2)
    loaded = write_inventory(
        vips=[
            {
                "name": "ha-vip",
                "address": "20.0.0.100",
                "vpc": "VIP-VPC",
                "nodes": [{"name": "node1", "eni": "node1-eni"}, {"name": "node3", "eni": "no-such-eni"}],
            }
        ]
    )
    with pytest.raises(RemoteError) as caught:
        ops.status(api, loaded.inventory.vips[0])
    assert "vips[ha-vip].nodes[node3].eni" in str(caught.value)
    with pytest.raises(RemoteError, match="no node 'node9'"):
        ops.move(api, loaded.inventory.vips[0], "node9")


def test_same_vip_twice_in_one_inventory_is_bad_input(write_inventory: Write) -> None:
    vip = {"address": "20.0.0.100", "vpc": "VIP-VPC", "nodes": [{"name": "n1", "eni": "eni-1"}]}
    with pytest.raises(InputError) as caught:
        write_inventory(vips=[{"name": "a", **vip}, {"name": "b", **vip, "vpc": "Other"}])
    problem = caught.value.problems[0]
    assert problem.field == "vips[b].address" and problem.line is not None
    assert "unique per account and region" in problem.fix


def test_cli_move_and_status(ec2: Any, write_inventory: Write, capsys: pytest.CaptureFixture[str]) -> None:
    from hybridctl.cli.main import main

    built = scenario.build(ec2)
    loaded = write_inventory()
    with pytest.raises(SystemExit) as code:
        main(["vip", "move", "ha-vip", "--to", "node2", "-i", str(loaded.path), "-o", "json"])
    assert code.value.code in (0, None)
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["ok"] and document["node"] == "node2" and len(document["tables"]) == 3
    with pytest.raises(SystemExit) as code:
        main(["vip", "status", "-i", str(loaded.path), "-o", "json"])
    assert code.value.code == 0
    status = yaml.safe_load(capsys.readouterr().out)["vips"][0]
    assert status["active_node"] == "node2" and status["in_sync"]
    # split the VIP by hand: status says so with exit 2
    ec2.replace_route(
        RouteTableId=built.tables["Main"], DestinationCidrBlock=VIP, NetworkInterfaceId=built.enis["node1"]
    )
    with pytest.raises(SystemExit) as code:
        main(["vip", "status", "-i", str(loaded.path), "-o", "json"])
    assert code.value.code == 2
    assert not yaml.safe_load(capsys.readouterr().out)["vips"][0]["in_sync"]


def test_cli_collision_refusal_exit_code_and_listing(ec2: Any, write_inventory: Write, capsys: Any) -> None:
    from hybridctl.cli.main import main

    built = scenario.build(ec2, collision_vpc=True)
    loaded = write_inventory()
    with pytest.raises(SystemExit) as code:
        main(["vip", "move", "ha-vip", "--to", "node2", "-i", str(loaded.path)])
    assert code.value.code == 1
    err = capsys.readouterr().err
    assert "refused" in err and built.collision_table_id in err
