"""A real OpenSSH server in its own network namespace, for SSH-level integration tests.

Reached like the lab's hosts: through an OpenSSH client config with a ProxyCommand into the
namespace, so the root namespace's network is untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BASE = Path("/var/lib/hybridctl-test")  # not /tmp: sshd's StrictModes refuses keys there


@dataclass
class Sshd:
    namespace: str
    directory: Path
    pid: int
    ssh_config: Path
    known_hosts: Path
    client_key: Path
    host_key: Path

    @property
    def alias(self) -> str:
        return self.namespace

    def regenerate_host_key(self) -> None:
        """Give the server a new host key (what a rebuilt or impersonated host looks like)."""
        self.host_key.unlink()
        Path(f"{self.host_key}.pub").unlink()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)
        os.kill(self.pid, signal.SIGHUP)  # sshd re-execs and reads the new key
        time.sleep(0.5)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_sshd(name: str, *, record_host_key: bool = True) -> Sshd:
    namespace = f"hs-{name}-{os.getpid()}"[:40]
    directory = BASE / namespace
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    BASE.chmod(0o755)
    host_key = directory / "host_ed25519"
    client_key = directory / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = directory / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    authorized.chmod(0o600)
    config = directory / "sshd_config"
    config.write_text(
        f"Port 22\nListenAddress 127.0.0.1\nHostKey {host_key}\nPermitRootLogin prohibit-password\n"
        f"AuthorizedKeysFile {authorized}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nPidFile none\nMaxStartups 100:30:200\nSubsystem sftp internal-sftp\n"
        "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n"
    )
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
    log = (directory / "sshd.log").open("wb")  # sshd writes here for as long as it runs
    process = subprocess.Popen(
        [
            "ip", "netns", "exec", namespace, "unshare", "-m", "sh", "-c",
            f"mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec /usr/sbin/sshd -D -e -f {config}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    log.close()  # the child holds its own copy
    known_hosts = directory / "known_hosts"
    if record_host_key:
        key_line = Path(f"{host_key}.pub").read_text().split()
        known_hosts.write_text(f"{namespace} {key_line[0]} {key_line[1]}\n")
    ssh_config = directory / "ssh_config"
    ssh_config.write_text(
        f"Host {namespace}\n  HostName {namespace}\n  User root\n  IdentityFile {client_key}\n"
        f"  UserKnownHostsFile {known_hosts}\n  ProxyCommand ip netns exec {namespace} nc 127.0.0.1 22\n"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["ip", "netns", "exec", namespace, "nc", "-z", "-w", "1", "127.0.0.1", "22"], capture_output=True
        )
        if probe.returncode == 0:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"sshd in {namespace} did not start: {(directory / 'sshd.log').read_text()}")
    return Sshd(namespace, directory, process.pid, ssh_config, known_hosts, client_key, host_key)
