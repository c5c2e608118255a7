"""Privilege escalation (`ssh.become`) against real sshd + sudo in network namespaces.

Four managed LAN clients, each its own namespace with its own sshd (tests/support/sshd.py):

* ``root-cli``: logs in as root (the reference: no sudo at all);
* ``nopw-cli``: logs in as an unprivileged user with a NOPASSWD sudoers rule;
* ``pw-cli``: unprivileged, sudo asks for a password, ``ssh.become_password: env:...`` given;
* ``ask-cli``: unprivileged, sudo asks for a password, none given.

The VPN server and bridge are unreachable (ProxyCommand false), so the plan's only host work is
the clients' routes (``ip route add``: root only). The test checks what each host really has
afterwards (``ip route show proto 177`` in its namespace), the exec counts per host, and that the
sudo password shows up in no process's argv, no output, no error and no journal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hybridctl.backends.hosts import HostsBackend
from hybridctl.backends.ssh import SshSession
from hybridctl.core.errors import RemoteError, UnsupportedTargets
from hybridctl.core.inventory.models import SshEndpoint
from hybridctl.features.engine import Context, execute, prepare
from tests.conftest import FIXTURES, have_root_and_netns, require
from tests.support.hosts import ArgvSampler, hosts_context
from tests.support.sshd import BASE, Sshd, start_sshd

pytestmark = [pytest.mark.integration]

PASSWORD = "sudo-pw-" + str(time.monotonic_ns())
PASSWORD_ENV = "HYBRIDCTL_TEST_SUDO_PASSWORD"
CLIENTS = {  # name: (login user, sudo rule, become_password given)
    "root-cli": (None, "", False),
    "nopw-cli": ("deploy", "nopasswd", False),
    "pw-cli": ("deploy", "password", True),
    "ask-cli": ("deploy", "password", False),
}
ADDRESSES = {name: f"192.168.1.{10 + i}" for i, name in enumerate(CLIENTS)}


@dataclass
class Site:
    root: Path
    inventory: Path
    hosts: dict[str, Sshd]


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    require(have_root_and_netns(), "root and network namespaces")
    for tool in ("nc", "ssh-keygen", "sudo", "openssl", "nsenter"):
        require(shutil.which(tool) is not None, f"{tool} (scripts/setup.sh)")
    BASE.mkdir(parents=True, exist_ok=True)
    root = BASE / f"become-it-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(mode=0o700)
    servers: dict[str, Sshd] = {}
    old_env = {k: os.environ.get(k) for k in ("HYBRIDCTL_STATE_DIR", PASSWORD_ENV)}
    os.environ["HYBRIDCTL_STATE_DIR"] = str(root / "state")
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        for name, (login, sudo, _) in CLIENTS.items():
            server = start_sshd(name, login=login, sudo=sudo, password=PASSWORD)
            servers[name] = server
            ns = server.namespace
            subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], check=True)
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ADDRESSES[name]}/24", "dev", "eth0"], check=True)
            for device in ("eth0", "eth0p"):
                subprocess.run(["ip", "-n", ns, "link", "set", device, "up"], check=True)
        unreachable = root / "ssh_config_unreachable"
        unreachable.write_text("Host srv brg\n  User root\n  ProxyCommand false\n")
        clients = ""
        for name, (_, _, given) in CLIENTS.items():
            server = servers[name]
            extra = f", become_password: 'env:{PASSWORD_ENV}'" if given else ""
            clients += (
                f"  - name: {name}\n    address: {ADDRESSES[name]}\n"
                f"    ssh: {{host: {server.alias}, config_file: {server.ssh_config}{extra}}}\n"
            )
        inventory = root / "inventory.yaml"
        inventory.write_text(
            f"""version: 1
name: become-it
transit: {{cidr: 192.168.10.0/24, hub: HYBRID}}
secrets: {{store: {root / "secrets.json"}}}
sites:
- name: home
  kind: onprem
  networks: [{{name: lan, cidr: 192.168.1.0/24}}]
  gateway:
    name: srv
    role: vpn-server
    ssh: {{host: srv, config_file: {unreachable}}}
    private_ip: 192.168.1.250
    public_address: 10.77.0.1
    lan_device: eth1
    switch_address: 192.168.1.249/24
  clients:
{clients}- name: branch
  kind: onprem
  networks: [{{name: lan, cidr: 192.168.50.0/24}}]
  gateway:
    name: brg
    role: vpn-bridge
    ssh: {{host: brg, config_file: {unreachable}}}
    private_ip: 192.168.50.1
    tap: vpntap
"""
        )
        yield Site(root, inventory, servers)
    finally:
        for server in servers.values():
            server.stop()
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(root, ignore_errors=True)


def context_of(site: Site) -> Context:
    return hosts_context(site.inventory)


def overlay_routes(server: Sshd) -> str:
    return server.run("ip", "-4", "route", "show", "proto", "177").stdout


def test_up_as_root_via_sudo_same_execs_password_never_seen(site: Site) -> None:
    context = context_of(site)
    outputs: list[str] = []
    try:
        backend = context.backends[0]
        assert isinstance(backend, HostsBackend)
        backend.recorder = lambda host, phase, stdout: outputs.append(stdout)
        with ArgvSampler() as sampler:
            prepared = prepare(context)
            report = execute(context, prepared)
        execs = {name: session.commands_run for name, session in backend._sessions.items()}
    finally:
        context.close()
    unreachable = prepared.actual.unreachable
    assert set(unreachable) == {"srv", "brg", "ask-cli"}
    # (b) one clear message: the host, the login user, both fixes; nothing planned or run there.
    message = unreachable["ask-cli"]
    assert message.startswith("ask-cli: ") and "'deploy'" in message
    assert "NOPASSWD" in message and "ssh.become_password" in message
    assert not [c for c in prepared.changes if "ask-cli" in c.key]
    assert overlay_routes(site.hosts["ask-cli"]) == ""
    # Its read stopped at sudo; no apply exec at all, and no verification read (nothing applied).
    assert execs["ask-cli"] == execs["root-cli"] - 1 == 1
    # (a), (c): the routes are there, through one sudo, with as many execs as a root login.
    assert report.failed == [], [(o.target, o.error) for o in report.failed]
    for name in ("root-cli", "nopw-cli", "pw-cli"):
        routes = overlay_routes(site.hosts[name])
        assert "192.168.10.0/24 via 192.168.1.249" in routes, (name, routes)
        assert "192.168.50.0/24 via 192.168.1.249" in routes, (name, routes)
    # read, then apply + verification read in one exec
    assert execs["nopw-cli"] == execs["pw-cli"] == execs["root-cli"] == 2
    # The sudo'd scripts really ran: the sampler saw them, under sudo, from the private directory.
    assert any(line.startswith("sudo -n sh /tmp/hybridctl.") for line in sampler.lines)
    assert any(line.startswith("sudo -k -S -p  sh /tmp/hybridctl.") for line in sampler.lines)
    # The password: in no argv, no output, no error message, no journal, no sshd log.
    assert not [line for line in sampler.lines if PASSWORD in line]
    assert outputs and not [out for out in outputs if PASSWORD in out]
    assert PASSWORD not in json.dumps(unreachable) and PASSWORD not in repr(report)
    state = Path(os.environ["HYBRIDCTL_STATE_DIR"])
    assert not [p for p in state.rglob("*") if p.is_file() and PASSWORD in p.read_text(errors="replace")]
    for server in site.hosts.values():
        assert PASSWORD not in (server.directory / "sshd.log").read_text()


def test_second_up_reads_through_sudo_and_has_nothing_to_do(site: Site) -> None:
    context = context_of(site)
    try:
        prepared = prepare(context)
    finally:
        context.close()
    assert set(prepared.actual.unreachable) == {"srv", "brg", "ask-cli"}
    client_changes = [c for c in prepared.changes if c.layer == "client-route"]
    assert client_changes == [], client_changes


def test_a_wrong_become_password_is_refused_clearly(site: Site) -> None:
    os.environ[PASSWORD_ENV] = "not-the-password"
    try:
        context = context_of(site)
        try:
            prepared = prepare(context)
        finally:
            context.close()
    finally:
        os.environ[PASSWORD_ENV] = PASSWORD
    message = prepared.actual.unreachable["pw-cli"]
    assert "refused ssh.become_password" in message and "'deploy'" in message
    assert "not-the-password" not in message


def test_an_unsupported_distribution_on_one_host_stops_every_host(site: Site) -> None:
    """nopw-cli (through sudo) reads as CentOS 7 (its /etc/os-release bind-mounted in its mount
    namespace): `up` plans nothing anywhere, names the host, and no host changes."""
    victim = site.hosts["nopw-cli"]
    other = site.hosts["root-cli"]
    for server in (victim, other):  # a change for both hosts to make, if anything were planned
        assert server.run("ip", "route", "del", "192.168.50.0/24", "proto", "177").returncode == 0
    mounted = victim.run("mount", "--bind", str(FIXTURES / "os-release" / "centos-7"), "/etc/os-release")
    assert mounted.returncode == 0, mounted.stderr
    try:
        context = context_of(site)
        try:
            with pytest.raises(UnsupportedTargets) as error:
                prepare(context)
        finally:
            context.close()
    finally:
        victim.run("umount", "/etc/os-release")
    assert str(error.value).startswith("nopw-cli: CentOS Linux 7 (Core) is not a supported distribution")
    for server in (victim, other):
        assert "192.168.50.0/24" not in overlay_routes(server)


def test_check_probe_scripts_take_the_same_sudo_path(site: Site) -> None:
    """checkrun runs its probe scripts with run_script(..., shell="bash"): root via sudo, one exec."""
    def session(name: str, **extra: str) -> SshSession:
        server = site.hosts[name]
        made = SshSession(name, SshEndpoint(host=server.alias, config_file=str(server.ssh_config), **extra))
        made.connect()
        return made

    script = "#!/bin/bash\nset -u\nid -un; [[ -n ${BASH_VERSION} ]] && echo bash\n"
    for name, extra in (("nopw-cli", {}), ("pw-cli", {"become_password": f"env:{PASSWORD_ENV}"})):
        probe = session(name, **extra)
        try:
            result = probe.run_script(script, shell="bash")
            assert result.ok and result.stdout.split() == ["root", "bash"], result
            assert probe.commands_run == 1
        finally:
            probe.close()
    refused = session("ask-cli")
    try:
        with pytest.raises(RemoteError, match=r"^ask-cli: sudo needs a password for user 'deploy'"):
            refused.run_script(script, shell="bash")
        assert refused.commands_run == 1
    finally:
        refused.close()
    # As the login user (become: none) the same script runs unprivileged.
    plain = session("nopw-cli", become="none")
    try:
        assert plain.run_script(script, shell="bash").stdout.split() == ["deploy", "bash"]
    finally:
        plain.close()
