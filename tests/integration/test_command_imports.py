"""`routes diff` and `budget` load the SDK of each cloud they talk to, and nothing of the lab.

Reading Azure loads azure-core and azure-mgmt-core, not the network SDK (writes need it).

The emulators run in this test process; each command runs in a new interpreter through the real
entry point (tests/support/loaded.py) against them, and reports its sys.modules. `plan`, which
talks to nothing, is tests/unit/test_command_imports.py.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.conftest import FIXTURES
from tests.support.emulators import (
    azure_template_values,
    lab_inventory_on,
    seed_lab_clouds,
    write_aws_credentials,
    write_client_secret,
)
from tests.support.loaded import AWS_SDK, AZURE_SDK, LAB, MOTO, modules_after

if TYPE_CHECKING:
    from hybridctl_lab.aws_emulator import AwsEmulator
    from hybridctl_lab.azure_emulator import AzureEmulator

pytestmark = pytest.mark.integration


def _write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


def _no_hosts(document: dict[str, Any]) -> dict[str, Any]:
    """The lab's inventory with hosts that do not resolve (.invalid, RFC 6761) and no LAN clients."""
    for site in document["sites"]:
        site.pop("clients", None)
        site["gateway"]["ssh"] = {"host": f"{site['gateway']['name']}.invalid"}
    return document


def _budget_inventory(tmp_path: Path, aws: AwsEmulator, azure: AzureEmulator, *, aws_only: bool) -> str:
    credentials = write_aws_credentials(tmp_path / "credentials", "hybridctl-lab")
    secret = write_client_secret(tmp_path / "client_secret", azure.client_secret)
    text = string.Template((FIXTURES / "budget" / "inventory.yaml").read_text()).substitute(
        aws_endpoint=aws.endpoint_url, aws_credentials=str(credentials), **azure_template_values(azure, secret)
    )
    document = yaml.safe_load(text)
    if aws_only:
        del document["azure"]
        document["budgets"] = [b | {"cloud": "aws"} for b in document["budgets"] if b["cloud"] != "azure"]
    return _write(tmp_path, document)


# `up --dry-run` reads every layer like `up` and stops before applying; `--layer` keeps
# `routes diff` to the clouds. Both exit 1: the hosts are unreachable (after the clouds were read).
READERS = [["routes", "diff", "--layer", "cloud-route"], ["up", "--dry-run"]]


@pytest.mark.parametrize("command", READERS, ids=[" ".join(c) for c in READERS])
def test_reading_both_clouds_loads_both_sdks_and_no_lab_module(
    command: list[str], fresh_aws: AwsEmulator, fresh_azure: AzureEmulator, tmp_path: Path
) -> None:
    document = _no_hosts(lab_inventory_on(seed_lab_clouds(fresh_aws, fresh_azure, tmp_path)))
    loaded = modules_after([*command, "-i", _write(tmp_path, document)], tmp_path)
    assert loaded.code == 1, loaded.output
    assert "aws-bridge.invalid" in loaded.output
    # Azure is read through azure-core's ARM pipeline: the network SDK is for writes only.
    assert loaded.under(*AWS_SDK) != [] and "azure.mgmt.core" in loaded.modules
    assert loaded.under("azure.mgmt.network") == []
    assert loaded.under(*LAB, *MOTO) == []


@pytest.mark.parametrize("command", READERS, ids=[" ".join(c) for c in READERS])
def test_reading_an_aws_only_inventory_loads_no_azure_sdk(
    command: list[str], fresh_aws: AwsEmulator, fresh_azure: AzureEmulator, tmp_path: Path
) -> None:
    document = _no_hosts(lab_inventory_on(seed_lab_clouds(fresh_aws, fresh_azure, tmp_path)))
    for key in ("azure", "budgets"):  # the lab's budgets include Azure ones
        document.pop(key, None)
    document["sites"] = [s for s in document["sites"] if s["kind"] != "azure"]
    loaded = modules_after([*command, "-i", _write(tmp_path, document)], tmp_path)
    assert loaded.code == 1, loaded.output
    assert "aws-bridge.invalid" in loaded.output
    assert loaded.under(*AWS_SDK) != []
    assert loaded.under(*LAB, *MOTO, *AZURE_SDK) == []


def test_budget_set_and_status_load_both_sdks_and_no_lab_module(
    fresh_aws: AwsEmulator, fresh_azure: AzureEmulator, tmp_path: Path
) -> None:
    fresh_azure.create_resource_group("hybrid-rg", "japaneast")  # the scope of the fixture's rg-restraint
    inventory = _budget_inventory(tmp_path, fresh_aws, fresh_azure, aws_only=False)
    for command in ("set", "status"):
        loaded = modules_after(["budget", command, "-i", inventory], tmp_path)
        assert loaded.code == 0, loaded.output  # `set` created every budget; `status` found them
        assert loaded.under(*AWS_SDK) != [] and "azure.core" in loaded.modules
        assert loaded.under(*LAB, *MOTO) == []


def test_budget_set_and_status_of_an_aws_only_inventory_load_no_azure_sdk(
    fresh_aws: AwsEmulator, fresh_azure: AzureEmulator, tmp_path: Path
) -> None:
    inventory = _budget_inventory(tmp_path, fresh_aws, fresh_azure, aws_only=True)
    for command in ("set", "status"):
        loaded = modules_after(["budget", command, "-i", inventory], tmp_path)
        assert loaded.code == 0, loaded.output
        assert loaded.under(*AWS_SDK) != []
        assert loaded.under(*LAB, *MOTO, *AZURE_SDK) == []
