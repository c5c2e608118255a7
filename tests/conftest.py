"""Shared test plumbing.

Prerequisites (root, namespaces, SoftEther, sshd, moto) are checked with
:func:`require`: on a laptop a missing one skips the test, but with ``CI=true``
it fails it, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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


def require_lab_prereqs() -> None:
    require(have_root_and_netns(), "root and network namespaces (ip netns add)")
    for binary in ("vpncmd", "/usr/sbin/sshd", "ping", "nft"):
        require(shutil.which(binary) is not None, f"{binary} (apt-get install per .ci/run)")
    require(Path("/usr/libexec/softether/vpnserver/vpnserver").exists(), "softether-vpnserver package")
    require(Path("/usr/libexec/softether/vpnbridge/vpnbridge").exists(), "softether-vpnbridge package")


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
