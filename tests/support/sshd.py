"""A real OpenSSH server in its own network namespace, for SSH-level integration tests.

Reached like the lab's hosts: through an OpenSSH client config with a ProxyCommand into the
namespace, so the root namespace's network is untouched.

``login=`` makes the config log in as an unprivileged user instead of root, with a sudoers rule
(``sudo="nopasswd"`` or ``"password"``). The user exists only inside the server's mount
namespace: /etc/passwd, /etc/group, /etc/shadow and /etc/sudoers.d there are bind-mounted
copies, so the machine's own accounts are untouched. sshd listens on every address of its
namespace (lo, plus whatever veth a test adds).

``files_on_disk=True`` keeps the directories hybridctl writes on a host (:data:`PRIVATE_DIRS`) as
plain directories under the server's own, so a test reads them from outside (:meth:`Sshd.fs`),
and gives root an empty ``~/.bashrc`` (the machine's own never runs in a test host's sessions);
otherwise they are tmpfs mounts. Either way they are private to the host, never the machine's.
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
# Directories hybridctl writes on a host (files, units, sysctl drop-ins, SoftEther state): private
# to each test host, as in the lab.
PRIVATE_DIRS = ("/var/lib/softether", "/var/log/softether", "/etc/sysctl.d", "/etc/systemd/system", "/etc/hybridctl")


LOGIN_UID = 23456  # the unprivileged login user's uid (only inside the server's mount namespace)


@dataclass
class Sshd:
    namespace: str
    directory: Path
    pid: int
    ssh_config: Path
    known_hosts: Path
    client_key: Path
    host_key: Path
    user: str = "root"

    def fs(self, path: str) -> Path:
        """Where a file of the host's private directories lives (``files_on_disk=True`` only)."""
        return self.directory / "fs" / path.lstrip("/")

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A command as the host sees it (its network and mount namespaces), as root."""
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-n", *argv], capture_output=True, text=True, timeout=30
        )

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
        """Stop sshd and whatever runs in its namespace (SoftEther started over SSH), by PID."""
        listed = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True).stdout
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        for pid in {int(p) for p in listed.split()} - {self.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def _login_user(directory: Path, user: str, sudo: str, password: str) -> str:
    """Account files for ``user`` in ``directory``; the shell commands that bind-mount them."""
    home = directory / f"home-{user}"
    home.mkdir(mode=0o700)
    os.chown(home, LOGIN_UID, LOGIN_UID)
    etc = directory / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(Path("/etc/passwd").read_text() + f"{user}:x:{LOGIN_UID}:{LOGIN_UID}::{home}:/bin/sh\n")
    (etc / "group").write_text(Path("/etc/group").read_text() + f"{user}:x:{LOGIN_UID}:\n")
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password + "\n", capture_output=True, text=True, check=True
    ).stdout.strip()
    shadow = etc / "shadow"
    shadow.write_text(Path("/etc/shadow").read_text() + f"{user}:{hashed}:19000:0:99999:7:::\n")
    shadow.chmod(0o640)
    sudoers = etc / "sudoers.d"
    sudoers.mkdir(mode=0o755)
    if sudo:
        tag = "NOPASSWD: " if sudo == "nopasswd" else ""
        rule = sudoers / "hybridctl-test"
        rule.write_text(f"{user} ALL=(ALL) {tag}ALL\n")
        rule.chmod(0o440)
    return " && ".join(
        f"mount --bind {etc}/{name} /etc/{name}" for name in ("passwd", "group", "shadow", "sudoers.d")
    )


def start_sshd(
    name: str,
    *,
    record_host_key: bool = True,
    login: str | None = None,
    sudo: str = "nopasswd",
    password: str = "",
    files_on_disk: bool = False,
) -> Sshd:
    """``login``: log in as this unprivileged user (sudo rule ``nopasswd``, ``password`` or ``""``
    for none; ``password`` is the account's password sudo asks for)."""
    namespace = f"hs-{name}-{os.getpid()}"[:40]
    directory = BASE / namespace
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o711)  # the login user reaches its own files only
    BASE.chmod(0o755)
    host_key = directory / "host_ed25519"
    client_key = directory / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    user = login or "root"
    authorized = directory / f"authorized_{user}"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    authorized.chmod(0o600)
    mounts = ""
    if login:
        os.chown(authorized, LOGIN_UID, LOGIN_UID)  # sshd reads it as the user
        mounts = _login_user(directory, login, sudo, password) + " && "
    config = directory / "sshd_config"
    config.write_text(
        f"Port 22\nListenAddress 0.0.0.0\nHostKey {host_key}\nPermitRootLogin prohibit-password\n"
        f"AuthorizedKeysFile {directory}/authorized_%u\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nPidFile none\nMaxStartups 100:30:200\nSubsystem sftp internal-sftp\n"
        "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n"
    )
    # What hybridctl writes on a host lands in this host's own tmpfs, never in the machine's /etc.
    for path in PRIVATE_DIRS:
        Path(path).mkdir(parents=True, exist_ok=True)  # the mount point (the lab does the same)
    if files_on_disk:
        for path in PRIVATE_DIRS:
            (directory / "fs" / path.lstrip("/")).mkdir(parents=True)
        (directory / "bashrc").write_text("")
        private = "".join(f"mount --bind {directory}/fs{path} {path} && " for path in PRIVATE_DIRS)
        private += f"mount --bind {directory}/bashrc /root/.bashrc && "
    else:
        private = "".join(f"mount -t tmpfs -o mode=755 tmpfs {path} && " for path in PRIVATE_DIRS)
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
    log = (directory / "sshd.log").open("wb")  # sshd writes here for as long as it runs
    process = subprocess.Popen(
        [
            "ip", "netns", "exec", namespace, "unshare", "-m", "sh", "-c",
            f"{mounts}{private}mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec /usr/sbin/sshd -D -e -f {config}",
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
        f"Host {namespace}\n  HostName {namespace}\n  User {user}\n  IdentityFile {client_key}\n"
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
    return Sshd(namespace, directory, process.pid, ssh_config, known_hosts, client_key, host_key, user)
