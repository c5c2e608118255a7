"""Commands loaded on first use: the feature command modules, and `hybridctl lab` from the
`hybridctl.plugins` entry point, which says how to install it when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridctl.cli.main import _Commands, main
from hybridctl.cli.plugins import module_commands
from tests.support.loaded import LAB, modules_after


def test_the_lab_group_runs_through_the_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["lab", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("up", "down", "status", "exec", "pings"):
        assert f" {command} " in out, out


@pytest.mark.parametrize("args", [["lab", "status"], ["lab", "--help"], ["lab"], ["lab", "up", "-o", "json"]])
def test_without_the_lab_extra_lab_says_how_to_install_it(args: list[str], tmp_path: Path) -> None:
    loaded = modules_after(args, tmp_path, absent=["moto"])
    assert loaded.code == 2, loaded.output
    assert loaded.output.count("hybridctl lab is not available (missing Python package moto)") == 1, loaded.output
    assert "pipx install --force 'hybridctl[lab]'" in loaded.output
    assert loaded.under(*LAB) == ["hybridctl_lab", "hybridctl_lab.cli", "hybridctl_lab.topology",
                                  "hybridctl_lab.vip_scenario"]  # nothing past the check


def test_without_the_lab_extra_help_still_lists_lab_as_not_installed(tmp_path: Path) -> None:
    loaded = modules_after(["--help"], tmp_path, absent=["moto"])
    assert loaded.code == 0, loaded.output
    line = next(line for line in loaded.output.splitlines() if " lab " in line)
    assert "(not installed)" in line


def test_other_commands_work_without_the_lab_extra(tmp_path: Path) -> None:
    loaded = modules_after(["schema"], tmp_path, absent=["moto"])
    assert loaded.code == 0, loaded.output
    assert '"title": "hybridctl inventory"' in loaded.output


@pytest.mark.parametrize("module_name", list(_Commands.modules))
def test_each_command_module_registers_the_names_main_expects(module_name: str) -> None:
    assert sorted(module_commands(module_name)) == sorted(_Commands.modules[module_name])


def test_a_mistyped_command_is_suggested_from_every_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["budgt", "status"])
    assert exited.value.code == 2
    assert "Did you mean 'budget'?" in capsys.readouterr().err
