"""Lab hosts with sshd: keys, sshd per host in its own mount namespace, ssh_config.

Managed hosts (hybridctl configures them) and test hosts (``hybridctl check`` runs its
probes on them over SSH) run an sshd; only managed hosts get the private directories
(:data:`PRIVATE_DIRS`), a test host's mount namespace has just its own /run and .bashrc.

A host with sshd is a network namespace plus a mount namespace held by its sshd. The sshd
is started as ``ip netns exec NS unshare -m -u sh -c '...; exec sshd -D'``: every step
execs the next, so the PID we get back *is* sshd's, and it anchors the host's mount
namespace (``nsenter -t PID -m -n -u`` enters the host).

Inside the mount namespace: a private tmpfs on /run (sshd needs /run/sshd, SoftEther
/run/softether), per-host directories bind-mounted over the paths hybridctl writes
(:data:`PRIVATE_DIRS`), and an empty /root/.bashrc (the machine's one runs ``pyenv init``
for every SSH command, ~90 ms each; lab-notes.md).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hybridctl.errors import PreconditionError, RemoteError
from hybridctl.lab import netns
from hybridctl.lab.topology import Host

DEFAULT_LAB_DIR = Path("/var/lib/hybridctl-lab")
LAB_DIR_ENV = "HYBRIDCTL_LAB_DIR"
SSHD = "/usr/sbin/sshd"
SSH_PORT = 22
# Paths hybridctl (and SoftEther) write on a host; each gets a per-host directory.
PRIVATE_DIRS = (
    "/var/lib/softether",
    "/var/log/softether",
    "/etc/sysctl.d",
    "/etc/systemd/system",
    "/etc/hybridctl",
)
BASHRC = Path("/root/.bashrc")
# curve25519 first and sntrup761 not offered: OpenSSH 9.2's default sntrup761x25519 costs
# ~150 ms CPU per connection (lab-notes.md); a client's own preference order would win otherwise.
KEX = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256"
# Default MaxStartups 10:30:100 resets bursts of parallel connections (40+ hosts, benchmarks).
MAX_STARTUPS = "512:30:1024"
PID_PREFIX = "sshd-"


def lab_dir(path: Path | str | None = None) -> Path:
    """The lab directory: ``path``, else ``$HYBRIDCTL_LAB_DIR``, else /var/lib/hybridctl-lab."""
    chosen = Path(path or os.environ.get(LAB_DIR_ENV) or DEFAULT_LAB_DIR).resolve()
    # sshd's StrictModes refuses keys under /tmp, and every managed host mounts its own /run.
    for bad in (Path("/tmp"), Path("/run"), Path("/var/tmp")):
        if chosen == bad or bad in chosen.parents:
            raise PreconditionError(f"lab directory {chosen} must not be under {bad} (e.g. use /var/lib/...)")
    return chosen


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def hosts(self) -> Path:
        return self.root / "hosts"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def client_key(self) -> Path:
        """The lab's SSH client key (persists across up/down)."""
        return self.root / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    @property
    def state(self) -> Path:
        return self.root / "dataplane.json"

    def host_dir(self, host: str) -> Path:
        return self.hosts / host

    def pid_file(self, host: str) -> Path:
        return self.pids / f"{PID_PREFIX}{host}.pid"

    def private_dir(self, host: str, path: str) -> Path:
        return self.host_dir(host) / "fs" / path.lstrip("/")


# --------------------------------------------------------------------------- keys and configs


def new_ed25519() -> tuple[bytes, str]:
    """(OpenSSH private key PEM, public key line) generated in-process (no ssh-keygen spawn)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


def _write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write a file with ``mode`` (its directory exists: callers create it once)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)  # O_CREAT's mode is ignored for an existing file


def ensure_client_key(paths: LabPaths) -> str:
    """Create the lab client key once; return its public key line."""
    pub = paths.client_key.with_suffix(".pub")
    paths.root.mkdir(parents=True, exist_ok=True)
    if not paths.client_key.exists() or not pub.exists():
        private, public = new_ed25519()
        _write(paths.client_key, private, 0o600)
        _write(pub, public + " hybridctl-lab\n", 0o644)
    return pub.read_text().strip()


def sshd_config(paths: LabPaths, host: Host) -> str:
    """sshd_config of one host with sshd (pure)."""
    hd = paths.host_dir(host.name)
    return f"""\
# hybridctl lab: sshd of {host.name} (generated; rewritten by `hybridctl lab up`)
Port {SSH_PORT}
ListenAddress 0.0.0.0
HostKey {hd}/ssh_host_ed25519_key
HostKeyAlgorithms ssh-ed25519
PidFile none
AuthorizedKeysFile {paths.authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes yes
KexAlgorithms {KEX}
MaxStartups {MAX_STARTUPS}
MaxSessions 256
LoginGraceTime 30
PrintMotd no
PrintLastLog no
X11Forwarding no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
LogLevel INFO
"""


def ssh_config(paths: LabPaths, hosts: Sequence[Host]) -> str:
    """LAB_DIR/ssh_config: one block per host with sshd (pure).

    The ProxyCommand reaches the sshd from inside the host's namespace, so the root
    namespace needs no route, address or link to any lab host; a jump host looks the same.
    """
    blocks = [f"# hybridctl lab: ssh_config (generated by `hybridctl lab up`; use ssh -F {paths.ssh_config})\n"]
    for h in hosts:
        blocks.append(
            f"""\
Host {h.name}
  HostName {h.ssh_address}
  Port {SSH_PORT}
  User root
  ProxyCommand ip netns exec {h.name} nc 127.0.0.1 {SSH_PORT}
  IdentityFile {paths.client_key}
  IdentitiesOnly yes
  UserKnownHostsFile {paths.known_hosts}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  CheckHostIP no
  HostKeyAlgorithms ssh-ed25519
  KexAlgorithms {KEX}
  BatchMode yes
  LogLevel ERROR
"""
        )
    return "\n".join(blocks)


def known_hosts_line(host: Host, public_key: str) -> str:
    """Known under its alias and its HostName, so OpenSSH and paramiko both find it (pure)."""
    key_type, key_b64 = public_key.split()[:2]
    return f"{host.name},{host.ssh_address} {key_type} {key_b64}"


def mount_script(paths: LabPaths, host: Host, *, private_bashrc: bool) -> str:
    """Shell run inside ``unshare -m -u``: private mounts, hostname, then exec sshd (pure)."""
    q = shlex.quote
    lines = [
        "set -e",
        "mount -t tmpfs -o mode=0755,size=64m tmpfs /run",
        "mkdir -p /run/sshd /run/softether /run/lock",
    ]
    # Test hosts only need sshd's /run (and the cheap .bashrc mount: `check` runs many
    # short SSH commands there); the directories hybridctl writes exist on managed hosts only.
    for path in PRIVATE_DIRS if host.managed else ():
        lines.append(f"mount --bind {q(str(paths.private_dir(host.name, path)))} {q(path)}")
    if private_bashrc:
        lines.append(f"mount --bind {q(str(paths.host_dir(host.name) / 'bashrc'))} {q(str(BASHRC))}")
    lines.append(f"hostname {q(host.name)}")
    lines.append(f"exec {SSHD} -D -e -f {q(str(paths.host_dir(host.name) / 'sshd_config'))}")
    return "\n".join(lines)


def prepare_host(paths: LabPaths, host: Host) -> str:
    """Fresh per-host directory (bare managed host: empty private dirs), host key, sshd_config.

    Returns the host public key line.
    """
    hd = paths.host_dir(host.name)
    hd.mkdir(mode=0o755, parents=True)  # fresh: `up` removed the previous one
    for path in PRIVATE_DIRS if host.managed else ():
        paths.private_dir(host.name, path).mkdir(parents=True)
    _write(hd / "bashrc", "")  # empty on purpose: no `pyenv init` per SSH command
    private, public = new_ed25519()
    _write(hd / "ssh_host_ed25519_key", private, 0o600)
    _write(hd / "ssh_host_ed25519_key.pub", public + "\n")
    _write(hd / "sshd_config", sshd_config(paths, host))
    return public


def write_client_files(paths: LabPaths, hosts: Sequence[Host], host_keys: Mapping[str, str]) -> None:
    client_pub = ensure_client_key(paths)
    _write(paths.authorized_keys, client_pub + "\n", 0o600)
    _write(paths.known_hosts, "".join(known_hosts_line(h, host_keys[h.name]) + "\n" for h in hosts))
    _write(paths.ssh_config, ssh_config(paths, hosts))


def ensure_mount_points() -> None:
    """Bind mounts need their target: create the few private paths the machine lacks.

    Empty directories only (in practice /etc/hybridctl); they stay after ``lab down``.
    """
    for path in PRIVATE_DIRS:
        Path(path).mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------- sshd processes


@dataclass(frozen=True)
class PidRecord:
    pid: int
    starttime: int | None
    mnt_inode: int | None

    def render(self) -> str:
        return json.dumps({"pid": self.pid, "starttime": self.starttime, "mnt": self.mnt_inode}) + "\n"

    @staticmethod
    def parse(text: str) -> PidRecord:
        data = json.loads(text)
        return PidRecord(int(data["pid"]), data.get("starttime"), data.get("mnt"))


def read_pid_records(paths: LabPaths) -> dict[str, PidRecord]:
    """Host name -> sshd record, from LAB_DIR/pids/sshd-*.pid (unreadable files skipped)."""
    records = {}
    if paths.pids.is_dir():
        for f in paths.pids.glob(f"{PID_PREFIX}*.pid"):
            try:
                records[f.name.removeprefix(PID_PREFIX).removesuffix(".pid")] = PidRecord.parse(f.read_text())
            except (ValueError, KeyError, OSError):
                continue
    return records


def alive(record: PidRecord) -> bool:
    """True if the recorded process still runs (same PID *and* same start time)."""
    started = netns.proc_starttime(record.pid)
    return started is not None and (record.starttime is None or started == record.starttime)


def start_sshds(paths: LabPaths, hosts: Sequence[Host]) -> dict[str, int]:
    """Start every host's sshd at once (no waiting); record and return their PIDs."""
    paths.pids.mkdir(parents=True, exist_ok=True)
    private_bashrc = BASHRC.exists()
    pids = {}
    for h in hosts:
        log = open(paths.host_dir(h.name) / "sshd.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                netns.netns_exec_argv(
                    h.name, ["unshare", "-m", "-u", "sh", "-c", mount_script(paths, h, private_bashrc=private_bashrc)]
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C at the terminal that ran `lab up` must not reach them
            )
        finally:
            log.close()
        # Recorded at once, so `down` finds it even if we die before it listens.
        _write(paths.pid_file(h.name), PidRecord(proc.pid, netns.proc_starttime(proc.pid), None).render())
        pids[h.name] = proc.pid
    return pids


def listening(pid: int, port: int) -> bool:
    """Does the process's network namespace have a TCP socket listening on ``port``?"""
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    want = f":{port:04X}"
    for line in table.splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(want) and fields[3] == "0A":  # 0A = LISTEN
            return True
    return False


def wait_sshds(paths: LabPaths, pids: Mapping[str, int], timeout: float = 20.0) -> None:
    """Wait until every sshd listens; then record its mount namespace. Raise if one died."""
    pending = dict(pids)
    deadline = time.monotonic() + timeout
    while pending:
        for name, pid in list(pending.items()):
            if listening(pid, SSH_PORT) and netns.proc_starttime(pid) is not None:
                record = PidRecord.parse(paths.pid_file(name).read_text())
                record = PidRecord(pid, record.starttime, netns.ns_inode_of_pid(pid, "mnt"))
                _write(paths.pid_file(name), record.render())
                del pending[name]
            elif netns.proc_starttime(pid) is None or _zombie(pid):
                log = (paths.host_dir(name) / "sshd.log").read_text(errors="replace")[-2000:]
                raise RemoteError(name, f"sshd exited during start: {log.strip()}")
        if not pending:
            break
        if time.monotonic() > deadline:
            raise RemoteError(", ".join(pending), f"sshd not listening after {timeout}s")
        time.sleep(0.01)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def clear_host_files(paths: LabPaths) -> None:
    """Remove what ``up`` wrote, except the client key (documented to persist)."""
    shutil.rmtree(paths.hosts, ignore_errors=True)
    for f in paths.pids.glob(f"{PID_PREFIX}*.pid") if paths.pids.is_dir() else []:
        f.unlink(missing_ok=True)
    for f in (paths.ssh_config, paths.known_hosts, paths.authorized_keys, paths.state):
        f.unlink(missing_ok=True)
