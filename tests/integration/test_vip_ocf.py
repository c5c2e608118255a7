"""OCF contract against the AWS emulator: every action's exit code in the states the spec names.

start: 0 when started and when already started; 2 (ERR_ARGS) when this node cannot hold it
(source/dest check on); 6 (ERR_CONFIGURED) when the config is wrong everywhere (collision);
4 (ERR_PERM) when IAM refuses; 1 (ERR_GENERIC) when the API keeps failing.
stop: 0 when stopped and when already stopped.
monitor: 7 when stopped (probe), 0 when running here, 1 when started but the routes moved
away; the API is read at most once per monitor_interval.
Address management (interface) is exercised in test_vip_ocf_address.py (needs root).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hybridctl.features.vip import ocf
from hybridctl_lab import vip_scenario as scenario
from tests.support.emulators import write_vip_inventory

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_aws")]
VIP = "20.0.0.100/32"


@pytest.fixture
def inventory(tmp_path: Path, aws_emulator: Any) -> Path:
    def fail_fast(doc: dict[str, Any]) -> None:
        doc["aws"]["max_attempts"] = 2

    return write_vip_inventory(tmp_path, aws_emulator, edit=fail_fast)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


Run = Callable[..., ocf.AgentResult]


@pytest.fixture
def run(tmp_path: Path, inventory: Path) -> tuple[Run, Clock]:
    clock = Clock()

    def agent(action: str, node: str = "node1", **params: str) -> ocf.AgentResult:
        env = {
            "OCF_RESKEY_inventory": str(inventory),
            "OCF_RESKEY_vip": "ha-vip",
            "OCF_RESKEY_node": node,
            "OCF_RESKEY_state_dir": str(tmp_path / f"run-{node}"),  # each node has its own /run
        }
        env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
        return ocf.Agent(env, clock=clock).run(action)

    return agent, clock


def _targets(ec2: Any, vpc_id: str) -> set[str]:
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    return {
        r.get("NetworkInterfaceId", "") for t in tables for r in t["Routes"] if r.get("DestinationCidrBlock") == VIP
    }


def test_lifecycle_exit_codes(aws_emulator: Any, ec2: Any, run: tuple[Run, Clock]) -> None:
    agent, clock = run
    built = scenario.build(ec2)
    assert agent("monitor", "node2").code == ocf.OCF_NOT_RUNNING  # probe: never started
    assert agent("start", "node2").code == ocf.OCF_SUCCESS
    assert _targets(ec2, built.vpc_id) == {built.enis["node2"]}
    assert agent("start", "node2").code == ocf.OCF_SUCCESS  # already started
    aws_emulator.reset_call_counts()
    assert agent("monitor", "node2").code == ocf.OCF_SUCCESS
    assert aws_emulator.call_count() == 0  # within monitor_interval of start: cached verdict
    clock.now += 11
    assert agent("monitor", "node2").code == ocf.OCF_SUCCESS
    assert aws_emulator.call_count("ec2", "DescribeRouteTables") == 1
    assert aws_emulator.call_count() == 1  # one filtered read, nothing else
    assert agent("stop", "node2").code == ocf.OCF_SUCCESS
    assert agent("stop", "node2").code == ocf.OCF_SUCCESS  # already stopped
    assert agent("monitor", "node2").code == ocf.OCF_NOT_RUNNING


def test_monitor_fails_when_the_vip_moved_away_and_is_rate_bounded(
    aws_emulator: Any, ec2: Any, run: tuple[Run, Clock]
) -> None:
    agent, clock = run
    built = scenario.build(ec2)
    assert agent("start", "node1").code == ocf.OCF_SUCCESS
    assert agent("start", "node2").code == ocf.OCF_SUCCESS  # failover without stopping node1 (split brain)
    # node1 still answers from its cache until the interval passes...
    aws_emulator.reset_call_counts()
    for _ in range(5):
        assert agent("monitor", "node1").code == ocf.OCF_SUCCESS
    assert aws_emulator.call_count() == 0
    # ...then reads once and reports the failure, and keeps it cached for the interval
    clock.now += 10
    result = agent("monitor", "node1")
    assert result.code == ocf.OCF_ERR_GENERIC
    assert any(built.enis["node2"] in line for line in result.log)
    assert agent("monitor", "node1").code == ocf.OCF_ERR_GENERIC
    assert aws_emulator.call_count() == 1
    assert agent("monitor", "node2").code == ocf.OCF_SUCCESS


def test_check_level_10_bypasses_the_cache(aws_emulator: Any, ec2: Any, run: tuple[Run, Clock], tmp_path: Path) -> None:
    agent, _ = run
    scenario.build(ec2)
    assert agent("start", "node1").code == ocf.OCF_SUCCESS
    aws_emulator.reset_call_counts()
    assert agent("monitor", "node1").code == ocf.OCF_SUCCESS
    assert aws_emulator.call_count() == 0
    env = {
        "OCF_RESKEY_inventory": str(tmp_path / "inventory.yaml"),
        "OCF_RESKEY_vip": "ha-vip",
        "OCF_RESKEY_node": "node1",
        "OCF_RESKEY_state_dir": str(tmp_path / "run-node1"),
        "OCF_CHECK_LEVEL": "10",
    }
    assert ocf.run_agent("monitor", env).code == ocf.OCF_SUCCESS
    assert aws_emulator.call_count("ec2", "DescribeRouteTables") == 1


def test_monitor_interval_parameter_overrides_the_inventory(
    aws_emulator: Any, ec2: Any, run: tuple[Run, Clock]
) -> None:
    agent, clock = run
    scenario.build(ec2)
    assert agent("start", "node1", monitor_interval="0").code == ocf.OCF_SUCCESS
    aws_emulator.reset_call_counts()
    clock.now += 0.5
    for _ in range(3):
        assert agent("monitor", "node1", monitor_interval="0").code == ocf.OCF_SUCCESS
    assert aws_emulator.call_count("ec2", "DescribeRouteTables") == 3


def test_start_with_source_dest_check_on_is_an_argument_error(
    aws_emulator: Any, ec2: Any, run: tuple[Run, Clock]
) -> None:
    agent, _ = run
    built = scenario.build(ec2, source_dest_check=True)
    aws_emulator.reset_call_counts()
    result = agent("start", "node2")
    assert result.code == ocf.OCF_ERR_ARGS  # this node only: Pacemaker bans the node
    assert any("source-dest-check" in line for line in result.log)
    assert aws_emulator.call_count(kind="mutating") == 0
    assert _targets(ec2, built.vpc_id) == {built.enis["node1"]}
    assert agent("monitor", "node2").code == ocf.OCF_NOT_RUNNING


def test_start_with_a_collision_is_not_configured(aws_emulator: Any, ec2: Any, run: tuple[Run, Clock]) -> None:
    agent, _ = run
    scenario.build(ec2, collision_vpc=True)
    aws_emulator.reset_call_counts()
    result = agent("start", "node2")
    assert result.code == ocf.OCF_ERR_CONFIGURED
    assert any("collision" in line for line in result.log)
    assert aws_emulator.call_count(kind="mutating") == 0
    assert agent("start", "node2", allow_collisions="true").code == ocf.OCF_SUCCESS


def test_start_refused_by_iam_is_a_permission_error(aws_emulator: Any, ec2: Any, run: tuple[Run, Clock]) -> None:
    agent, _ = run
    scenario.build(ec2)
    aws_emulator.inject_fault("ec2", "ReplaceRoute", count=10, code="UnauthorizedOperation", status=403)
    result = agent("start", "node2")
    assert result.code == ocf.OCF_ERR_PERM
    assert any("UnauthorizedOperation" in line for line in result.log)
    assert agent("monitor", "node2").code == ocf.OCF_NOT_RUNNING


def test_start_with_the_api_failing_is_a_generic_error(aws_emulator: Any, ec2: Any, run: tuple[Run, Clock]) -> None:
    agent, clock = run
    scenario.build(ec2)
    aws_emulator.inject_fault("ec2", "ReplaceRoute", count=40)  # throttled past max_attempts (2)
    assert agent("start", "node2").code == ocf.OCF_ERR_GENERIC
    aws_emulator.clear_faults()
    assert agent("start", "node2").code == ocf.OCF_SUCCESS
    # monitor's read failing is a generic error too
    aws_emulator.inject_fault("ec2", "DescribeRouteTables", count=40)
    clock.now += 60
    assert agent("monitor", "node2").code == ocf.OCF_ERR_GENERIC
