"""The lab's cloud emulators for integration tests, and what tests build around them.

Each emulator runs in-process on port 0 (a free port). Clients are the real SDKs over
loopback with the emulators' dummy credentials (nothing patches boto3 or azure). Inventories
point ``endpoint_url`` / ``arm_endpoint`` at the running emulator, with a credentials file or
client secret written under the test's tmp_path.

The pytest fixtures built on these (``aws_emulator``, ``fresh_aws``, ``ec2``, ``azure_emulator``,
``fresh_azure``) are registered in tests/conftest.py. :class:`CliWorld` is what the CLI-level
tests of budgets and costs build on both fresh emulators.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tests.conftest import require

if TYPE_CHECKING:
    import pytest
    from azure.identity import ClientSecretCredential
    from azure.mgmt.network import NetworkManagementClient

    from hybridctl.core.inventory.load import LoadedInventory
    from hybridctl.features.vip.aws import AwsApi
    from hybridctl_lab.aws_emulator import AwsEmulator
    from hybridctl_lab.azure_emulator import AzureEmulator

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"  # moto's account for any dummy credentials
KEYS = ("testing", "testing")  # dummy access key id / secret: moto takes any


def have_moto_server() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("moto", "flask", "werkzeug", "boto3"))


# -- AWS ----------------------------------------------------------------------------------------


@contextmanager
def running_aws_emulator() -> Iterator[AwsEmulator]:
    """The AWS emulator (moto server + extensions) on a free port, stopped on exit."""
    require(have_moto_server(), "moto[server] and boto3 (pip install -e '.[test]')")
    from hybridctl_lab.aws_emulator import AwsEmulator

    emu = AwsEmulator("127.0.0.1", 0)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def boto_client(
    emulator: AwsEmulator, service: str, *, region: str = REGION, keys: tuple[str, str] = KEYS, **config: Any
) -> Any:
    """A plain boto3 client of the emulator (``config``: botocore ``Config`` arguments)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=emulator.endpoint_url,
        region_name=region,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        **({"config": Config(**config)} if config else {}),
    )


def name_tag(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def build_reference_aws_site(ec2: Any) -> dict[str, str]:
    """The reference AWS site (tests/fixtures/aws/inventory.yaml), as a user would have built it
    before running hybridctl: ids of its VPC, subnets, table, security group and ENIs."""
    vpc = ec2.create_vpc(CidrBlock="192.168.20.0/23", TagSpecifications=name_tag("vpc", "Hybrid-VPC"))["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="192.168.20.0/24", TagSpecifications=name_tag("subnet", "Hybrid-Subnet")
    )["Subnet"]["SubnetId"]
    dammy = ec2.create_subnet(
        VpcId=vpc, CidrBlock="192.168.21.0/24", TagSpecifications=name_tag("subnet", "Hybrid-Subnet-Dammy")
    )["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc, TagSpecifications=name_tag("route-table", "Hybrid-RT"))["RouteTable"][
        "RouteTableId"
    ]
    group = ec2.create_security_group(VpcId=vpc, GroupName="aws-bridge-sg", Description="bridge")["GroupId"]
    eni = ec2.create_network_interface(
        SubnetId=subnet,
        PrivateIpAddress="192.168.20.100",
        Groups=[group],
        TagSpecifications=name_tag("network-interface", "aws-bridge-eni"),
    )["NetworkInterface"]["NetworkInterfaceId"]
    other = ec2.create_network_interface(
        SubnetId=subnet, PrivateIpAddress="192.168.20.50", TagSpecifications=name_tag("network-interface", "other")
    )["NetworkInterface"]["NetworkInterfaceId"]
    return {"vpc": vpc, "subnet": subnet, "dammy": dammy, "table": table, "sg": group, "eni": eni, "other": other}


def write_aws_credentials(path: Path, profile: str = "default", keys: tuple[str, str] = KEYS) -> Path:
    """A shared credentials file with one profile (what ``aws.credentials_file`` names)."""
    path.write_text(f"[{profile}]\naws_access_key_id = {keys[0]}\naws_secret_access_key = {keys[1]}\n")
    return path


def write_vip_inventory(
    tmp_path: Path,
    emulator: AwsEmulator,
    *,
    vips: list[dict[str, Any]] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    keys: tuple[str, str] = KEYS,
) -> Path:
    """``tmp_path/inventory.yaml``: reference section 4's VIP inventory against the emulator.

    ``edit`` changes the document before it is written; ``keys`` are the caller's credentials.
    """
    from hybridctl_lab import vip_scenario as scenario

    credentials = write_aws_credentials(tmp_path / "credentials", keys=keys)
    doc = scenario.inventory_document(emulator.endpoint_url, str(credentials), vips=vips)
    if edit is not None:
        edit(doc)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def load_vip_inventory(tmp_path: Path, emulator: AwsEmulator, **options: Any) -> LoadedInventory:
    """:func:`write_vip_inventory`, loaded and with its VIPs checked."""
    from hybridctl.core.inventory.load import load_inventory
    from hybridctl.features.vip.validate import check_vips

    loaded = load_inventory(write_vip_inventory(tmp_path, emulator, **options))
    check_vips(loaded)
    return loaded


def vip_api(emulator: AwsEmulator, tmp_path: Path, **config: Any) -> AwsApi:
    """hybridctl's own VIP client of the emulator, with its own credentials file."""
    from hybridctl.features.vip.aws import AwsApi, AwsConfig

    credentials = write_aws_credentials(tmp_path / "api-credentials")
    return AwsApi(
        AwsConfig(region=REGION, endpoint_url=emulator.endpoint_url, credentials_file=str(credentials), **config)
    )


# -- Azure --------------------------------------------------------------------------------------


@contextmanager
def running_azure_emulator(state_dir: Path, **options: Any) -> Iterator[AzureEmulator]:
    """The ARM emulator (HTTPS, its own CA under ``state_dir``) on a free port, stopped on exit."""
    require(importlib.util.find_spec("cryptography") is not None, "cryptography (pip install -e '.[lab]')")
    from hybridctl_lab.azure_emulator import AzureEmulator

    emu = AzureEmulator(state_dir, port=0, **options)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def azure_credential(emulator: AzureEmulator) -> ClientSecretCredential:
    """The emulator's service principal, as azure-identity reaches a private authority."""
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        emulator.tenant_id,
        emulator.client_id,
        emulator.client_secret,
        authority=emulator.authority,
        disable_instance_discovery=True,
        connection_verify=emulator.ca_bundle,
    )


def arm_kwargs(emulator: AzureEmulator) -> dict[str, Any]:
    """What a management client needs to talk to the emulator instead of management.azure.com."""
    return {
        "base_url": emulator.base_url,
        "credential_scopes": [f"{emulator.base_url}/.default"],
        "connection_verify": emulator.ca_bundle,
    }


def network_client(emulator: AzureEmulator, credential: Any) -> NetworkManagementClient:
    """A plain azure-mgmt-network client of the emulator, polling long-running operations fast."""
    from azure.mgmt.network import NetworkManagementClient

    return NetworkManagementClient(credential, emulator.subscription_id, polling_interval=0.05, **arm_kwargs(emulator))


def write_client_secret(path: Path, secret: str) -> Path:
    """A 0600 file holding the client secret (what ``azure.client_secret: file:`` names)."""
    path.write_text(secret)
    os.chmod(path, 0o600)
    return path


def azure_section(emulator: AzureEmulator, secret_file: Path) -> dict[str, str]:
    """An inventory's ``azure`` section for the emulator's service principal."""
    return {
        "subscription_id": emulator.subscription_id,
        "tenant_id": emulator.tenant_id,
        "client_id": emulator.client_id,
        "client_secret": f"file:{secret_file}",
        "arm_endpoint": emulator.base_url,
        "authority": emulator.authority,
        "ca_bundle": str(emulator.ca_bundle),
    }


def azure_template_values(emulator: AzureEmulator, secret_file: Path) -> dict[str, str]:
    """The ``${...}`` values of the Azure part of the inventory templates in tests/fixtures."""
    return {
        "subscription_id": emulator.subscription_id,
        "tenant_id": emulator.tenant_id,
        "client_id": emulator.client_id,
        "secret_file": str(secret_file),
        "arm_endpoint": emulator.base_url,
        "authority": emulator.authority,
        "ca_bundle": str(emulator.ca_bundle),
    }


# -- both clouds as the lab seeds them ------------------------------------------------------------


def seed_lab_clouds(aws: AwsEmulator, azure: AzureEmulator, tmp_path: Path) -> dict[str, Any]:
    """Seed the (emptied) emulators like ``hybridctl lab up`` does (hybridctl_lab.seed).

    Returns the ``aws``, ``azure`` and ``secrets`` sections an inventory needs to reach them
    (credentials file and client secret written under ``tmp_path``).
    """
    from hybridctl_lab import seed
    from hybridctl_lab.topology import build_topology

    topology = build_topology()
    seed.seed_aws(boto_client(aws, "ec2"), topology)
    seed.seed_azure(azure, topology)
    credentials = write_aws_credentials(tmp_path / "credentials")
    secret = write_client_secret(tmp_path / "client_secret", azure.client_secret)
    return {
        "aws": {"region": seed.AWS_REGION, "endpoint_url": aws.endpoint_url, "credentials_file": str(credentials)},
        "azure": azure_section(azure, secret),
        "secrets": {"store": str(tmp_path / "secrets.json")},
    }


def lab_inventory_on(sections: dict[str, Any]) -> dict[str, Any]:
    """inventory/lab.yaml with its cloud sections pointing at these emulators instead of a running lab."""
    from tests.conftest import REPO

    document: dict[str, Any] = yaml.safe_load((REPO / "inventory" / "lab.yaml").read_text())
    return document | sections


# -- both clouds, through the CLI -----------------------------------------------------------------


@dataclass
class CliWorld:
    """Both fresh emulators, credentials for them under ``tmp_path``, and the real CLI run in-process.

    :func:`cli_world` writes the files; the test writes :attr:`inventory` from them.
    """

    aws: AwsEmulator
    az: AzureEmulator
    tmp_path: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def credentials(self) -> Path:
        """The AWS shared credentials file (``aws.credentials_file``)."""
        return self.tmp_path / "credentials"

    @property
    def client_secret(self) -> Path:
        """The service principal's secret (``azure.client_secret: file:...``)."""
        return self.tmp_path / "client_secret"

    @property
    def inventory(self) -> Path:
        return self.tmp_path / "inventory.yaml"

    def run(self, *args: str) -> tuple[int, str, str]:
        """``hybridctl ARGS`` through the entry point: (exit code, stdout, stderr)."""
        from hybridctl.cli.main import main

        self.capsys.readouterr()
        try:
            main([*args])
        except SystemExit as done:
            code = int(done.code or 0)
        else:
            code = 0
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        """``hybridctl ARGS -o json``: (exit code, the document)."""
        code, out, err = self.run(*args, "-o", "json")
        assert out.strip(), err
        document: dict[str, Any] = json.loads(out)
        return code, document


def cli_world(
    aws: AwsEmulator,
    az: AzureEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    profile: str = "default",
) -> CliWorld:
    """A :class:`CliWorld`: its own state directory, the AWS ``profile``'s credentials, the client secret."""
    monkeypatch.setenv("HYBRIDCTL_STATE_DIR", str(tmp_path / "state"))
    world = CliWorld(aws, az, tmp_path, capsys)
    write_aws_credentials(world.credentials, profile)
    write_client_secret(world.client_secret, az.client_secret)
    return world
