"""hybridctl on lab hosts that boot systemd, log in as unprivileged users and sudo, and (the Azure
side) are reached through a bastion: units under systemd, a crash repaired by systemd alone.

One lab for the module (LAB_DIR /var/lib/hybridctl-lab-test-systemd, free ports, under the lab
lock); the tests run in order and build on each other:

1. `up` from bare hosts (users admin / azureuser / hybrid with sudo, root on hl-home-c1), then
   `check`: every cross-site pair passes; a second `up` has nothing to do;
2. the units are installed with systemd: `systemctl is-active` / `is-enabled` on the gateways;
3. vpnbridge killed with SIGKILL inside hl-aws-br: systemd restarts it (Restart=on-failure), the
   overlay unit puts the tap's address back, AWS pings home again, without hybridctl;
4. `routes diff` reads everything through sudo and the bastion: in sync;
5. the Azure side was reached only through the bastion (its sshd logged every login from it);
6. `down`: no unit file, no enabled unit, no hybridctl route left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hybridctl_lab import dataplane, manager
from tests.e2e.test_lab import hybridctl, running_lab

pytestmark = [pytest.mark.lab]

LAB_DIR = Path("/var/lib/hybridctl-lab-test-systemd")
GATEWAY_UNITS = {
    "hl-home-srv": ("softether-vpnserver.service",),
    "hl-aws-br": ("softether-vpnbridge.service", "hybridctl-overlay.service"),
    "hl-az-br": ("softether-vpnbridge.service", "hybridctl-overlay.service"),
}
BASTION = "192.168.30.4"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[manager.LabUpResult, dict[str, str]]]:
    env = {"HYBRIDCTL_STATE_DIR": str(tmp_path_factory.mktemp("state"))}
    with running_lab(LAB_DIR) as result:
        yield result, env


def sh(host: str, command: str, check: bool = True) -> str:
    return dataplane.exec_in(host, command, lab_dir=LAB_DIR, check=check).stdout


def logins_from_bastion(host: str) -> int:
    log = sh(host, "journalctl -q -o cat -u ssh.service --no-pager", check=False)
    return sum(1 for line in log.splitlines() if line.startswith("Accepted publickey for ") and f" {BASTION} " in line)


def test_up_from_bare_with_sudo_users_then_check(lab: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    result, env = lab
    users = {h["ssh"]["host"]: h["ssh"]["user"] for h in _hosts(result)}
    assert users["hl-aws-br"] == "admin" and users["hl-az-br"] == "azureuser" and users["hl-home-srv"] == "hybrid"
    assert users["hl-home-c1"] == "root"
    before = {h: logins_from_bastion(h) for h in ("hl-az-br", "hl-az-h30")}
    done = hybridctl("up", "-i", str(result.inventory), "--yes", "-o", "json", env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"]
    check = hybridctl("check", "-i", str(result.inventory), "-o", "json", env=env, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    again = hybridctl("up", "-i", str(result.inventory), "--yes", "-o", "json", env=env, timeout=600)
    assert again.returncode == 0 and json.loads(again.stdout)["changes"] == [], again.stdout + again.stderr
    # up/check reached the Azure bridge and test host through the bastion (and only so: their
    # sshd takes logins from its address alone, test_lab_dataplane checks the refusal).
    assert logins_from_bastion("hl-az-br") > before["hl-az-br"]
    assert logins_from_bastion("hl-az-h30") > before["hl-az-h30"]


def _hosts(result: manager.LabUpResult) -> list[dict[str, dict[str, str]]]:
    doc = yaml.safe_load(result.inventory.read_text())
    found = []
    for site in doc["sites"]:
        found.append(site["gateway"])
        found += site.get("clients", []) + site.get("test_hosts", [])
    return found


def test_units_are_active_and_enabled_under_systemd(lab: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    for host, units in GATEWAY_UNITS.items():
        for unit in units:
            active = sh(host, f"systemctl is-active {unit}; systemctl is-enabled {unit}", check=False).split()
            assert active == ["active", "enabled"], (host, unit, active)
        # hybridctl's unit files, not the distribution's: they live in /etc/systemd/system.
        path = sh(host, f"systemctl show -P FragmentPath {units[0]}").strip()
        assert path == f"/etc/systemd/system/{units[0]}", (host, path)


def test_killed_vpnbridge_is_restarted_by_systemd_and_the_overlay_returns(
    lab: tuple[manager.LabUpResult, dict[str, str]],
) -> None:
    unit = "softether-vpnbridge.service"
    restarts = int(sh("hl-aws-br", f"systemctl show -P NRestarts {unit}").strip())
    pids = sh("hl-aws-br", "pidof vpnbridge").split()
    assert pids, "vpnbridge is not running"
    sh("hl-aws-br", "kill -9 " + " ".join(pids))
    deadline = time.monotonic() + 60
    while True:
        state = sh("hl-aws-br", f"systemctl is-active {unit} hybridctl-overlay.service", check=False).split()
        now = int(sh("hl-aws-br", f"systemctl show -P NRestarts {unit}").strip())
        ping = dataplane.exec_in("hl-aws-h20", "ping -n -c1 -W1 192.168.1.10", lab_dir=LAB_DIR, check=False)
        if state == ["active", "active"] and now > restarts and ping.returncode == 0:
            break
        assert time.monotonic() < deadline, (state, now, ping.stdout)
        time.sleep(0.5)
    assert not set(pids) & set(sh("hl-aws-br", "pidof vpnbridge").split())  # new processes


def test_routes_diff_reads_everything_through_sudo(lab: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    result, env = lab
    before = logins_from_bastion("hl-az-br")
    done = hybridctl("routes", "diff", "-i", str(result.inventory), "-o", "json", env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["in_sync"] is True and document["drift"] == []
    assert logins_from_bastion("hl-az-br") > before


def test_down_removes_units_and_routes(lab: tuple[manager.LabUpResult, dict[str, str]]) -> None:
    result, env = lab
    done = hybridctl("down", "-i", str(result.inventory), "--yes", "-o", "json", env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for host in (*GATEWAY_UNITS, "hl-home-c1"):
        files = sh(host, "ls /etc/systemd/system /etc/systemd/system/*.wants | grep -e hybridctl -e softether", False)
        assert files.strip() == "", (host, files)
        enabled = sh(
            host, "systemctl list-unit-files --state=enabled --no-legend 'softether-*' 'hybridctl-*'", check=False
        )
        assert enabled.strip() == "", (host, enabled)
        states = sh(host, "systemctl is-active softether-vpnbridge softether-vpnserver", check=False).split()
        assert "active" not in states, (host, states)
        assert sh(host, "ip -4 route show proto 177").strip() == "", host
