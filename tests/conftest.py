"""Shared test plumbing.

Prerequisites (root, namespaces, SoftEther, sshd, moto) are checked with
:func:`require`: on a laptop a missing one skips the test, but with ``CI=true``
it fails it, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hybridctl_lab.aws_emulator import AwsEmulator
    from hybridctl_lab.azure_emulator import AzureEmulator

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, why: str) -> None:
    """Skip (laptop) or fail (CI=true) when a prerequisite is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {why}", pytrace=False)
    pytest.skip(f"prerequisite missing: {why}")


def have_root_and_netns() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"hctl-probe-{os.getpid()}"  # unique per xdist worker
    created = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if created:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return created


def require_visible_in_lab_hosts() -> None:
    """For tests that run this Python (its venv, this checkout) inside a lab host: each host
    mounts its own /tmp and /run, so neither may live there (a clone under /tmp fails with
    "No such file or directory" from nsenter otherwise)."""
    # The venv where it is (its bin/ may link elsewhere), the interpreter it links to, the checkout.
    here = [Path(sys.executable).absolute(), Path(os.path.realpath(sys.executable)), Path(__file__).resolve()]
    hidden = [p for p in here for private in (Path("/tmp"), Path("/run")) if private in p.parents]
    where = f" ({hidden[0]} is there)" if hidden else ""
    require(not hidden, f"the checkout and its venv outside /tmp and /run, which lab hosts mount their own{where}")


def require_lab_prereqs() -> None:
    require(have_root_and_netns(), "root and network namespaces (ip netns add)")
    for binary in ("vpncmd", "/usr/sbin/sshd", "ping", "nft", "/lib/systemd/systemd", "sudo", "setpriv"):
        require(shutil.which(binary) is not None, f"{binary} (apt-get install per .ci/run)")
    require(Path("/usr/libexec/softether/vpnserver/vpnserver").exists(), "softether-vpnserver package")
    require(Path("/usr/libexec/softether/vpnbridge/vpnbridge").exists(), "softether-vpnbridge package")


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


# -- the cloud emulators (tests/support/emulators.py) ----------------------------------------------
# Imported inside the fixtures: tests/support/emulators.py itself imports require() from here.


@pytest.fixture(scope="module")
def aws_emulator() -> Iterator[AwsEmulator]:
    """One AWS emulator per test module (moto's state is per process: see fresh_aws)."""
    from tests.support.emulators import running_aws_emulator

    with running_aws_emulator() as emu:
        yield emu


@pytest.fixture
def fresh_aws(aws_emulator: AwsEmulator) -> AwsEmulator:
    """The module's AWS emulator, emptied: every resource, counter and pending fault forgotten."""
    aws_emulator.reset()
    return aws_emulator


@pytest.fixture
def ec2(fresh_aws: AwsEmulator) -> Any:
    """A plain boto3 EC2 client of the (emptied) AWS emulator, in tests.support.emulators.REGION."""
    from tests.support.emulators import boto_client

    return boto_client(fresh_aws, "ec2")


@pytest.fixture(scope="module")
def azure_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureEmulator]:
    """One ARM emulator per test module, its state and CA under a tmp directory."""
    from tests.support.emulators import running_azure_emulator

    with running_azure_emulator(tmp_path_factory.mktemp("azure")) as emu:
        yield emu


@pytest.fixture
def fresh_azure(azure_emulator: AzureEmulator) -> AzureEmulator:
    """The module's ARM emulator, emptied: no resources, faults or logged requests."""
    azure_emulator.reset()
    azure_emulator.faults.clear()
    azure_emulator.requests.reset()
    return azure_emulator
