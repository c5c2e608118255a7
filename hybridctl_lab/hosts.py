"""Lab hosts: each one boots the machine's systemd as its init, sshd runs as ssh.service.

Managed hosts (hybridctl configures them), test hosts (``hybridctl check`` runs its probes on
them over SSH) and the VIP VPC's hosts are all alike: a network namespace, its own cgroup
(``/sys/fs/cgroup/<tree>/NAME``) and a PID, mount, cgroup, UTS and IPC namespace whose PID 1
is ``/lib/systemd/systemd --system`` (lab-notes.md, "Real systemd as a lab host's init").

Booting (:func:`start_hosts`): ``sh`` moves itself into the host's cgroups and execs
``ip netns exec NAME unshare --pid --fork --mount --mount-proc --cgroup --uts --ipc ...
LAB_DIR/hosts/init.sh HOSTDIR NAME``; that script (:data:`INIT_SCRIPT`), as PID 1 of the new
namespaces, gives the host its own filesystem view and execs systemd:

* overlayfs over /etc, /root, /home and /var, the upper layers in ``LAB_DIR/hosts/NAME/ov/``
  (prepared before the boot with the host's hostname, machine-id, sshd drop-in, host key, login
  user, sudoers entry and authorized_keys); /usr and the rest of / are the machine's, read-only;
* tmpfs on /run and /tmp, a minimal /dev (no udev: no .device units), /proc/sys read-only
  except /proc/sys/net, /sys read-only with a cgroup2 mount of the host's own cgroup;
* the machine's own enabled units (postgresql, softether-*, getty, timers, ...) are disabled in
  the overlay: every host boots the machine's systemd with only ssh.service enabled.

The PID recorded is ``unshare``'s (it anchors nothing but waits for init); init's PID comes from
``/proc/UNSHARE/task/UNSHARE/children``. Commands run inside a host through
``nsenter -t INIT -m -u -i -n -p -C`` (:func:`enter_argv`). Stop: ``SIGRTMIN+4`` to init
(poweroff), ``cgroup.kill`` after a grace period, then the namespace and the cgroups go.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hybridctl.core.errors import PreconditionError, RemoteError
from hybridctl_lab import netns
from hybridctl_lab.topology import Host

DEFAULT_LAB_DIR = Path("/var/lib/hybridctl-lab")
LAB_DIR_ENV = "HYBRIDCTL_LAB_DIR"
SYSTEMD = "/lib/systemd/systemd"
SSHD = "/usr/sbin/sshd"
SSH_PORT = 22
# Directories with a per-host overlay (upper layer in LAB_DIR/hosts/NAME/ov/<dir>). /var goes
# last: its upper layer lives under /var/lib, which must still be the machine's when it is mounted.
OVERLAY_DIRS = ("etc", "root", "home", "var")
# Paths hybridctl (and SoftEther) write on a managed host; they exist, empty, on a bare host.
PRIVATE_DIRS = (
    "/var/lib/softether",
    "/var/log/softether",
    "/etc/sysctl.d",
    "/etc/systemd/system",
    "/etc/hybridctl",
)
# cgroup trees of the machine (v1 hybrid: cgroup2 at unified) each host gets a directory in.
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_TREES = ("unified", "systemd", "pids", "cpu")
# Units of the machine that no host may start: enabled on the machine (their .wants links are
# removed in the overlay by the init script), or pulled in for containers by generators.
RUNTIME_MASKS = (
    "console-getty.service",
    "container-getty@.service",
    "getty-static.service",
    "getty.target",
    # Nothing to do in a host whose kernel, /dev and / are the machine's; each costs boot time
    # on a loaded machine (systemd-analyze blame: 0.1-0.3 s each).
    "dev-hugepages.mount",
    "dev-mqueue.mount",
    "sys-fs-fuse-connections.mount",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "systemd-remount-fs.service",
    "systemd-sysusers.service",  # would add the machine's system users to the host's /etc
    "systemd-journal-flush.service",  # the journal stays in /run (volatile), not on the disk
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
)
# A unit's clean stop after SIGRTMIN+4 (poweroff): SoftEther's bridge waits ~10 s for an
# online cascade, so after this grace the host's cgroup is killed.
STOP_GRACE = 3.0
BOOT_TIMEOUT = 60.0
# curve25519 first and sntrup761 not offered: OpenSSH 9.2's default sntrup761x25519 costs
# ~150 ms CPU per connection (lab-notes.md); a client's own preference order would win otherwise.
KEX = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256"
# Default MaxStartups 10:30:100 resets bursts of parallel connections (40+ hosts, benchmarks).
MAX_STARTUPS = "512:30:1024"
PID_PREFIX = "host-"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-hybridctl-lab.conf"
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
# The one host that keeps logging in as root (so the root path of hybridctl stays tested).
ROOT_LOGIN_HOST = "hl-home-c1"
# Unprivileged login user per site kind (with NOPASSWD sudo), as the clouds' images have them.
SITE_USERS = {"aws": "admin", "azure": "azureuser", "onprem": "hybrid"}
FIRST_UID = 1001


def lab_dir(path: Path | str | None = None) -> Path:
    """The lab directory: ``path``, else ``$HYBRIDCTL_LAB_DIR``, else /var/lib/hybridctl-lab."""
    chosen = Path(path or os.environ.get(LAB_DIR_ENV) or DEFAULT_LAB_DIR).resolve()
    # sshd's StrictModes refuses keys under /tmp, every host mounts its own /run and /tmp, and
    # the overlays' upper layers must be on the machine's /var (or another real filesystem).
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

    @property
    def init_script(self) -> Path:
        return self.hosts / "init.sh"

    def host_dir(self, host: str) -> Path:
        return self.hosts / host

    def pid_file(self, host: str) -> Path:
        return self.pids / f"{PID_PREFIX}{host}.pid"

    def upper(self, host: str, path: str = "/") -> Path:
        """Where ``path`` (under one of :data:`OVERLAY_DIRS`) lands in the host's upper layer.

        Files the host wrote (or the lab prepared) are there; files it only reads from the
        machine are not, and a removed machine file is a whiteout: read through
        :func:`enter_argv` to see what the host sees."""
        top, _, rest = path.strip("/").partition("/")
        if top not in OVERLAY_DIRS:
            raise ValueError(f"{path} is not under an overlay directory ({', '.join(OVERLAY_DIRS)})")
        return self.host_dir(host) / "ov" / top / rest

    def private_dir(self, host: str, path: str) -> Path:
        return self.upper(host, path)


def cgroup_dirs(host: str) -> list[Path]:
    return [CGROUP_ROOT / tree / host for tree in CGROUP_TREES]


def login_user(host: Host, site_kind: str) -> str:
    """The user hybridctl (and people) log in as on ``host``: root on one home client, else
    the site's unprivileged user with sudo (pure)."""
    if host.name == ROOT_LOGIN_HOST:
        return "root"
    return SITE_USERS[site_kind]


# --------------------------------------------------------------------------- keys and configs


def new_ed25519() -> tuple[bytes, str]:
    """(OpenSSH private key PEM, public key line) generated in-process (no ssh-keygen spawn)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


def _write(path: Path, data: str | bytes, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    """Write a file with ``mode`` (its directory exists: callers create it once)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)  # O_CREAT's mode is ignored for an existing file
    if owner is not None:
        os.chown(path, *owner)


def _mkdir(path: Path, mode: int = 0o755, owner: tuple[int, int] | None = None) -> None:
    """A directory of an upper layer: its mode and owner become the host's view of it."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, *owner)


def ensure_client_key(paths: LabPaths) -> str:
    """Create the lab client key once; return its public key line."""
    pub = paths.client_key.with_suffix(".pub")
    paths.root.mkdir(parents=True, exist_ok=True)
    if not paths.client_key.exists() or not pub.exists():
        private, public = new_ed25519()
        _write(paths.client_key, private, 0o600)
        _write(pub, public + " hybridctl-lab\n", 0o644)
    return pub.read_text().strip()


def sshd_dropin(user: str, only_from: IPv4Address | None = None) -> str:
    """/etc/ssh/sshd_config.d/00-hybridctl-lab.conf of one host (pure).

    Read before the distribution's own settings (``Include`` comes first in Debian's
    sshd_config, and sshd keeps the first value it reads), so these win. ``only_from``: the
    bastion's address, the one source logins are accepted from (``AllowUsers *@ADDRESS``)."""
    root = "prohibit-password" if user == "root" else "no"
    allow = f"AllowUsers *@{only_from}\n" if only_from is not None else ""
    return f"""\
# hybridctl lab (generated by `hybridctl lab up`): key-only logins, {user} logs in.
{allow}HostKey {HOST_KEY}
HostKeyAlgorithms ssh-ed25519
PermitRootLogin {root}
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes yes
KexAlgorithms {KEX}
MaxStartups {MAX_STARTUPS}
MaxSessions 256
LoginGraceTime 30
PrintLastLog no
X11Forwarding no
"""


def ssh_address(host: Host, bastion: Host | None) -> IPv4Address:
    """The address SSH connects to: behind a bastion the private one (the bastion's view)."""
    return host.primary_ip if bastion is not None else host.ssh_address


def proxy_command(paths: LabPaths, host: Host, bastion: Host | None) -> str:
    """How SSH reaches ``host`` (pure). Directly reachable hosts: ``nc`` to the sshd from inside
    the host's namespace (the root namespace needs no route, address or link to any lab host).
    Behind a bastion: a second ssh to the bastion that forwards to the host (``-W``), which
    OpenSSH and paramiko both run; the host's sshd accepts logins from the bastion only."""
    if bastion is None:
        return f"ip netns exec {host.name} nc 127.0.0.1 {SSH_PORT}"
    return f"ssh -F {paths.ssh_config} -W {host.primary_ip}:{SSH_PORT} {bastion.name}"


def ssh_config(
    paths: LabPaths,
    hosts: Sequence[Host],
    users: Mapping[str, str] | None = None,
    bastions: Mapping[str, Host] | None = None,
) -> str:
    """LAB_DIR/ssh_config: one block per host with sshd (pure); ``bastions``: host name -> the
    bastion it is reached through."""
    users = users or {}
    bastions = bastions or {}
    blocks = [f"# hybridctl lab: ssh_config (generated by `hybridctl lab up`; use ssh -F {paths.ssh_config})\n"]
    for h in hosts:
        bastion = bastions.get(h.name)
        blocks.append(
            f"""\
Host {h.name}
  HostName {ssh_address(h, bastion)}
  Port {SSH_PORT}
  User {users.get(h.name, "root")}
  ProxyCommand {proxy_command(paths, h, bastion)}
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


def known_hosts_line(host: Host, public_key: str, bastion: Host | None = None) -> str:
    """Known under its alias and its HostName, so OpenSSH and paramiko both find it (pure)."""
    key_type, key_b64 = public_key.split()[:2]
    return f"{host.name},{ssh_address(host, bastion)} {key_type} {key_b64}"


INIT_SCRIPT = r"""#!/bin/sh
# hybridctl lab: PID 1 of a lab host's namespaces (generated by `hybridctl lab up`).
# init.sh HOSTDIR NAME: the host's own filesystem view over the machine's, then exec systemd.
set -eu
H=$1
NAME=$2
mount --make-rprivate /
mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev,size=256m tmpfs /tmp
# A minimal /dev: no udev here (so no .device units).
mount -t tmpfs -o mode=0755,nosuid,size=1m tmpfs /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8
mknod -m 666 /dev/urandom c 1 9
mknod -m 666 /dev/tty c 5 0
mkdir -m 755 /dev/net /dev/pts /dev/shm
mknod -m 666 /dev/net/tun c 10 200
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o mode=1777,nosuid,nodev,size=64m tmpfs /dev/shm
: > /dev/console
mount --bind "$H/console" /dev/console
# Last use of $H: once /var is an overlay, its lower layer (the machine's /var) hides the
# tmpfs LAB_DIR/hosts is mounted on.
for d in OVERLAY_DIRS; do
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$H/ov/$d,workdir=$H/work/$d" "/$d"
done
# Kernel settings are the machine's, except the network namespace's own.
mount --bind /proc/sys /proc/sys
mount --bind /proc/sys/net /proc/sys/net
mount -o remount,bind,ro /proc/sys
mount -o remount,bind,ro /sys
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
# Only ssh.service of the machine's enabled units starts here (removing the links leaves
# whiteouts in this host's overlay; the machine keeps its own).
for l in /etc/systemd/system/*.wants/*; do
  case "${l##*/}" in ssh.service) ;; *) rm -f "$l" ;; esac
done
# A bare host: none of hybridctl's files, whatever the machine itself holds.
rm -rf /etc/systemd/system/hybridctl-* /etc/systemd/system/softether-* /etc/systemd/system/*.wants/hybridctl-* \
  /etc/sysctl.d/60-hybridctl.conf /etc/hybridctl/* /var/lib/softether/* /var/log/softether/*
mkdir -p /run/systemd/system
for u in RUNTIME_MASKS; do ln -s /dev/null "/run/systemd/system/$u"; done
hostname "$NAME"
mount -o remount,bind,ro /
exec setpriv --bounding-set -sys_time,-sys_module,-sys_rawio SYSTEMD --system
""".replace("OVERLAY_DIRS", " ".join(OVERLAY_DIRS)).replace("RUNTIME_MASKS", " ".join(RUNTIME_MASKS)).replace(
    "SYSTEMD", SYSTEMD
)


def _account_files(user: str, uid: int) -> dict[str, str]:
    """/etc/passwd, group and shadow of a host: the machine's plus ``user`` (pure over the reads).

    The password field is ``*`` (no password, not locked: key logins only, sudo without one)."""
    out = {}
    for name, line in (
        ("passwd", f"{user}:x:{uid}:{uid}::/home/{user}:/bin/bash"),
        ("group", f"{user}:x:{uid}:"),
        ("shadow", f"{user}:*:20000:0:99999:7:::"),
    ):
        text = Path("/etc", name).read_text()
        kept = [ln for ln in text.splitlines() if not ln.startswith(f"{user}:")]
        out[name] = "\n".join([*kept, line]) + "\n"
    return out


def free_uid() -> int:
    """A UID (and GID) the machine does not use, for the hosts' login users."""
    used = set()
    for name in ("passwd", "group"):
        for line in Path("/etc", name).read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                used.add(int(fields[2]))
    uid = FIRST_UID
    while uid in used:
        uid += 1
    return uid


# The lab has no DNS server and its networks do not reach the machine's: a query to the
# machine's nameserver waits 5 s for nothing. A real host's resolver answers at once (a name,
# or "no such name"); here a host asks itself, where nothing listens, and gets its answer
# ("refused") as fast. SoftEther looks names up while a cascade connects (its NAT traversal
# servers) and waited ~1 s for them on every link (docs/lab.md "DNS").
RESOLV_CONF = (
    "# hybridctl lab: no DNS here; a query fails at once (nothing listens on 127.0.0.1:53)\n"
    "nameserver 127.0.0.1\n"
)


def prepare_host(
    paths: LabPaths, host: Host, user: str, client_pub: str, uid: int, bastion: Host | None = None
) -> str:
    """Fresh per-host directory: upper layers with what this host has of its own (hostname,
    machine-id, sshd drop-in and host key, login user with sudo, authorized_keys, empty
    private directories). Returns the host public key line."""
    hd = paths.host_dir(host.name)
    hd.mkdir(mode=0o755, parents=True)  # fresh: `up` removed the previous one
    for d in OVERLAY_DIRS:
        _mkdir(hd / "work" / d, 0o700)
        # The upper layer's top directory gives the merged one its mode.
        _mkdir(hd / "ov" / d, 0o700 if d == "root" else 0o755)
    _write(hd / "console", "")
    up = paths.upper
    _write(up(host.name, "/etc/hostname"), host.name + "\n")
    # The host's own name resolves locally (as Debian's installer writes it): sudo looks it up
    # on every run, and a lab host's DNS queries go nowhere (5 s timeouts each without this).
    machine_hosts = Path("/etc/hosts").read_text()
    _write(up(host.name, "/etc/hosts"), machine_hosts.rstrip("\n") + f"\n127.0.1.1\t{host.name}\n")
    _write(up(host.name, "/etc/resolv.conf"), RESOLV_CONF)
    _write(up(host.name, "/etc/machine-id"), uuid.uuid4().hex + "\n", 0o444)
    _mkdir(up(host.name, "/etc/ssh/sshd_config.d"))
    private, public = new_ed25519()
    _write(up(host.name, HOST_KEY), private, 0o600)
    _write(up(host.name, HOST_KEY + ".pub"), public + "\n")
    _write(hd / "ssh_host_ed25519_key.pub", public + "\n")
    _write(up(host.name, SSHD_DROPIN), sshd_dropin(user, bastion.primary_ip if bastion is not None else None))
    _write(up(host.name, "/root/.bashrc"), "")  # the machine's runs `pyenv init` (~90 ms per command)
    if user == "root":
        _mkdir(up(host.name, "/root/.ssh"), 0o700)
        _write(up(host.name, "/root/.ssh/authorized_keys"), client_pub + "\n", 0o600)
    else:
        owner = (uid, uid)
        shadow_gid = os.stat("/etc/shadow").st_gid
        for name, text in _account_files(user, uid).items():
            if name == "shadow":
                _write(up(host.name, "/etc/shadow"), text, 0o640, (0, shadow_gid))
            else:
                _write(up(host.name, f"/etc/{name}"), text)
        _mkdir(up(host.name, "/etc/sudoers.d"), 0o755)
        _write(up(host.name, "/etc/sudoers.d/90-hybridctl-lab"), f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
        _mkdir(up(host.name, f"/home/{user}"), 0o750, owner)
        _mkdir(up(host.name, f"/home/{user}/.ssh"), 0o700, owner)
        _write(up(host.name, f"/home/{user}/.ssh/authorized_keys"), client_pub + "\n", 0o600, owner)
    if host.managed:
        for path in PRIVATE_DIRS:  # bare, but there (SoftEther needs its directories)
            _mkdir(up(host.name, path))
    return public


HOSTS_TMPFS_SIZE = "1g"


def mount_hosts_dir(paths: LabPaths) -> None:
    """LAB_DIR/hosts on a tmpfs of its own: the hosts' upper layers (journals, SoftEther state)
    are written at memory speed, and ``down`` drops them with one umount instead of hundreds of
    rmdir()s on the disk (~1 s on this machine kind)."""
    paths.hosts.mkdir(mode=0o755, exist_ok=True)
    if not os.path.ismount(paths.hosts):
        netns.run(
            ["mount", "-t", "tmpfs", "-o", f"mode=0755,size={HOSTS_TMPFS_SIZE}", "hybridctl-lab", str(paths.hosts)],
            label="mount LAB_DIR/hosts",
        )


def write_init_script(paths: LabPaths) -> None:
    _write(paths.init_script, INIT_SCRIPT, 0o755)


def write_client_files(
    paths: LabPaths,
    hosts: Sequence[Host],
    host_keys: Mapping[str, str],
    users: Mapping[str, str],
    bastions: Mapping[str, Host],
) -> None:
    client_pub = ensure_client_key(paths)
    _write(paths.authorized_keys, client_pub + "\n", 0o600)
    lines = (known_hosts_line(h, host_keys[h.name], bastions.get(h.name)) + "\n" for h in hosts)
    _write(paths.known_hosts, "".join(lines))
    _write(paths.ssh_config, ssh_config(paths, hosts, users, bastions))


# --------------------------------------------------------------------------- host processes


@dataclass(frozen=True)
class PidRecord:
    """A booted host: ``pid`` is its ``unshare`` (parent of init), ``init`` its systemd."""

    pid: int
    starttime: int | None
    mnt_inode: int | None
    init: int | None = None
    init_starttime: int | None = None

    def render(self) -> str:
        return (
            json.dumps(
                {
                    "pid": self.pid,
                    "starttime": self.starttime,
                    "mnt": self.mnt_inode,
                    "init": self.init,
                    "init_starttime": self.init_starttime,
                }
            )
            + "\n"
        )

    @staticmethod
    def parse(text: str) -> PidRecord:
        data = json.loads(text)
        return PidRecord(
            int(data["pid"]), data.get("starttime"), data.get("mnt"), data.get("init"), data.get("init_starttime")
        )


def read_pid_records(paths: LabPaths) -> dict[str, PidRecord]:
    """Host name -> record, from LAB_DIR/pids/host-*.pid (unreadable files skipped)."""
    records = {}
    if paths.pids.is_dir():
        for f in paths.pids.glob(f"{PID_PREFIX}*.pid"):
            try:
                records[f.name.removeprefix(PID_PREFIX).removesuffix(".pid")] = PidRecord.parse(f.read_text())
            except (ValueError, KeyError, OSError):
                continue
    return records


def alive(record: PidRecord) -> bool:
    """True if the recorded host still runs (same PIDs *and* same start times)."""
    started = netns.proc_starttime(record.pid)
    if started is None or (record.starttime is not None and started != record.starttime):
        return False
    if record.init is None:
        return True
    init_started = netns.proc_starttime(record.init)
    return init_started is not None and (record.init_starttime is None or init_started == record.init_starttime)


def enter_argv(record: PidRecord) -> list[str]:
    """Prefix that runs a command inside the host: all of init's namespaces (its files, its
    processes, its hostname, its network, its cgroup root), as an SSH session there sees them."""
    if record.init is None:
        raise RemoteError(str(record.pid), "the host has not booted (no init process yet)")
    return ["nsenter", "-t", str(record.init), "-m", "-u", "-i", "-n", "-p", "-C", "--"]


def launch_argv(paths: LabPaths, host: Host) -> list[str]:
    """The boot command of one host (pure): join its cgroups, then the namespaces and init.sh."""
    q = shlex.quote
    join = "; ".join(f"echo $$ > {q(str(d / 'cgroup.procs'))}" for d in cgroup_dirs(host.name))
    inner = shlex.join(
        [
            *netns.netns_exec_argv(
                host.name,
                [
                    "unshare", "--pid", "--fork", "--mount", "--mount-proc", "--cgroup", "--uts", "--ipc",
                    "env", "-i", "container=hybridctl-lab", f"PATH={HOST_PATH}",
                    str(paths.init_script), str(paths.host_dir(host.name)), host.name,
                ],
            )
        ]
    )  # fmt: skip
    return ["sh", "-c", f"{join}; exec {inner}"]


# Every host's systemd, journald and dbus-daemon each take inotify instances, and the kernel
# counts them per user (root) machine-wide: the default limit of 128 let about 40 hosts boot,
# then an init exited during boot (seen with 40 extra LAN clients). Raised, never lowered.
INOTIFY_INSTANCES_PER_HOST = 8
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


def ensure_inotify_instances(host_count: int, knob: Path = INOTIFY_INSTANCES) -> int:
    """Raise the machine's inotify instance limit to fit ``host_count`` booting hosts; return it."""
    current = int(knob.read_text())
    wanted = 128 + INOTIFY_INSTANCES_PER_HOST * host_count
    if current < wanted:
        knob.write_text(f"{wanted}\n")
        return wanted
    return current


def start_hosts(paths: LabPaths, hosts: Sequence[Host]) -> dict[str, int]:
    """Boot every host at once (no waiting); record and return their ``unshare`` PIDs."""
    paths.pids.mkdir(parents=True, exist_ok=True)
    ensure_inotify_instances(len(hosts))
    pids = {}
    for h in hosts:
        for d in cgroup_dirs(h.name):
            d.mkdir(exist_ok=True)
        log = open(paths.host_dir(h.name) / "boot.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                launch_argv(paths, h),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C at the terminal that ran `lab up` must not reach them
            )
        finally:
            log.close()
        # Recorded at once, so `down` finds it even if we die before it boots.
        _write(paths.pid_file(h.name), PidRecord(proc.pid, netns.proc_starttime(proc.pid), None).render())
        pids[h.name] = proc.pid
    return pids


def init_pid(unshare_pid: int) -> int | None:
    """systemd's PID: the one child of ``unshare --fork`` once it has exec'ed systemd."""
    try:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if not children:
        return None
    child = int(children[0])
    try:
        exe = os.readlink(f"/proc/{child}/exe")
    except OSError:
        return None
    return child if os.path.realpath(SYSTEMD) == os.path.realpath(exe) else None


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


def wait_hosts(paths: LabPaths, pids: Mapping[str, int], timeout: float = BOOT_TIMEOUT) -> None:
    """Wait until every host's init runs and its sshd listens; record init. Raise if one died."""
    pending = dict(pids)
    inits: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for name, pid in list(pending.items()):
            if name not in inits:
                found = init_pid(pid)
                if found is not None:
                    inits[name] = found
                    record = PidRecord.parse(paths.pid_file(name).read_text())
                    record = PidRecord(
                        pid, record.starttime, netns.ns_inode_of_pid(found, "mnt"), found, netns.proc_starttime(found)
                    )
                    _write(paths.pid_file(name), record.render())
            if name in inits and listening(inits[name], SSH_PORT):
                del pending[name]
            elif netns.proc_starttime(pid) is None or _zombie(pid):
                log = (paths.host_dir(name) / "boot.log").read_text(errors="replace")[-1500:]
                console = (paths.host_dir(name) / "console").read_text(errors="replace")[-1500:]
                raise RemoteError(name, f"the host's init exited during boot: {log.strip()} {console.strip()}")
        if not pending:
            break
        if time.monotonic() > deadline:
            raise RemoteError(", ".join(pending), f"not booted with sshd listening after {timeout}s")
        time.sleep(0.02)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def stop_hosts(records: Mapping[str, PidRecord], grace: float = STOP_GRACE) -> list[int]:
    """Power every host off at once (SIGRTMIN+4 to its init), wait ``grace`` seconds, then kill
    what is left in its cgroup; return the recorded PIDs (``unshare``, init) that were running."""
    waiting: dict[int, int | None] = {}
    hosts_of: dict[int, str] = {}
    for name, r in records.items():
        if netns.proc_starttime(r.pid) == r.starttime or r.starttime is None:
            waiting[r.pid] = r.starttime
            hosts_of[r.pid] = name
        # init checked on its own: it outlives an ``unshare`` killed behind the lab's back.
        if r.init is not None and netns.signal_pid(r.init, r.init_starttime, signal.SIGRTMIN + 4):
            waiting[r.init] = r.init_starttime
            hosts_of[r.init] = name
    waiting = {pid: st for pid, st in waiting.items() if netns.proc_starttime(pid) is not None}
    pending = netns.wait_pids_exit(waiting, grace)
    for name in sorted({hosts_of[pid] for pid in pending}):
        kill_cgroup(name)
    netns.kill_pids({pid: waiting[pid] for pid in pending}, grace=1.0)
    return sorted(waiting)


def kill_cgroup(host: str) -> None:
    """SIGKILL everything in the host's cgroup2 tree (cgroup.kill: no PID is looked up)."""
    kill = CGROUP_ROOT / "unified" / host / "cgroup.kill"
    with contextlib.suppress(OSError):  # gone already, or an older kernel without cgroup.kill
        kill.write_text("1")


def lab_cgroups(prefix: str) -> list[Path]:
    """Every lab host's cgroup directory (``prefix``-named) in every tree, whatever the records say."""
    found = []
    for tree in CGROUP_TREES:
        base = CGROUP_ROOT / tree
        if base.is_dir():
            found += sorted(p for p in base.iterdir() if p.name.startswith(prefix) and p.is_dir())
    return found


def remove_cgroups(dirs: Sequence[Path]) -> list[Path]:
    """rmdir the cgroup directories depth-first (systemd made children inside); return those left."""
    left = []
    for top in dirs:
        for sub in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # reported below through its top directory
                sub.rmdir()
        try:
            top.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            left.append(top)
    return left


def clear_host_files(paths: LabPaths) -> None:
    """Remove what ``up`` wrote, except the client key (documented to persist)."""
    while os.path.ismount(paths.hosts):  # (a crashed `up` twice could have stacked two)
        if netns.run(["umount", str(paths.hosts)], check=False).returncode != 0:
            raise RemoteError("lab down", f"cannot unmount {paths.hosts} (still in use?)")
    shutil.rmtree(paths.hosts, ignore_errors=True)
    for f in paths.pids.glob("*.pid") if paths.pids.is_dir() else []:
        if f.name != "daemon.pid":
            f.unlink(missing_ok=True)
    for f in (paths.ssh_config, paths.known_hosts, paths.authorized_keys, paths.state):
        f.unlink(missing_ok=True)
