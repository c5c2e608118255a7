"""SSH adapter against a real OpenSSH server in a namespace: host key policy, stdin, parallel connect."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from hybridctl.backends.ssh import SshSession, connect_all
from hybridctl.core.errors import HostKeyError
from hybridctl.core.inventory.models import SshEndpoint
from tests.conftest import have_root_and_netns, require
from tests.support.sshd import Sshd, start_sshd


@pytest.fixture
def sshd() -> Iterator[Sshd]:
    require(have_root_and_netns(), "root and network namespaces")
    require(shutil.which("nc") is not None and shutil.which("ssh-keygen") is not None, "netcat-openbsd, openssh")
    server = start_sshd("ssh")
    yield server
    server.stop()


def endpoint(server: Sshd) -> SshEndpoint:
    return SshEndpoint(host=server.alias, config_file=str(server.ssh_config))


def test_known_host_connects_and_runs(sshd: Sshd) -> None:
    session = SshSession("h", endpoint(sshd))
    session.connect()
    result = session.run("echo hello; echo oops >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, "hello\n", "oops\n")
    session.close()


def test_stdin_carries_data_not_argv(sshd: Sshd) -> None:
    secret = "s3cr3t-" + str(time.monotonic_ns())
    session = SshSession("h", endpoint(sshd))
    session.connect()
    seen: list[str] = []

    def sample_ps() -> None:
        for _ in range(20):
            seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample_ps)
    sampler.start()
    result = session.run("read -r value; sleep 0.3; printf '%s' \"$value\" | wc -c", stdin=secret + "\n")
    sampler.join()
    assert result.stdout.strip() == str(len(secret))
    assert all(secret not in snapshot for snapshot in seen)


def test_unknown_host_refused_without_flag(sshd: Sshd) -> None:
    sshd.known_hosts.write_text("")
    with pytest.raises(HostKeyError, match="accept-new-host-keys"):
        SshSession("h", endpoint(sshd)).connect()


def test_accept_new_records_key_then_verifies(sshd: Sshd) -> None:
    sshd.known_hosts.write_text("")
    first = SshSession("h", endpoint(sshd), accept_new_host_keys=True)
    first.connect()
    first.close()
    assert sshd.alias in sshd.known_hosts.read_text()
    second = SshSession("h", endpoint(sshd))  # no flag: the recorded key is now trusted
    second.connect()
    assert second.run("true").ok
    second.close()


def test_changed_host_key_is_refused_even_with_accept_new(sshd: Sshd) -> None:
    sshd.regenerate_host_key()
    with pytest.raises(HostKeyError, match="CHANGED"):
        SshSession("h", endpoint(sshd), accept_new_host_keys=True).connect()


def test_connect_all_reports_failures_per_host(sshd: Sshd) -> None:
    good = endpoint(sshd)
    bad = SshEndpoint(host="no-such-host.invalid", config_file=str(sshd.ssh_config))
    sessions, errors = connect_all([("good", good), ("bad", bad)])
    assert list(sessions) == ["good"]
    assert "bad" in errors and "cannot connect" in errors["bad"]
    for session in sessions.values():
        session.close()
