"""``up`` / ``down`` lifecycle: teardown leaves nothing behind, even daemons started later."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hybridctl.core.errors import RemoteError
from hybridctl_lab import dataplane, hosts, netns
from tests.integration.test_lab_dataplane import (
    TEST_LAB_DIR,
    lab_leftovers,
    require_dataplane_prereqs,
    root_snapshot,
)

pytestmark = [pytest.mark.lab, pytest.mark.integration]


@pytest.fixture
def locked() -> Iterator[None]:
    require_dataplane_prereqs()
    with dataplane.lab_lock():
        try:
            yield
        finally:
            dataplane.down(lab_dir=TEST_LAB_DIR)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def dead(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def machine_pid(host: str, pid_in_host: int) -> int:
    """The machine's PID of the host's process ``pid_in_host`` (last NSpid field of /proc/PID/status)."""
    init = hosts.read_pid_records(hosts.LabPaths(TEST_LAB_DIR))[host].init
    assert init is not None
    host_ns = netns.ns_inode_of_pid(init, "pid")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or netns.ns_inode_of_pid(int(proc.name), "pid") != host_ns:
            continue
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        nspid = next(line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:"))
        if int(nspid[-1]) == pid_in_host:
            return int(proc.name)
    raise AssertionError(f"no process {pid_in_host} in {host}")


def test_down_removes_everything_including_later_daemons(locked: None) -> None:
    before = root_snapshot()
    up = dataplane.up(extra_clients=3, lab_dir=TEST_LAB_DIR)
    ssh = ["ssh", "-F", str(up.ssh_config)]
    # A daemon started over SSH, detached from the session (as `vpnserver start` is).
    started = subprocess.run(
        [*ssh, "hl-home-srv", "setsid sleep 4242 </dev/null >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode == 0, started.stderr
    # $! is the PID inside the host's PID namespace: find it as the machine numbers it.
    daemon = machine_pid("hl-home-srv", int(started.stdout.strip()))
    # One started through exec_in in a host's mount namespace, and one in an unmanaged host.
    dataplane.exec_in("hl-aws-br", "setsid sleep 4243 </dev/null >/dev/null 2>&1 &", lab_dir=TEST_LAB_DIR)
    dataplane.exec_in("hl-az-h31", "setsid sleep 4244 </dev/null >/dev/null 2>&1 &", lab_dir=TEST_LAB_DIR)
    wait_for(lambda: len(netns.pids_in_namespaces(netns.list_namespaces("hl-"))) >= len(up.host_pids) + 3)
    in_lab = netns.pids_in_namespaces(netns.list_namespaces("hl-"))
    assert daemon in in_lab
    assert set(up.host_pids.values()) <= set(in_lab)

    result = dataplane.down(lab_dir=TEST_LAB_DIR)

    assert set(in_lab) <= set(result.killed)
    # Dead: gone, or a zombie until the machine's init (its new parent) reaps it.
    wait_for(lambda: dead(daemon))
    assert lab_leftovers(TEST_LAB_DIR) == []
    assert root_snapshot() == before
    assert sorted(p.name for p in TEST_LAB_DIR.iterdir()) == ["id_ed25519", "id_ed25519.pub", "pids"]
    assert list((TEST_LAB_DIR / "pids").iterdir()) == []
    assert dataplane.status(lab_dir=TEST_LAB_DIR).up is False

    again = dataplane.down(lab_dir=TEST_LAB_DIR)
    assert again.killed == [] and again.namespaces == []


def test_up_over_a_running_lab_starts_fresh_and_keeps_the_client_key(locked: None) -> None:
    first = dataplane.up(lab_dir=TEST_LAB_DIR)
    key = first.client_key.read_bytes()
    dataplane.exec_in("hl-aws-br", "echo old > /var/lib/softether/vpn_bridge.config", lab_dir=TEST_LAB_DIR)
    second = dataplane.up(extra_clients=1, lab_dir=TEST_LAB_DIR)
    assert second.client_key.read_bytes() == key
    for name, pid in first.host_pids.items():
        assert netns.proc_starttime(pid) is None or pid == second.host_pids.get(name), name
    status = dataplane.status(lab_dir=TEST_LAB_DIR)
    assert status.up and status.extra_clients == 1
    # Bare again: what the previous lab wrote on the host is gone.
    listing = dataplane.exec_in("hl-aws-br", "ls -A /var/lib/softether", lab_dir=TEST_LAB_DIR).stdout
    assert listing.strip() == ""
    assert dataplane.current_topology(lab_dir=TEST_LAB_DIR).host("hl-home-c100").managed


def test_status_when_down_and_stale_pid_file(locked: None) -> None:
    dataplane.down(lab_dir=TEST_LAB_DIR)
    status = dataplane.status(lab_dir=TEST_LAB_DIR)
    assert not status.up and status.extra_clients is None and status.hosts == []
    up = dataplane.up(lab_dir=TEST_LAB_DIR)
    # Crash one host behind the lab's back (SIGKILL to its init): status notices, exec into
    # that host refuses, and `down` (the fixture's) still cleans up.
    victim = hosts.read_pid_records(hosts.LabPaths(TEST_LAB_DIR))["hl-az-br"]
    assert victim.init is not None and victim.pid == up.host_pids["hl-az-br"]
    os.kill(victim.init, signal.SIGKILL)
    wait_for(lambda: dead(victim.pid))
    status = dataplane.status(lab_dir=TEST_LAB_DIR)
    assert not status.up
    assert [h.name for h in status.hosts if not h.ok] == ["hl-az-br"]
    with pytest.raises(RemoteError, match="is gone"):
        dataplane.exec_in("hl-az-br", "true", lab_dir=TEST_LAB_DIR)
    record = hosts.read_pid_records(hosts.LabPaths(TEST_LAB_DIR))["hl-az-br"]
    assert not hosts.alive(record)
