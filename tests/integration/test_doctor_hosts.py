"""`hybridctl doctor`'s host checks against real OpenSSH servers (tests/support/sshd.py).

A login whose sudo wants a password fails the ``sudo`` check by name; a NOPASSWD login and root
pass; an unknown host key fails ``host-key`` with the key `--accept-new-host-keys` would record,
and doctor records nothing; the distribution, the SoftEther package's candidate and a bridge's
TCP connect to the server are read on the host itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from hybridctl.core.inventory.models import SshEndpoint
from hybridctl.features.preflight import check_host
from hybridctl.features.vip.checks import Check, Status
from tests.conftest import have_root_and_netns, require
from tests.support.sshd import BASE, Sshd, start_sshd

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Sshd]]:
    require(have_root_and_netns(), "root and network namespaces")
    for tool in ("nc", "ssh-keygen", "sudo", "nsenter", "apt-cache"):
        require(shutil.which(tool) is not None, f"{tool} (scripts/setup.sh)")
    BASE.mkdir(parents=True, exist_ok=True)
    started: dict[str, Sshd] = {}
    try:
        started["root"] = start_sshd("dr-root")
        started["nopasswd"] = start_sshd("dr-nopw", login="deploy", sudo="nopasswd")
        started["password"] = start_sshd("dr-pw", login="deploy", sudo="password", password="s3cret-sudo")
        started["unknown"] = start_sshd("dr-new", record_host_key=False)
        yield started
    finally:
        for server in started.values():
            server.stop()


def endpoint(server: Sshd) -> SshEndpoint:
    return SshEndpoint(host=server.alias, config_file=str(server.ssh_config))


def by_id(checks: list[Check]) -> dict[str, Check]:
    return {c.id: c for c in checks}


def test_a_sudo_that_wants_a_password_fails_by_name(servers: dict[str, Sshd]) -> None:
    checks = by_id(
        check_host("srv", "vpn-server", endpoint(servers["password"]), server_address=None, server_port=5555)
    )
    sudo = checks["sudo"]
    assert sudo.status is Status.fail and "sudo wants a password" in sudo.message and "NOPASSWD" in sudo.fix
    assert checks["ssh"].status is Status.ok and "deploy" in checks["ssh"].message
    # The rest is still read and reported (every failing check at once).
    assert {"distribution", "package"} <= set(checks)


def test_root_and_nopasswd_logins_pass(servers: dict[str, Sshd]) -> None:
    for name, expected in (("root", "logged in as root"), ("nopasswd", "sudo -n true works")):
        checks = by_id(check_host("srv", "vpn-server", endpoint(servers[name]), server_address=None, server_port=5555))
        assert checks["sudo"].status is Status.ok and expected in checks["sudo"].message
        assert checks["host-key"].status is Status.ok
        # This machine is the CI kind (Debian 12) and has the distribution's SoftEther.
        assert checks["distribution"].status is Status.ok, checks["distribution"]
        assert checks["package"].status is Status.ok and "softether-vpnserver" in checks["package"].message


def test_an_unknown_host_key_fails_and_is_not_recorded(servers: dict[str, Sshd]) -> None:
    server = servers["unknown"]
    before = server.known_hosts.read_text() if server.known_hosts.exists() else ""
    checks = check_host("brg", "vpn-bridge", endpoint(server), server_address="127.0.0.1", server_port=22)
    assert [c.id for c in checks] == ["host-key"]
    # What `--accept-new-host-keys` would record: the key type and fingerprint, to verify out of band.
    assert "ssh-ed25519 SHA256:" in checks[0].message and "not in known_hosts" in checks[0].message
    assert "--accept-new-host-keys" in checks[0].fix
    after = server.known_hosts.read_text() if server.known_hosts.exists() else ""
    assert after == before


def test_a_bridge_connects_to_the_server_port(servers: dict[str, Sshd]) -> None:
    ssh = endpoint(servers["root"])
    # Inside the host's namespace 127.0.0.1:22 is its sshd; nothing listens on 5555 there.
    open_port = by_id(check_host("brg", "vpn-bridge", ssh, server_address="127.0.0.1", server_port=22))
    assert open_port["server-port"].status is Status.ok
    assert open_port["package"].message.startswith("softether-vpnbridge")
    refused = by_id(check_host("brg", "vpn-bridge", ssh, server_address="127.0.0.1", server_port=5555))
    assert refused["server-port"].status is Status.warn and "refuses" in refused["server-port"].message
