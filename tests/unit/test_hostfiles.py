"""Files rendered onto hosts from hybridctl/templates/."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
    # Everything in one `ip -4 -batch` (one process): the tap up, its address, the routes.
    batch = script.split("ip -4 -batch - <<'HYBRIDCTL_OVERLAY'\n", 1)[1].split("HYBRIDCTL_OVERLAY\n", 1)[0]
    assert batch.splitlines()[:2] == ["link set dev tap_vpntap up", "addr replace 192.168.10.3/24 dev tap_vpntap"]
    for prefix in ("192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24"):
        assert f"route replace {prefix} via 192.168.10.1 dev tap_vpntap proto {ROUTE_PROTO}" in batch.splitlines()
    assert [line for line in script.splitlines() if line.startswith("ip ")] == ["ip -4 -batch - <<'HYBRIDCTL_OVERLAY'"]
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


def test_the_overlay_script_runs_one_ip_and_stops_when_it_fails(tmp_path: Path) -> None:
    """The rendered script against a stand-in `ip` on PATH that records its argv and stdin."""
    # The tap's wait is satisfied by a path that exists.
    script = files_of("aws-bridge")[OVERLAY_SCRIPT].replace("/sys/class/net/tap_vpntap", str(tmp_path))
    fake = tmp_path / "ip"
    log = tmp_path / "calls"
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\ncat >> {log}\nexit ${{IP_RC:-0}}\n")
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "-4 -batch -" and len([line for line in lines if line.startswith("-4")]) == 1
    assert any(line.startswith("route replace ") and line.endswith(f"proto {ROUTE_PROTO}") for line in lines)
    failed = subprocess.run(["sh", "-c", script + "echo after\n"], env={**env, "IP_RC": "1"}, capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert failed.returncode == 1 and "after" not in failed.stdout
