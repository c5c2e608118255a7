"""The lab data plane, for real: namespaces, systemd as every host's init, sshd, OpenSSH and paramiko.

One lab for the module (``extra_clients=2``), built under the machine-wide lab lock in its
own LAB_DIR under /var/lib, torn down at the end with a check that nothing is left.
The helpers here are shared with the other test_lab_dataplane_* modules.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import paramiko
import pytest

from hybridctl.core.errors import RemoteError
from hybridctl_lab import dataplane, hosts, netns
from hybridctl_lab.topology import build_topology
from tests.conftest import require

pytestmark = [pytest.mark.lab, pytest.mark.integration]

TEST_LAB_DIR = Path("/var/lib/hybridctl-lab-test-dataplane")
TOOLS = ("ip", "nft", "nc", "ssh", "ping", "unshare", "nsenter", "setpriv", "/usr/sbin/sshd", "/lib/systemd/systemd")


def have_netns() -> bool:
    """Root and ``ip netns add`` work (probe name unique per process: xdist workers run this at once)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"hl-probe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return True


def require_dataplane_prereqs() -> None:
    require(have_netns(), "root and network namespaces (ip netns add)")
    for tool in TOOLS:
        require(shutil.which(tool) is not None, f"{tool} (apt-get install per .ci/run; nc = netcat-openbsd)")


def root_snapshot() -> dict[str, list[Any]]:
    """What the root namespace and mount table look like, to prove the lab leaves them alone."""
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    addrs = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout)
    return {
        "links": sorted(link["ifname"] for link in links),
        "addrs": sorted((a["ifname"], i["local"], i["prefixlen"]) for a in addrs for i in a.get("addr_info", [])),
        "mounts": sorted(line for line in Path("/proc/mounts").read_text().splitlines() if "hl-" in line),
    }


def lab_leftovers(lab_dir: Path) -> list[str]:
    """Everything that should be gone after ``down``; empty when clean."""
    left = [f"netns {n}" for n in netns.list_namespaces("hl-")]
    mounts = Path("/proc/mounts").read_text()
    left += [f"mount {line}" for line in mounts.splitlines() if "/run/netns/hl-" in line or str(lab_dir) in line]
    left += [f"pid {p}" for p in netns.pids_in_namespaces(netns.list_namespaces("hl-"))]
    left += [f"cgroup {c}" for c in hosts.lab_cgroups("hl-")]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(lab_dir) in cmd:
                left.append(f"process {proc.name}: {cmd}")
    return left


@pytest.fixture(scope="module")
def lab() -> Iterator[dataplane.UpResult]:
    require_dataplane_prereqs()
    with dataplane.lab_lock():
        before = root_snapshot()
        result = dataplane.up(extra_clients=2, lab_dir=TEST_LAB_DIR)
        try:
            yield result
        finally:
            dataplane.down(lab_dir=TEST_LAB_DIR)
        assert lab_leftovers(TEST_LAB_DIR) == []
        assert root_snapshot() == before


def ssh(lab: dataplane.UpResult, host: str, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), *extra, host, command], capture_output=True, text=True, timeout=30
    )


def paramiko_client(lab: dataplane.UpResult, host: str) -> paramiko.SSHClient:
    cfg = paramiko.SSHConfig.from_path(str(lab.ssh_config)).lookup(host)
    client = paramiko.SSHClient()
    client.load_host_keys(cfg["userknownhostsfile"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        cfg["hostname"],
        port=int(cfg["port"]),
        username=cfg["user"],
        key_filename=cfg["identityfile"][0],
        sock=paramiko.ProxyCommand(cfg["proxycommand"]),
        look_for_keys=False,
        allow_agent=False,
        timeout=20,
    )
    return client


def run_on(client: paramiko.SSHClient, command: str) -> str:
    _, out, _ = client.exec_command(command, timeout=20)
    text = out.read().decode()
    assert out.channel.recv_exit_status() == 0, command
    return text


# --------------------------------------------------------------------------- tests


def test_status_reports_every_host_up(lab: dataplane.UpResult) -> None:
    status = dataplane.status(lab_dir=TEST_LAB_DIR)
    assert status.up
    assert {h.name for h in status.hosts} == {h.name for h in lab.topology.hosts}
    assert {h.name for h in status.hosts if h.managed and h.listening} == {
        "hl-home-srv",
        "hl-home-c1",
        "hl-home-c100",
        "hl-home-c101",
        "hl-aws-br",
        "hl-az-br",
    }
    assert status.stray == []


def test_root_namespace_has_no_lab_link_or_address(lab: dataplane.UpResult) -> None:
    snap = root_snapshot()
    assert not [name for name in snap["links"] if str(name).startswith(("hl-", "eth1", "br0"))]
    lab_nets = ("203.0.113.", "192.168.1.", "192.168.2", "192.168.3")
    assert not [a for a in snap["addrs"] if str(a[1]).startswith(lab_nets)]


def test_openssh_reaches_every_managed_host(lab: dataplane.UpResult) -> None:
    for host in lab.topology.managed_hosts:
        proc = ssh(lab, host.name, "hostname")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == host.name


def test_openssh_negotiates_curve25519(lab: dataplane.UpResult) -> None:
    proc = ssh(lab, "hl-aws-br", "true", "-v", "-o", "LogLevel=DEBUG1")
    assert proc.returncode == 0, proc.stderr
    assert "kex: algorithm: curve25519-sha256" in proc.stderr


def test_sshd_refuses_a_client_that_insists_on_sntrup(lab: dataplane.UpResult) -> None:
    proc = ssh(
        lab, "hl-aws-br", "true", "-o", "KexAlgorithms=sntrup761x25519-sha512@openssh.com", "-o", "LogLevel=INFO"
    )
    assert proc.returncode != 0
    assert "no matching key exchange method" in proc.stderr


def test_azure_side_only_through_its_bastion(lab: dataplane.UpResult) -> None:
    """hl-az-br, -h30, -h31 take logins from the bastion's address only: through it (OpenSSH and
    paramiko, with the ssh_config's ProxyCommand) they answer, straight to their sshd they refuse."""
    for host in ("hl-az-br", "hl-az-h30", "hl-az-h31"):
        proc = ssh(lab, host, "hostname; id -un; echo $SSH_CONNECTION")
        assert proc.returncode == 0, proc.stderr
        name, user, connection = proc.stdout.splitlines()
        assert (name, user) == (host, "azureuser")
        assert connection.split()[0] == "192.168.30.4"  # the bastion
        direct = ssh(lab, host, "true", "-o", f"ProxyCommand=ip netns exec {host} nc 127.0.0.1 22")
        assert direct.returncode != 0
        assert "Permission denied" in direct.stderr or "closed" in direct.stderr, direct.stderr
    client = paramiko_client(lab, "hl-az-h31")
    try:
        assert run_on(client, "hostname").strip() == "hl-az-h31"
    finally:
        client.close()
    assert ssh(lab, "hl-az-bastion", "hostname").stdout.strip() == "hl-az-bastion"


def test_logins_unprivileged_with_sudo_root_only_on_one_client(lab: dataplane.UpResult) -> None:
    users = dataplane.login_users(lab.topology)
    for host in ("hl-home-srv", "hl-aws-br", "hl-az-br", "hl-aws-h20", "hl-home-c1"):
        proc = ssh(lab, host, "id -un; sudo -n id -un")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [users[host], "root"], host
    assert users["hl-home-c1"] == "root" and users["hl-aws-br"] == "admin" and users["hl-az-br"] == "azureuser"
    assert users["hl-home-srv"] == "hybrid"
    # Root is refused everywhere else (PermitRootLogin no), and passwords are never asked for.
    refused = ssh(lab, "hl-aws-br", "true", "-o", "User=root")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    assert "publickey" in refused.stderr and "password" not in refused.stderr.split("(")[-1]


def test_host_keys_are_distinct_and_checked(lab: dataplane.UpResult) -> None:
    # Reach hl-az-br's sshd while claiming to be hl-aws-br: its key does not match the record.
    proc = ssh(lab, "hl-aws-br", "true", "-o", "ProxyCommand=ip netns exec hl-az-br nc 127.0.0.1 22")
    assert proc.returncode != 0
    assert "HOST IDENTIFICATION HAS CHANGED" in proc.stderr or "Host key verification failed" in proc.stderr


def test_paramiko_with_proxycommand(lab: dataplane.UpResult) -> None:
    for host in lab.topology.managed_hosts:
        client = paramiko_client(lab, host.name)
        try:
            assert run_on(client, "hostname").strip() == host.name
            transport = client.get_transport()
            assert transport is not None and transport.is_authenticated()
            assert transport.get_remote_server_key().get_name() == "ssh-ed25519"
        finally:
            client.close()


def test_parallel_connections_to_one_host(lab: dataplane.UpResult) -> None:
    """Above the default MaxStartups (10): a benchmark's burst must not be reset."""
    results: list[str] = []
    errors: list[BaseException] = []

    def connect() -> None:
        try:
            client = paramiko_client(lab, "hl-home-c1")
            try:
                results.append(run_on(client, "hostname").strip())
            finally:
                client.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == ["hl-home-c1"] * 30


def test_managed_hosts_start_bare(lab: dataplane.UpResult) -> None:
    """No SoftEther state, none of hybridctl's files or units (whatever the machine has)."""
    for host in lab.topology.managed_hosts:
        proc = ssh(
            lab,
            host.name,
            "cat /proc/sys/net/ipv4/ip_forward; { ls -A /var/lib/softether /etc/hybridctl /var/log/softether; "
            "ls -A /etc/systemd/system /etc/systemd/system/*.wants /etc/sysctl.d | grep -e hybridctl -e softether; } "
            "| grep -v ':$' | grep -c . ; ip -4 route",
        )
        assert proc.returncode == 0, proc.stderr
        forward, count, *routes = proc.stdout.splitlines()
        assert forward == "0"
        assert count == "0"
        gateway = host.gateway
        expected = 1 if gateway else 0  # the default route, if the host has one
        expected += sum(1 for nic in host.nics if nic.address is not None)  # connected routes
        assert len(routes) == expected, routes


def test_private_directories_are_per_host(lab: dataplane.UpResult) -> None:
    marker = f"written-in-aws-br-{os.getpid()}"
    dataplane.exec_in("hl-aws-br", f"echo {marker} > /var/lib/softether/marker", lab_dir=TEST_LAB_DIR)
    try:
        assert ssh(lab, "hl-aws-br", "cat /var/lib/softether/marker").stdout.strip() == marker
        assert not Path("/var/lib/softether/marker").exists()
        other = dataplane.exec_in("hl-az-br", "ls -A /var/lib/softether", lab_dir=TEST_LAB_DIR)
        assert other.stdout.strip() == ""
        backing = hosts.LabPaths(TEST_LAB_DIR).upper("hl-aws-br", "/var/lib/softether/marker")
        assert backing.read_text().strip() == marker  # the host's overlay upper layer
    finally:
        dataplane.exec_in("hl-aws-br", "rm -f /var/lib/softether/marker", lab_dir=TEST_LAB_DIR)


def test_private_run_and_empty_bashrc(lab: dataplane.UpResult) -> None:
    proc = ssh(
        lab,
        "hl-home-srv",
        # As hybrid, who cannot read /root: through sudo.
        "test -d /run/sshd && test -d /run/systemd/system && ! test -e /run/netns; sudo -n cat /root/.bashrc | wc -c",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"
    # The machine's own files are untouched.
    assert Path("/run/netns").is_dir()


def test_exec_in_managed_host_sees_its_mount_namespace(lab: dataplane.UpResult) -> None:
    argv = dataplane.exec_argv("hl-aws-br", lab_dir=TEST_LAB_DIR)
    assert argv[0] == "nsenter"
    out = dataplane.exec_in("hl-aws-br", ["sh", "-c", "hostname; wc -c < /root/.bashrc"], lab_dir=TEST_LAB_DIR)
    assert out.stdout.split() == ["hl-aws-br", "0"]


def test_a_lab_hosts_dns_query_is_refused_not_left_hanging(lab: dataplane.UpResult) -> None:
    # The lab has no DNS server: a host's resolver is itself, where nothing listens, so a lookup
    # ends at once with "not found" (getent exit 2) instead of waiting out the machine's
    # nameserver, which the lab's networks cannot reach (timeout exit 124).
    out = dataplane.exec_in(
        "hl-aws-br",
        ["sh", "-c", "cat /etc/resolv.conf; timeout 4 getent hosts no-such-name.example; echo rc=$?"],
        lab_dir=TEST_LAB_DIR,
    )
    assert "nameserver 127.0.0.1" in out.stdout
    assert out.stdout.strip().endswith("rc=2"), out.stdout
    assert Path("/etc/resolv.conf").read_text() != hosts.RESOLV_CONF  # the machine's own is untouched


def test_exec_in_unmanaged_and_infrastructure(lab: dataplane.UpResult) -> None:
    out = dataplane.exec_in("hl-aws-h21", "ip -4 -o addr show dev eth0", lab_dir=TEST_LAB_DIR)
    assert "192.168.21.10/24" in out.stdout
    fab = dataplane.exec_in("hl-aws-fab", ["cat", "/proc/sys/net/ipv4/ip_forward"], lab_dir=TEST_LAB_DIR)
    assert fab.stdout.strip() == "1"
    failed = dataplane.exec_in("hl-aws-h21", "exit 3", lab_dir=TEST_LAB_DIR, check=False)
    assert failed.returncode == 3
    with pytest.raises(RemoteError):
        dataplane.exec_in("hl-aws-h21", "exit 3", lab_dir=TEST_LAB_DIR)
    with pytest.raises(RemoteError, match="no such lab host"):
        dataplane.exec_in("hl-nope", "true", lab_dir=TEST_LAB_DIR)


def test_home_lan_is_one_l2_segment(lab: dataplane.UpResult) -> None:
    """Clients ping each other, and the VPN server's address-less eth1 sees their broadcasts."""

    def rx_packets() -> int:
        out = dataplane.exec_in("hl-home-srv", "ip -j -s link show eth1", lab_dir=TEST_LAB_DIR).stdout
        return int(json.loads(out)[0]["stats64"]["rx"]["packets"])

    before = rx_packets()
    ok = dataplane.exec_in("hl-home-c1", "ping -c1 -W2 192.168.1.101", lab_dir=TEST_LAB_DIR, check=False)
    assert ok.returncode == 0, ok.stdout
    # ARP for an address nobody has is broadcast: it must reach eth1.
    dataplane.exec_in("hl-home-c1", "ping -c1 -W1 192.168.1.77", lab_dir=TEST_LAB_DIR, check=False)
    assert rx_packets() > before
    flags = dataplane.exec_in("hl-home-srv", "ip -j link show eth1", lab_dir=TEST_LAB_DIR).stdout
    assert "PROMISC" in json.loads(flags)[0]["flags"]


def test_ssh_config_and_known_hosts_files(lab: dataplane.UpResult) -> None:
    text = lab.ssh_config.read_text()
    for host in lab.topology.ssh_hosts:  # managed hosts and test hosts
        assert f"Host {host.name}\n" in text
        if lab.topology.bastion_for(host) is None:
            assert f"ProxyCommand ip netns exec {host.name} nc 127.0.0.1 22" in text
        else:
            assert f"-W {host.primary_ip}:22 hl-az-bastion\n" in text
    known = lab.known_hosts.read_text().splitlines()
    assert len(known) == len(lab.topology.ssh_hosts)
    for line in known:
        names = line.split()[0].split(",")
        host = build_topology(2).host(names[0])
        pub = (TEST_LAB_DIR / "hosts" / host.name / "ssh_host_ed25519_key.pub").read_text().split()[1]
        assert line.split()[2] == pub
    assert oct(lab.client_key.stat().st_mode & 0o777) == "0o600"


def pings(jobs: Sequence[tuple[str, str]], lab_dir: Path) -> dict[tuple[str, str], bool]:
    """Run ``ping -c1 -W1`` for every (host, address) at once; True where it got an answer."""
    procs = {
        (host, addr): subprocess.Popen(
            [*dataplane.exec_argv(host, lab_dir=lab_dir), "ping", "-n", "-c1", "-W1", addr],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for host, addr in jobs
    }
    return {key: proc.wait(timeout=20) == 0 for key, proc in procs.items()}


def test_hosts_record_files(lab: dataplane.UpResult) -> None:
    records = hosts.read_pid_records(hosts.LabPaths(TEST_LAB_DIR))
    assert set(records) == {h.name for h in lab.topology.ssh_hosts}
    for name, rec in records.items():
        assert rec.pid == lab.host_pids[name]
        assert hosts.alive(rec)
        assert rec.init is not None
        assert rec.mnt_inode == netns.ns_inode_of_pid(rec.init, "mnt")
        assert rec.mnt_inode != netns.ns_inode_of_pid(os.getpid(), "mnt")
        assert netns.ns_inode_of_pid(rec.init, "pid") != netns.ns_inode_of_pid(os.getpid(), "pid")


def test_every_host_boots_systemd_with_only_ssh_of_the_machines_units(lab: dataplane.UpResult) -> None:
    for host in lab.topology.ssh_hosts:
        out = dataplane.exec_in(
            host.name,
            "cat /proc/1/comm; systemctl is-system-running --wait; systemctl is-active ssh.service; "
            "systemctl is-active postgresql.service softether-vpnserver.service getty@tty1.service "
            "apt-daily.timer || true; cat /etc/hostname; cut -d: -f1 /proc/1/cgroup | head -1",
            lab_dir=TEST_LAB_DIR,
        ).stdout.split()
        assert out[:3] == ["systemd", "running", "active"], (host.name, out)
        assert out[3:7] == ["inactive"] * 4, (host.name, out)
        assert out[7] == host.name
    ids = {
        dataplane.exec_in(h.name, "cat /etc/machine-id", lab_dir=TEST_LAB_DIR).stdout for h in lab.topology.ssh_hosts
    }
    assert len(ids) == len(lab.topology.ssh_hosts)  # a fresh machine-id each


def test_hosts_have_their_own_pid_namespace_and_cgroup(lab: dataplane.UpResult) -> None:
    """exec_in enters the host's PID namespace: it sees the host's processes, not the machine's."""
    out = dataplane.exec_in("hl-aws-br", "ps -e -o comm=", lab_dir=TEST_LAB_DIR).stdout.split()
    assert "systemd" in out and "sshd" in out
    assert "pytest" not in " ".join(out) and len(out) < 40
    record = hosts.read_pid_records(hosts.LabPaths(TEST_LAB_DIR))["hl-aws-br"]
    cgroup = Path(f"/proc/{record.init}/cgroup").read_text()
    assert "0::/hl-aws-br/init.scope" in cgroup.splitlines() or "0::/hl-aws-br" in cgroup
    for path in hosts.cgroup_dirs("hl-aws-br"):
        assert path.is_dir(), path
    # /usr and / are the machine's, read-only; /etc is the host's own (an overlay).
    ro = dataplane.exec_in("hl-aws-br", "touch /usr/hl-x 2>&1; touch /etc/hl-x && echo ok", lab_dir=TEST_LAB_DIR)
    assert "Read-only file system" in ro.stdout and ro.stdout.strip().endswith("ok")
    assert not Path("/etc/hl-x").exists()
    dataplane.exec_in("hl-aws-br", "rm /etc/hl-x", lab_dir=TEST_LAB_DIR)
