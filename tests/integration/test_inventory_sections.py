"""Every section of the inventory is checked by every command that loads it, before any call.

The inventory points at the lab's AWS emulator (moto + extensions) and ARM emulator, and its SSH
hosts do not resolve: a command that got past validation would call one of them. The emulators
count what they receive, so "nothing remote touched" is measured, not assumed.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from hybridctl.cli.main import main
from tests.conftest import FIXTURES
from tests.support.emulators import azure_template_values, write_aws_credentials, write_client_secret

if TYPE_CHECKING:
    from hybridctl_lab.aws_emulator import AwsEmulator
    from hybridctl_lab.azure_emulator import AzureEmulator

pytestmark = pytest.mark.integration

# A VIP inside its VPC's own subnet: the VPC's local route would always win over VIP/32.
BAD_VIP = {
    "name": "inside-vip",
    "address": "192.168.20.50",
    "vpc": "Hybrid-VPC",
    "nodes": [{"name": "node1", "eni": "node1-eni"}, {"name": "node2", "eni": "node2-eni"}],
}

# (command, exit code): `routes diff` keeps 2 for drift, so bad input is its error code 1 (README).
COMMANDS = [
    (["plan"], 2),
    (["up", "--yes"], 2),
    (["up", "--dry-run"], 2),
    (["down", "--yes"], 2),
    (["routes", "diff"], 1),
    (["check"], 2),
    (["budget", "status"], 2),
    (["budget", "set"], 2),
    (["vip", "status"], 2),
    (["doctor"], 2),
]


def _write(tmp_path: Path, aws: AwsEmulator, az: AzureEmulator, edit: Any) -> Path:
    credentials = write_aws_credentials(tmp_path / "credentials", "hybridctl-lab")
    secret = write_client_secret(tmp_path / "client_secret", az.client_secret)
    text = string.Template((FIXTURES / "budget" / "inventory.yaml").read_text()).substitute(
        aws_endpoint=aws.endpoint_url,
        aws_credentials=str(credentials),
        **azure_template_values(az, secret),
    )
    doc = yaml.safe_load(text)
    edit(doc)
    path = tmp_path / "sections.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(args)
    code = exited.value.code
    return (code if isinstance(code, int) else 0), " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(("command", "code"), COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_a_vip_inside_its_vpc_stops_every_command_before_any_call(
    command: list[str],
    code: int,
    fresh_aws: AwsEmulator,
    fresh_azure: AzureEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HYBRIDCTL_STATE_DIR", str(tmp_path / "state"))
    path = _write(tmp_path, fresh_aws, fresh_azure, lambda doc: doc.setdefault("vips", []).append(BAD_VIP))
    fresh_aws.reset_call_counts()
    fresh_azure.requests.reset()

    got, err = _run(capsys, [*command, "-i", str(path)])

    assert got == code, err
    assert "sections.yaml:" in err
    assert "vips[inside-vip].address" in err
    assert "192.168.20.50 lies inside 192.168.20.0/24 of site 'aws' (same VPC)" in err
    assert "fix: choose an address outside every CIDR of the VPC" in err
    assert fresh_aws.call_count() == 0
    assert fresh_azure.requests.count() == 0


def test_an_azure_budget_without_azure_settings_stops_plan(
    fresh_aws: AwsEmulator, fresh_azure: AzureEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, fresh_aws, fresh_azure, lambda doc: doc.pop("azure"))
    code, err = _run(capsys, ["plan", "-i", str(path)])
    assert code == 2
    assert "budgets[hybrid-guard].cloud" in err and "budgets[rg-restraint].cloud" in err
    assert "the budget is for Azure and the inventory has no azure section" in err
    assert "fix: add azure: {subscription_id: ...}, or set cloud: aws" in err


def test_the_same_inventory_with_the_vip_moved_out_plans(
    fresh_aws: AwsEmulator, fresh_azure: AzureEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = {**BAD_VIP, "address": "20.0.0.100"}
    path = _write(tmp_path, fresh_aws, fresh_azure, lambda doc: doc.setdefault("vips", []).append(outside))
    code, err = _run(capsys, ["plan", "-i", str(path)])
    assert code == 0, err
