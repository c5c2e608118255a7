"""The one exit map and the Environment: commands run with their own consoles and stdin, no globals."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from hybridctl.cli.environment import Environment
from hybridctl.cli.exit import CODES, DETAILED_EXITCODE, exit_code, run, status_of
from hybridctl.cli.main import app
from hybridctl.core.diff import diff
from hybridctl.core.errors import (
    ExitStatus,
    HybridctlError,
    InputError,
    PreconditionError,
    Problem,
    RemoteError,
    UnsupportedTargets,
)
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.render.apply import apply_document
from hybridctl.render.plan import plan_document
from tests.conftest import REPO

REFERENCE = REPO / "inventory" / "reference.yaml"


class Captured(Environment):
    """An Environment writing to strings, with the stdin a test gives it."""

    def __init__(self, stdin: str = "", tty: bool = False) -> None:
        super().__init__(
            stdout=Console(file=io.StringIO(), width=200, color_system=None),
            stderr=Console(file=io.StringIO(), width=200, color_system=None),
            stdin=io.StringIO(stdin),
            stdin_isatty=tty,
        )

    @property
    def out(self) -> str:
        file = self.stdout.file
        assert isinstance(file, io.StringIO)
        return file.getvalue()

    @property
    def err(self) -> str:
        file = self.stderr.file
        assert isinstance(file, io.StringIO)
        return file.getvalue()


@pytest.fixture
def bad_inventory(tmp_path: object) -> str:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nsites: [this is not a site]\n")
    return str(path)


# -- the map --------------------------------------------------------------------------------------


def test_every_status_has_one_exit_code_per_policy() -> None:
    assert set(CODES) == set(ExitStatus) == set(DETAILED_EXITCODE)
    assert {s.name: exit_code(s) for s in ExitStatus} == {
        "OK": 0,
        "ERROR": 1,
        "BAD_INPUT": 2,
        "DRIFT": 2,
        "THRESHOLD": 3,
        "INTERRUPTED": 130,
    }
    # routes diff: terraform plan -detailed-exitcode; 2 is drift and nothing else.
    routes_diff = {s.name: exit_code(s, ("routes", "diff")) for s in ExitStatus}
    assert routes_diff == {"OK": 0, "ERROR": 1, "BAD_INPUT": 1, "DRIFT": 2, "THRESHOLD": 3, "INTERRUPTED": 130}
    assert [s for s in ExitStatus if exit_code(s, ("routes", "diff")) == 2] == [ExitStatus.DRIFT]


def test_drift_and_bad_input_are_different_members() -> None:
    assert ExitStatus.DRIFT is not ExitStatus.BAD_INPUT
    assert ExitStatus.DRIFT != ExitStatus.BAD_INPUT


def test_errors_carry_their_status() -> None:
    bad = InputError([Problem("inv.yaml", "vips[x].address", "inside the VPC", "move it", 3)])
    assert status_of(bad) is ExitStatus.BAD_INPUT
    assert status_of(RemoteError("aws", "refused")) is ExitStatus.ERROR
    assert status_of(PreconditionError("not root")) is ExitStatus.ERROR
    assert status_of(UnsupportedTargets({"h": "CentOS 7"})) is ExitStatus.ERROR
    assert status_of(KeyboardInterrupt()) is ExitStatus.INTERRUPTED
    assert status_of(ValueError("a bug")) is ExitStatus.ERROR


# -- through the runner ---------------------------------------------------------------------------


def test_routes_diff_bad_inventory_exits_1_and_touches_nothing(bad_inventory: str) -> None:
    env = Captured()
    assert run(app, ["routes", "diff", "-i", bad_inventory], env) == 1
    assert env.command == ("routes", "diff")
    assert "bad.yaml" in env.err and env.out == ""
    env = Captured()
    assert run(app, ["routes", "diff", "-i", bad_inventory, "-o", "json"], env) == 1
    document = json.loads(env.out)
    assert document["error"] == "bad input" and document["problems"][0]["file"] == bad_inventory


def test_routes_diff_missing_inventory_and_bad_flags_exit_1(tmp_path: object) -> None:
    assert run(app, ["routes", "diff", "-i", f"{tmp_path}/missing.yaml"], Captured()) == 1
    assert run(app, ["routes", "diff", "-i", str(REFERENCE), "--layer", "nonsense"], Captured()) == 1
    assert run(app, ["routes", "diff", "--no-such-option"], Captured()) == 1


def test_elsewhere_bad_input_exits_2(bad_inventory: str) -> None:
    env = Captured()
    assert run(app, ["plan", "-i", bad_inventory], env) == 2
    assert env.command == ("plan",) and "bad.yaml" in env.err
    assert run(app, ["plan", "-i", str(REFERENCE), "--layer", "nonsense"], Captured()) == 2
    assert run(app, ["up", "-i", bad_inventory, "--yes"], Captured()) == 2
    for words in (["budget", "status"], ["vip", "status"], ["doctor"]):
        env = Captured()
        assert run(app, [*words, "-i", bad_inventory], env) == 2, env.err
        assert env.command == tuple(words)


def test_plan_prints_to_the_environment_only(capsys: pytest.CaptureFixture[str]) -> None:
    env = Captured()
    assert run(app, ["plan", "-i", str(REFERENCE), "-o", "json"], env) == 0
    desired = plan_loaded(load_inventory(REFERENCE))
    assert json.loads(env.out) == plan_document(desired, diff(desired.resources(), []))
    assert capsys.readouterr() == ("", "")  # nothing went to the process's own streams


def test_schema_writes_plain_json_to_the_environment() -> None:
    env = Captured()
    assert run(app, ["schema"], env) == 0
    assert json.loads(env.out)["title"] == "hybridctl inventory"


# -- confirming -----------------------------------------------------------------------------------


def test_confirm_without_a_terminal_refuses() -> None:
    env = Captured(stdin="y\n", tty=False)
    with pytest.raises(HybridctlError, match="pass --yes"):
        env.confirm("Apply these 3 changes?")


@pytest.mark.parametrize(("answer", "agreed"), [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False)])
def test_confirm_reads_the_environment_stdin(answer: str, agreed: bool) -> None:
    env = Captured(stdin=answer, tty=True)
    assert env.confirm("Apply these 3 changes?") is agreed
    assert "Apply these 3 changes? [y/N]" in env.err and env.out == ""  # stdout stays a clean document


def test_environment_asks_the_stream_whether_it_is_a_terminal() -> None:
    assert Environment(stdin=io.StringIO()).stdin_isatty is False
    assert Captured().stdout_isatty is False


# -- one document per concept ---------------------------------------------------------------------


def test_up_document_is_the_plan_document_plus_what_happened() -> None:
    desired = plan_loaded(load_inventory(REFERENCE))
    changes = diff(desired.resources(), [])
    calls = {"aws": {"reads": 3, "mutations": 0}}
    up = apply_document(changes, {"azure": "timed out"}, calls, None, desired)
    plan = plan_document(desired, changes)
    assert {k: up[k] for k in plan} == plan
    assert up["unreachable"] == {"azure": "timed out"} and up["calls"] == calls
    down = apply_document(changes, {}, calls)
    assert set(down) == {"changes", "summary", "unreachable", "calls"}
    assert down["changes"] == plan["changes"]


def test_change_document_names_expected_and_actual() -> None:
    from hybridctl.core.planner.desired import res
    from hybridctl.render.apply import drift_document
    from hybridctl.render.plan import change_document

    key = ("aws", "Hybrid-RT", "10.1.0.0/24")
    (change,) = diff([res("cloud-route", key, target="eni:a")], [res("cloud-route", key, target="eni:b")])
    assert change_document(change) == {
        "action": change.action,
        "layer": "cloud-route",
        "key": list(key),
        "expected": {"target": "eni:a"},
        "actual": {"target": "eni:b"},
        "why": change.why,
    }
    drift = drift_document(change)
    assert {k: drift[k] for k in change_document(change)} == change_document(change)
    assert drift["differs"] == {"target": {"expected": "eni:a", "actual": "eni:b"}}
