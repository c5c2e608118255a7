"""Pure parts of the lab hosts: sshd drop-in, ssh_config, known_hosts, init script, boot command, plans."""

from __future__ import annotations

import io
import re
from ipaddress import IPv4Address
from pathlib import Path

import paramiko
import pytest

from hybridctl.core.errors import PreconditionError
from hybridctl_lab import dataplane, hosts
from hybridctl_lab.hosts import LabPaths
from hybridctl_lab.topology import build_topology

PATHS = LabPaths(Path("/var/lib/hl-unit"))


def test_lab_dir_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(hosts.LAB_DIR_ENV, raising=False)
    assert hosts.lab_dir() == Path("/var/lib/hybridctl-lab")
    monkeypatch.setenv(hosts.LAB_DIR_ENV, "/var/lib/elsewhere")
    assert hosts.lab_dir() == Path("/var/lib/elsewhere")
    assert hosts.lab_dir("/srv/lab") == Path("/srv/lab")


@pytest.mark.parametrize("bad", ["/tmp/lab", "/run/lab", "/var/tmp/x"])
def test_lab_dir_refuses_tmp_and_run(bad: str) -> None:
    with pytest.raises(PreconditionError):
        hosts.lab_dir(bad)


def _options(text: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_sshd_dropin_key_only_and_root_only_where_asked() -> None:
    options = _options(hosts.sshd_dropin("admin"))
    assert options["HostKey"] == hosts.HOST_KEY
    assert options["PermitRootLogin"] == "no"
    assert options["PasswordAuthentication"] == "no"
    assert options["AuthenticationMethods"] == "publickey"
    assert options["KexAlgorithms"].startswith("curve25519-sha256,")
    assert "sntrup" not in options["KexAlgorithms"]
    start, _rate, full = (int(x) for x in options["MaxStartups"].split(":"))
    assert start >= 100 and full >= start
    assert _options(hosts.sshd_dropin("root"))["PermitRootLogin"] == "prohibit-password"
    assert "AllowUsers" not in options
    behind = _options(hosts.sshd_dropin("azureuser", IPv4Address("192.168.30.4")))
    assert behind["AllowUsers"] == "*@192.168.30.4"


def test_ssh_config_reaches_the_azure_side_through_its_bastion() -> None:
    topo = build_topology()
    bastions = {h.name: b for h in topo.ssh_hosts if (b := topo.bastion_for(h)) is not None}
    cfg = paramiko.SSHConfig.from_file(io.StringIO(hosts.ssh_config(PATHS, topo.ssh_hosts, {}, bastions)))
    br = cfg.lookup("hl-az-br")
    assert br["hostname"] == "192.168.30.100"  # the private address: what the bastion sees
    assert br["proxycommand"] == "ssh -F /var/lib/hl-unit/ssh_config -W 192.168.30.100:22 hl-az-bastion"
    assert cfg.lookup("hl-az-h31")["proxycommand"].endswith("-W 192.168.31.10:22 hl-az-bastion")
    assert cfg.lookup("hl-az-bastion")["proxycommand"] == "ip netns exec hl-az-bastion nc 127.0.0.1 22"
    assert cfg.lookup("hl-aws-br")["proxycommand"] == "ip netns exec hl-aws-br nc 127.0.0.1 22"
    _, public = hosts.new_ed25519()
    assert hosts.known_hosts_line(topo.host("hl-az-br"), public, bastions["hl-az-br"]).startswith(
        "hl-az-br,192.168.30.100 "
    )


def test_login_users_per_site() -> None:
    topo = build_topology()
    users = dataplane.login_users(topo)
    assert users["hl-aws-br"] == users["hl-aws-h20"] == users["hl-vip-n1"] == "admin"
    assert users["hl-az-br"] == users["hl-az-h31"] == "azureuser"
    assert users["hl-home-srv"] == "hybrid"
    assert [h for h, u in users.items() if u == "root"] == [hosts.ROOT_LOGIN_HOST]


def test_upper_layer_paths() -> None:
    assert PATHS.upper("hl-aws-br", "/var/lib/softether/x") == Path(
        "/var/lib/hl-unit/hosts/hl-aws-br/ov/var/lib/softether/x"
    )
    assert PATHS.upper("hl-aws-br", "/etc") == Path("/var/lib/hl-unit/hosts/hl-aws-br/ov/etc")
    with pytest.raises(ValueError):
        PATHS.upper("hl-aws-br", "/usr/bin/true")


def test_init_script_mounts_overlays_last_and_execs_systemd() -> None:
    lines = hosts.INIT_SCRIPT.splitlines()
    assert lines[0] == "#!/bin/sh"
    overlay = next(i for i, line in enumerate(lines) if line.startswith("  mount -t overlay"))
    # Nothing may read $H after /var became an overlay (its lower layer hides LAB_DIR/hosts).
    assert all("$H" not in line for line in lines[overlay + 2 :])
    assert "for d in etc root home var; do" in lines
    assert any(line.startswith("mount -t cgroup2") and line.endswith("/sys/fs/cgroup") for line in lines)
    assert "mount -o remount,bind,ro /" in lines
    assert lines[-1].startswith("exec setpriv --bounding-set ") and lines[-1].endswith("/lib/systemd/systemd --system")
    for unit in ("console-getty.service", "getty.target"):
        assert unit in hosts.INIT_SCRIPT


def test_launch_argv_joins_cgroups_before_the_namespaces() -> None:
    argv = hosts.launch_argv(PATHS, build_topology().host("hl-az-br"))
    assert argv[:2] == ["sh", "-c"]
    joins, _, rest = argv[2].partition("; exec ")
    assert joins.count("cgroup.procs") == len(hosts.CGROUP_TREES)
    assert "/sys/fs/cgroup/unified/hl-az-br/cgroup.procs" in joins
    assert rest.startswith("ip netns exec hl-az-br unshare --pid --fork --mount --mount-proc --cgroup --uts --ipc ")
    assert rest.endswith("/var/lib/hl-unit/hosts/init.sh /var/lib/hl-unit/hosts/hl-az-br hl-az-br")


def test_ssh_config_parses_with_paramiko() -> None:
    topo = build_topology(1)
    users = {"hl-home-c100": "hybrid"}
    cfg = paramiko.SSHConfig.from_file(io.StringIO(hosts.ssh_config(PATHS, topo.managed_hosts, users)))
    assert cfg.get_hostnames() >= {h.name for h in topo.managed_hosts}
    br = cfg.lookup("hl-aws-br")
    assert br["hostname"] == "203.0.113.20"
    assert br["user"] == "root"
    assert br["proxycommand"] == "ip netns exec hl-aws-br nc 127.0.0.1 22"
    assert br["identityfile"] == ["/var/lib/hl-unit/id_ed25519"]
    assert br["userknownhostsfile"] == "/var/lib/hl-unit/known_hosts"
    assert cfg.lookup("hl-home-c100")["hostname"] == "192.168.1.100"
    assert cfg.lookup("hl-home-c100")["user"] == "hybrid"


def test_known_hosts_line_names_alias_and_address() -> None:
    _, public = hosts.new_ed25519()
    line = hosts.known_hosts_line(build_topology().host("hl-az-br"), public)
    names, key_type, key = line.split()
    assert names.split(",") == ["hl-az-br", "203.0.113.30"]
    assert key_type == "ssh-ed25519"
    # paramiko reads the line and finds the key under both names.
    entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
    assert entry is not None and entry.hostnames == ["hl-az-br", "203.0.113.30"]
    assert entry.key.get_base64() == key


def test_new_ed25519_keys_load() -> None:
    private, public = hosts.new_ed25519()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(private.decode()))
    assert f"{key.get_name()} {key.get_base64()}" == public


def test_pid_record_roundtrip() -> None:
    rec = hosts.PidRecord(1234, 98765, 4026532000, 1240, 98770)
    assert hosts.PidRecord.parse(rec.render()) == rec
    assert hosts.enter_argv(rec) == ["nsenter", "-t", "1240", "-m", "-u", "-i", "-n", "-p", "-C", "--"]
    assert hosts.PidRecord.parse(hosts.PidRecord(1, None, None).render()).init is None


# --------------------------------------------------------------------------- data plane plans


def test_root_batch_creates_links_only_inside_namespaces() -> None:
    topo = build_topology(3)
    lines = dataplane.root_batch(topo)
    assert [line.split()[2] for line in lines if line.startswith("netns add")] == list(topo.namespaces)
    links = [line for line in lines if line.startswith("link add")]
    for line in links:
        # link add NAME netns A type veth peer name NAME2 netns B: both ends placed at creation.
        assert re.fullmatch(r"link add \S+ netns hl-\S+ type veth peer name \S+ netns hl-\S+", line), line
    nics = sum(len(h.nics) for h in topo.hosts)
    assert len(links) == nics + len(topo.cloud_sites)


def test_namespace_setups_cover_every_namespace_and_phases() -> None:
    topo = build_topology(2)
    setups = {s.namespace: s for s in dataplane.namespace_setups(topo)}
    assert set(setups) == set(topo.namespaces)
    for h in topo.hosts:
        assert setups[h.name].phase == 0
        assert "net.ipv4.ip_forward=0" in setups[h.name].sysctls
    fab = setups["hl-aws-fab"]
    assert fab.phase == 1 and setups["hl-inet"].phase == 1
    assert "net.ipv4.ip_forward=1" in fab.sysctls
    assert "net.ipv4.conf.hl-h20.proxy_arp=1" in fab.sysctls
    assert "net.ipv4.neigh.hl-h20.proxy_delay=0" in fab.sysctls
    assert "addr add 192.168.20.1/32 dev hl-br" in fab.ip_lines
    assert "addr add 192.168.21.1/32 dev hl-h21" in fab.ip_lines
    srv = setups["hl-home-srv"].ip_lines
    assert "link set eth1 promisc on" in srv
    assert not any("dev eth1" in line and "addr" in line for line in srv)
    assert "route add default via 203.0.113.1" in srv
    assert not any(line.startswith("route") for line in setups["hl-home-c1"].ip_lines)
    assert "addr add 203.0.113.1/24 dev br0" in setups["hl-inet"].ip_lines
    assert "link set hl-p-c101 master br0" in setups["hl-home-sw"].ip_lines


def test_inotify_limit_is_raised_for_many_hosts_and_never_lowered(tmp_path: Path) -> None:
    from hybridctl_lab.hosts import INOTIFY_INSTANCES_PER_HOST, ensure_inotify_instances

    knob = tmp_path / "max_user_instances"
    knob.write_text("128\n")
    assert ensure_inotify_instances(52, knob) == 128 + INOTIFY_INSTANCES_PER_HOST * 52
    assert int(knob.read_text()) == 128 + INOTIFY_INSTANCES_PER_HOST * 52
    knob.write_text("100000\n")
    assert ensure_inotify_instances(52, knob) == 100000
    assert knob.read_text() == "100000\n"
