"""`hybridctl plan` loads only what it uses: no lab, no moto, no cloud SDK (it talks to nothing).

Each command runs in a new interpreter through the real entry point (tests/support/loaded.py).
The cloud commands' counterparts, which need the emulators, are in
tests/integration/test_command_imports.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO
from tests.support.loaded import AWS_SDK, AZURE_SDK, LAB, MOTO, modules_after

REFERENCE = str(REPO / "inventory" / "reference.yaml")


def test_plan_loads_no_lab_module_no_moto_and_no_cloud_sdk(tmp_path: Path) -> None:
    loaded = modules_after(["plan", "-i", REFERENCE], tmp_path)
    assert loaded.code == 0, loaded.output
    assert "hybridctl.core.planner.plan" in loaded.modules  # the command did run
    assert loaded.under(*LAB, *MOTO) == []
    assert loaded.under(*AZURE_SDK) == []
    assert loaded.under(*AWS_SDK) == []
    # No feature command module either: they load when one of their commands is named.
    assert loaded.under(*(f"hybridctl.cli.{m}" for m in ("ops", "budget", "vip", "cost", "graph", "init"))) == []


def test_plan_json_loads_no_lab_module_no_moto_and_no_cloud_sdk(tmp_path: Path) -> None:
    loaded = modules_after(["plan", "-i", REFERENCE, "-o", "json"], tmp_path)
    assert loaded.code == 0, loaded.output
    assert loaded.under(*LAB, *MOTO, *AZURE_SDK, *AWS_SDK) == []


def test_top_level_help_lists_the_lab_without_loading_it(tmp_path: Path) -> None:
    """Listing `lab` imports the lab's command module only: not its manager, emulators or moto."""
    loaded = modules_after(["--help"], tmp_path)
    assert loaded.code == 0, loaded.output
    assert " lab " in loaded.output
    assert loaded.under(*LAB) == ["hybridctl_lab", "hybridctl_lab.cli", "hybridctl_lab.topology",
                                  "hybridctl_lab.vip_scenario"]
    assert loaded.under(*MOTO, *AZURE_SDK, *AWS_SDK) == []
