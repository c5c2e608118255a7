"""Files rendered onto hosts from hybridctl/templates/."""

from __future__ import annotations

import subprocess

from hybridctl.core.hostfiles import OVERLAY_SCRIPT, ROUTE_PROTO, SYSCTL_FILE, host_files
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.plan import plan
from tests.conftest import REPO

DESIRED = plan(load_inventory(REPO / "inventory" / "reference.yaml").inventory)


def files_of(host: str) -> dict[str, str]:
    return {f.path: f.content for f in host_files(DESIRED.host(host), "reference")}


def test_bridge_gets_unit_sysctl_and_overlay_script() -> None:
    files = files_of("azure-bridge")
    unit = files["/etc/systemd/system/softether-vpnbridge.service"]
    assert "Type=forking" in unit
    assert "ExecStart=/usr/libexec/softether/vpnbridge/vpnbridge start" in unit
    assert "ExecStop=/usr/libexec/softether/vpnbridge/vpnbridge stop" in unit
    assert "net.ipv4.ip_forward = 1" in files[SYSCTL_FILE]
    script = files[OVERLAY_SCRIPT]
    assert "ip -4 addr replace 192.168.10.3/24 dev tap_vpntap" in script
    for prefix in ("192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24"):
        assert f"ip -4 route replace {prefix} via 192.168.10.1 dev tap_vpntap proto {ROUTE_PROTO}" in script
    assert "Requires=softether-vpnbridge.service" in files["/etc/systemd/system/hybridctl-overlay.service"]


def test_overlay_script_is_valid_shell() -> None:
    script = files_of("aws-bridge")[OVERLAY_SCRIPT]
    result = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


def test_server_gets_only_its_unit() -> None:
    files = files_of("vpnserver")
    assert list(files) == ["/etc/systemd/system/softether-vpnserver.service"]
    assert "vpnserver/vpnserver start" in files["/etc/systemd/system/softether-vpnserver.service"]


def test_rendering_is_deterministic() -> None:
    first = host_files(DESIRED.host("aws-bridge"), "reference")
    second = host_files(DESIRED.host("aws-bridge"), "reference")
    assert [f.sha256 for f in first] == [f.sha256 for f in second]
