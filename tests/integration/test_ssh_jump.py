"""Jump hosts (ssh.jump, ProxyJump) against real sshd's in three network namespaces.

    root ns --ProxyCommand--> bastion (hs-jb) --veth 10.231.0.0/30--> middle (hs-jm)
                                                                      --veth 10.231.1.0/30--> target (hs-jt)

The bastion is reached like every test sshd (ProxyCommand into its namespace); the middle host
is on a veth only the bastion's namespace has, the target on one only the middle host's
namespace has: whatever reaches them went through the jump hosts' direct-tcpip channels (their
sshd logs show the login coming from the previous hop's address).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hybridctl.backends.ssh import SshSession, resolve
from hybridctl.core.errors import HostKeyError, RemoteError
from hybridctl.core.inventory.models import SshEndpoint
from tests.conftest import have_root_and_netns, require
from tests.support.sshd import Sshd, start_sshd

pytestmark = [pytest.mark.integration]

MIDDLE = "10.231.0.2"
TARGET = "10.231.1.2"


@dataclass
class Chain:
    bastion: Sshd
    middle: Sshd
    target: Sshd
    config: Path
    known_hosts: Path
    key: Path


def _link(a: Sshd, a_addr: str, b: Sshd, b_addr: str, name: str) -> None:
    subprocess.run(
        ["ip", "link", "add", f"{name}a", "netns", a.namespace, "type", "veth", "peer", "name", f"{name}b",
         "netns", b.namespace],
        check=True,
    )
    for server, device, address in ((a, f"{name}a", a_addr), (b, f"{name}b", b_addr)):
        subprocess.run(["ip", "-n", server.namespace, "addr", "add", address, "dev", device], check=True)
        subprocess.run(["ip", "-n", server.namespace, "link", "set", device, "up"], check=True)


def _host_key_line(server: Sshd, name: str) -> str:
    kind, blob = Path(f"{server.host_key}.pub").read_text().split()[:2]
    return f"{name} {kind} {blob}\n"


@pytest.fixture
def chain() -> Iterator[Chain]:
    require(have_root_and_netns(), "root and network namespaces")
    require(shutil.which("nc") is not None and shutil.which("ssh-keygen") is not None, "netcat-openbsd, openssh")
    started: list[Sshd] = []
    try:
        for name in ("jb", "jm", "jt"):
            started.append(start_sshd(name))
        bastion, middle, target = started
        _link(bastion, "10.231.0.1/30", middle, f"{MIDDLE}/30", "jbm")
        _link(middle, "10.231.1.1/30", target, f"{TARGET}/30", "jmt")
        key = bastion.client_key  # one client key for the whole chain
        for server in (middle, target):
            (server.directory / "authorized_root").write_text(Path(f"{key}.pub").read_text())
        known = bastion.directory / "chain_known_hosts"
        known.write_text(
            _host_key_line(bastion, bastion.namespace) + _host_key_line(middle, MIDDLE) + _host_key_line(target, TARGET)
        )
        config = bastion.directory / "chain_ssh_config"
        common = f"  User root\n  IdentityFile {key}\n  UserKnownHostsFile {known}\n"
        config.write_text(
            f"Host bastion\n  HostName {bastion.namespace}\n{common}"
            f"  ProxyCommand ip netns exec {bastion.namespace} nc 127.0.0.1 22\n"
            f"Host middle\n  HostName {MIDDLE}\n{common}  ProxyJump bastion\n"
            f"Host target\n  HostName {TARGET}\n{common}  ProxyJump bastion,middle\n"
            f"Host target-bare\n  HostName {TARGET}\n{common}"
        )
        yield Chain(bastion, middle, target, config, known, key)
    finally:
        for server in started:
            server.stop()


def _addresses(session: SshSession) -> str:
    result = session.run("ip -4 -o addr show")
    assert result.ok, result.stderr
    return result.stdout


def _logins_from(server: Sshd) -> str:
    return "\n".join(line for line in (server.directory / "sshd.log").read_text().splitlines() if "Accepted" in line)


def test_proxyjump_from_ssh_config_one_and_two_hops(chain: Chain) -> None:
    assert resolve(SshEndpoint(host="target", config_file=str(chain.config))).jump == ("bastion", "middle")
    for alias, address in (("middle", MIDDLE), ("target", TARGET)):
        session = SshSession(alias, SshEndpoint(host=alias, config_file=str(chain.config)))
        session.connect()
        try:
            assert f"inet {address}/30" in _addresses(session)
            # The script path (bootstrap, stdin) works through the tunnel too.
            result = session.run_script("read -r x <&0 || true; echo ran-on-$(hostname -I 2>/dev/null | wc -w)\n")
            assert result.ok and "ran-on-" in result.stdout
        finally:
            session.close()
    # Each hop logged in from the previous hop's address: the packets went through the chain.
    assert "from 10.231.0.1 " in _logins_from(chain.middle)
    assert "from 10.231.1.1 " in _logins_from(chain.target)
    assert "from 10.231" not in _logins_from(chain.bastion)


def test_inventory_jump_chain_with_host_port_forms(chain: Chain) -> None:
    endpoint = SshEndpoint(
        host="target-bare",
        config_file=str(chain.config),
        jump=f"bastion, root@{MIDDLE}:22",
        key=str(chain.key),
        known_hosts=str(chain.known_hosts),
    )
    session = SshSession("t", endpoint)
    session.connect()
    try:
        assert f"inet {TARGET}/30" in _addresses(session)
    finally:
        session.close()
    listed = SshEndpoint(host="target-bare", config_file=str(chain.config), jump=["bastion", "middle"])
    session = SshSession("t", listed)
    session.connect()
    try:
        assert f"inet {TARGET}/30" in _addresses(session)
    finally:
        session.close()


def test_a_changed_bastion_host_key_is_refused(chain: Chain) -> None:
    chain.bastion.regenerate_host_key()
    for accept_new in (False, True):
        with pytest.raises(HostKeyError, match=r"^target: jump host bastion .*host key CHANGED"):
            SshSession("target", SshEndpoint(host="target", config_file=str(chain.config)),
                       accept_new_host_keys=accept_new).connect()


def test_an_unknown_middle_host_key_needs_accept_new(chain: Chain) -> None:
    lines = chain.known_hosts.read_text().splitlines(keepends=True)
    chain.known_hosts.write_text("".join(line for line in lines if not line.startswith(MIDDLE)))
    endpoint = SshEndpoint(host="target", config_file=str(chain.config))
    with pytest.raises(HostKeyError, match=r"jump host middle .*not in known_hosts.*accept-new-host-keys"):
        SshSession("target", endpoint).connect()
    session = SshSession("target", endpoint, accept_new_host_keys=True)
    session.connect()
    session.close()
    assert any(line.startswith(MIDDLE) for line in chain.known_hosts.read_text().splitlines())


def test_an_unreachable_hop_is_a_clear_error(chain: Chain) -> None:
    endpoint = SshEndpoint(host="target-bare", config_file=str(chain.config), jump="bastion")
    with pytest.raises(RemoteError, match=r"jump host cannot reach target-bare at 10\.231\.1\.2:22"):
        SshSession("t", endpoint).connect()
