"""SSH to hosts with paramiko: one verified connection per host, many commands over it.

- Settings come from the inventory's ``ssh`` block, then the OpenSSH client config it names
  (or ~/.ssh/config): HostName, Port, User, IdentityFile, ProxyCommand, ProxyJump,
  UserKnownHostsFile.
- Jump hosts (``ssh.jump``, else the config's ProxyJump): a verified connection to the first hop
  (itself reached however its own config says), then a ``direct-tcpip`` channel through it to the
  next hop or the target, like ``ssh -J``. Every hop's host key is verified like any host's.
- Keys: the inventory's, the config's, the agent's, ~/.ssh defaults.
- Host keys are verified against known_hosts. An unknown host is refused unless the caller
  passed ``accept_new_host_keys`` (then the key is recorded, like OpenSSH's
  ``StrictHostKeyChecking=accept-new``); a changed key is always refused.
- Secrets go to commands on stdin, never in the command line.
- Root: scripts run through hostscript's bootstrap, under ONE ``sudo -n`` when the login user is
  not root (``ssh.become``); a sudo password (``ssh.become_password``) goes to sudo on stdin.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import paramiko

from hybridctl.backends.hostscript import NO_BECOME, Become, become_error, become_stdin, bootstrap
from hybridctl.core.errors import HostKeyError, RemoteError
from hybridctl.core.inventory.models import SshEndpoint, jump_hops
from hybridctl.core.secrets import SecretRef, resolve_external

DEFAULT_CONFIG = Path("~/.ssh/config").expanduser()
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts").expanduser()
MAX_JUMP_DEPTH = 8  # jump hosts whose own config names jump hosts: stop a loop


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass(frozen=True)
class ResolvedEndpoint:
    """What we will actually connect to, after reading the OpenSSH config."""

    alias: str
    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    proxy_command: str | None
    known_hosts: Path
    jump: tuple[str, ...] = ()  # hops, first hop first (ssh_config alias or [user@]host[:port])

    @property
    def known_hosts_name(self) -> str:
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


def resolve(endpoint: SshEndpoint) -> ResolvedEndpoint:
    config_path = Path(endpoint.config_file).expanduser() if endpoint.config_file else DEFAULT_CONFIG
    looked: dict[str, object] = {}
    if config_path.exists():
        config = paramiko.SSHConfig.from_path(str(config_path))
        looked = dict(config.lookup(endpoint.host))
    elif endpoint.config_file:
        raise RemoteError(endpoint.host, f"ssh config file {config_path} does not exist", "fix ssh.config_file")
    key_files: list[str] = []
    if endpoint.key:
        key_files.append(str(Path(endpoint.key).expanduser()))
    identity_files = looked.get("identityfile") or []
    if isinstance(identity_files, list):
        key_files.extend(str(Path(str(k)).expanduser()) for k in identity_files)
    known_hosts = endpoint.known_hosts or (
        str(looked["userknownhostsfile"]).split()[0] if looked.get("userknownhostsfile") else None
    )
    port = endpoint.port if endpoint.port != 22 or "port" not in looked else int(str(looked["port"]))
    user = endpoint.user if endpoint.user != "root" or "user" not in looked else str(looked["user"])
    jump = jump_hops(endpoint.jump)
    proxy_command = str(looked["proxycommand"]) if looked.get("proxycommand") else None
    if not jump and looked.get("proxyjump") and str(looked["proxyjump"]).lower() != "none":
        jump = jump_hops(str(looked["proxyjump"]))
    if jump:
        proxy_command = None  # the inventory's jump, or ProxyJump, wins over a ProxyCommand
    return ResolvedEndpoint(
        alias=endpoint.host,
        hostname=str(looked.get("hostname", endpoint.host)),
        port=port,
        user=user,
        key_files=tuple(dict.fromkeys(k for k in key_files if Path(k).exists())),
        proxy_command=proxy_command,
        known_hosts=Path(known_hosts).expanduser() if known_hosts else DEFAULT_KNOWN_HOSTS,
        jump=tuple(jump),
    )


def hop_endpoint(hop: str, via: SshEndpoint) -> SshEndpoint:
    """One jump host as an endpoint: ``[ssh://][user@]host[:port]`` or an alias of the same
    ssh_config. The target's config file, key and (explicit) known_hosts apply to it too."""
    text = hop[len("ssh://") :] if hop.startswith("ssh://") else hop
    user, _, host = text.rpartition("@")
    port = 22
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        host = address
        if rest.startswith(":"):
            port = int(rest[1:])
    elif ":" in host:
        host, _, number = host.partition(":")
        port = int(number)
    return SshEndpoint(
        host=host,
        port=port,
        user=user or "root",
        key=via.key,
        config_file=via.config_file,
        known_hosts=via.known_hosts,
    )


class _KnownHosts:
    """known_hosts files, each parsed once per version (inode, times, size) for the process.

    paramiko's ``HostKeys.load`` checks every line against the ones before it (and builds a
    class per check): 26 checks, ~14 ms of CPU, for the lab's 12 lines, growing with the square
    of the file, paid by every connection that loads it. A client gets the target's own entries
    from the one parse instead, exactly what the full load would have given it to verify with.
    """

    _lock = threading.Lock()
    _parsed: ClassVar[dict[Path, tuple[tuple[int, int, int, int], paramiko.HostKeys]]] = {}

    @classmethod
    def keys_for(cls, path: Path, name: str) -> dict[str, paramiko.PKey]:
        """The keys known_hosts ``path`` holds for ``name`` (``host`` or ``[host]:port``), by type."""
        try:
            info = path.stat()
        except FileNotFoundError:
            return {}
        version = (info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size)
        with cls._lock:
            cached = cls._parsed.get(path)
            if cached is None or cached[0] != version:
                cached = (version, paramiko.HostKeys(str(path)))
                cls._parsed[path] = cached
            found = cached[1].lookup(name)
            return dict(found) if found is not None else {}


def _server_key_name(hostname: str, port: int) -> str:
    """How known_hosts names a server (as paramiko's and OpenSSH's lookups do)."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


class _AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Record an unknown host's key in known_hosts (never used for a changed key)."""

    _lock = threading.Lock()

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        with self._lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self.known_hosts.open("a", encoding="utf-8") as handle:
                handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


class _RejectUnknownPolicy(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyError(
            hostname,
            f"host key ({key.get_name()} {key.fingerprint}) is not in known_hosts",
            "verify the fingerprint, then re-run with --accept-new-host-keys (or add it to known_hosts)",
        )


class SshSession:
    """One connection to one host; commands run on channels of the same transport."""

    def __init__(
        self, name: str, endpoint: SshEndpoint, *, accept_new_host_keys: bool = False, connect_timeout: float = 15.0
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.accept_new_host_keys = accept_new_host_keys
        self.connect_timeout = connect_timeout
        self._client: paramiko.SSHClient | None = None
        self.resolved: ResolvedEndpoint | None = None
        self.become: Become = NO_BECOME
        self._become_password: str | None = None
        self._jumps: list[paramiko.SSHClient] = []  # connections to jump hosts, first hop first
        self.commands_run = 0
        # time.monotonic() when connect() started and how long it took (the run's timeline)
        self.connect_started = 0.0
        self.connect_seconds = 0.0

    def connect(self) -> None:
        self.connect_started = time.monotonic()
        try:
            self._connect()
        finally:
            self.connect_seconds = time.monotonic() - self.connect_started

    def _connect(self) -> None:
        resolved = resolve(self.endpoint)
        self.resolved = resolved
        method = self.endpoint.become or ("none" if resolved.user == "root" else "sudo")
        password = self.endpoint.become_password if method == "sudo" else None
        self.become = Become(method, bool(password), resolved.user)
        if password:
            self._become_password = resolve_external(SecretRef(f"{self.name} ssh.become_password", password))
        self._client = self._dial(resolved, None, 0)

    def _dial(self, resolved: ResolvedEndpoint, label: str | None, depth: int) -> paramiko.SSHClient:
        """A verified connection to ``resolved`` (``label``: "jump host X" for a hop)."""
        sock: paramiko.ProxyCommand | paramiko.Channel | None = None
        if resolved.jump:
            if depth >= MAX_JUMP_DEPTH:
                raise RemoteError(self.name, f"over {MAX_JUMP_DEPTH} nested jump hosts", "look for a ProxyJump loop")
            hops = [resolve(hop_endpoint(hop, self.endpoint)) for hop in resolved.jump]
            # The first hop is reached however its own config says (ProxyCommand, its own
            # ProxyJump); the next ones through the previous hop only, as with `ssh -J`.
            client = self._dial(hops[0], f"jump host {hops[0].alias}", depth + 1)
            for hop in hops[1:]:
                bare = replace(hop, proxy_command=None, jump=())
                client = self._open(bare, self._tunnel(client, hop, f"jump host {hop.alias}"), f"jump host {hop.alias}")
            sock = self._tunnel(client, resolved, label)
        elif resolved.proxy_command:
            sock = paramiko.ProxyCommand(resolved.proxy_command)
        return self._open(resolved, sock, label)

    def _tunnel(self, via: paramiko.SSHClient, to: ResolvedEndpoint, label: str | None) -> paramiko.Channel:
        """A direct-tcpip channel from the jump host ``via`` to ``to``'s sshd."""
        transport = via.get_transport()
        what = label or to.alias
        if transport is None or not transport.is_active():
            raise RemoteError(self.name, f"the jump host's connection to {what} was lost", "re-run")
        try:
            return transport.open_channel(
                "direct-tcpip", (to.hostname, to.port), ("127.0.0.1", 0), timeout=self.connect_timeout
            )
        except (paramiko.ChannelException, paramiko.SSHException, OSError, EOFError) as error:
            raise RemoteError(
                self.name,
                f"the jump host cannot reach {what} at {to.hostname}:{to.port}: {error}",
                "is the host up, reachable from the jump host, and does the jump host allow TCP forwarding?",
            ) from None

    def _open(
        self, resolved: ResolvedEndpoint, sock: paramiko.ProxyCommand | paramiko.Channel | None, label: str | None
    ) -> paramiko.SSHClient:
        """SSH over ``sock`` (or TCP), host key verified against ``resolved.known_hosts``."""
        prefix = f"{label} ({resolved.hostname}:{resolved.port}): " if label else ""
        client = paramiko.SSHClient()
        name = _server_key_name(resolved.hostname, resolved.port)
        for key_type, key in _KnownHosts.keys_for(resolved.known_hosts, name).items():
            client.get_host_keys().add(name, key_type, key)
        client.set_missing_host_key_policy(
            _AcceptNewPolicy(resolved.known_hosts) if self.accept_new_host_keys else _RejectUnknownPolicy()
        )
        try:
            client.connect(
                resolved.hostname,
                port=resolved.port,
                username=resolved.user,
                key_filename=list(resolved.key_files) or None,  # type: ignore[arg-type]  # accepts a list
                allow_agent=bool(os.environ.get("SSH_AUTH_SOCK")),
                look_for_keys=not resolved.key_files,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                sock=sock,
            )
        except HostKeyError as error:
            client.close()
            if not label:
                raise
            raise HostKeyError(self.name, prefix + error.message, error.hint) from None
        except paramiko.BadHostKeyException as error:
            client.close()
            raise HostKeyError(
                self.name,
                f"{prefix}host key CHANGED for {resolved.known_hosts_name}: "
                f"expected {error.expected_key.get_base64()[:16]}..., got {error.key.get_base64()[:16]}...",
                "refusing to connect: if the host was really rebuilt, remove its old entry from "
                f"{resolved.known_hosts} and verify the new key",
            ) from None
        except paramiko.AuthenticationException as error:
            client.close()
            raise RemoteError(
                self.name,
                f"{prefix}SSH authentication failed as {resolved.user}: {error}",
                "check ssh.user and ssh.key",
            ) from None
        except (TimeoutError, OSError, paramiko.SSHException, EOFError) as error:
            client.close()
            raise RemoteError(
                self.name,
                f"{prefix}cannot connect to {resolved.hostname}:{resolved.port}: {error}",
                "is the host up and sshd reachable?",
            ) from None
        if label:
            self._jumps.append(client)
        return client

    def run(self, command: str, stdin: str | bytes | None = None, timeout: float = 600.0) -> CommandResult:
        """Run ``command`` (a shell command line: never put secrets in it); ``stdin`` carries data."""
        if self._client is None:
            raise RemoteError(self.name, "not connected")
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise RemoteError(self.name, "connection lost", "re-run: hybridctl converges")
        self.commands_run += 1
        try:
            channel = transport.open_session(timeout=self.connect_timeout)
            channel.settimeout(timeout)
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin.encode() if isinstance(stdin, str) else stdin)
            channel.shutdown_write()
            out, err = self._drain(channel, timeout)
            rc = channel.recv_exit_status()
            channel.close()
        except (TimeoutError, OSError, paramiko.SSHException) as error:
            raise RemoteError(self.name, f"command failed to run: {error}") from None
        return CommandResult(rc, out.decode(errors="replace"), err.decode(errors="replace"))

    def run_script(
        self, script: str, secrets: bytes = b"", timeout: float = 600.0, shell: str = "sh"
    ) -> CommandResult:
        """Run ``script`` (stdin: the script, then ``secrets``) as root on the host, in ONE exec.

        The command line is hostscript's fixed bootstrap; with ``become: sudo`` the whole script
        runs under one sudo. A sudo that cannot be used raises a RemoteError naming the host, the
        login user and the fixes; nothing of the script ran then.
        """
        stdin = become_stdin(self.become, self._become_password, script.encode() + secrets)
        result = self.run(bootstrap(script, self.become, shell), stdin=stdin, timeout=timeout)
        failure = become_error(result.stdout) if result.rc != 0 else None
        if failure is not None:
            raise self._become_failure(failure)
        return result

    def _become_failure(self, kind: str) -> RemoteError:
        user = self.become.user
        if kind == "no-sudo":
            return RemoteError(
                self.name,
                f"the login user {user!r} is not root and sudo is not installed; nothing was changed on this host",
                "install sudo, log in as root (ssh.user), or set ssh.become: none if nothing needs root",
            )
        if kind == "password-rejected":
            return RemoteError(
                self.name,
                f"sudo refused ssh.become_password for user {user!r}; nothing was changed on this host",
                f"check the password, or give {user} a NOPASSWD sudoers rule",
            )
        return RemoteError(
            self.name,
            f"sudo needs a password for user {user!r} and none was given; nothing was changed on this host",
            f"give {user} a NOPASSWD sudoers rule (e.g. '{user} ALL=(root) NOPASSWD: ALL' in "
            "/etc/sudoers.d/hybridctl), or set ssh.become_password: env:VARIABLE or file:/path in the inventory",
        )

    def _drain(self, channel: paramiko.Channel, timeout: float) -> tuple[bytearray, bytearray]:
        """Read stdout and stderr together until the channel's EOF.

        Both streams are read as data arrives (a command filling one stream's window must not
        block the other), and reading stops only at EOF: OpenSSH may send the exit status before
        the last output, so "exit status ready and nothing buffered" would lose the tail.
        """
        out = bytearray()
        err = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            progressed = False
            while channel.recv_ready():
                out += channel.recv(65536)
                progressed = True
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
                progressed = True
            if channel.eof_received and not channel.recv_ready() and not channel.recv_stderr_ready():
                return out, err
            if channel.closed:
                return out, err
            if not progressed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no end of output after {timeout:.0f}s")
                # Sleep until output, EOF or close arrive: the channel's pipe fires for either
                # stream. (Polling every 2 ms cost a GIL wake-up 500 times a second per exec, and
                # hybridctl runs one exec per host at once.)
                try:
                    select.select([channel], [], [], min(remaining, 1.0))
                except (OSError, ValueError):  # no descriptor to spare: poll instead
                    time.sleep(0.002)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for jump in reversed(self._jumps):
            jump.close()
        self._jumps.clear()


def connect_one(
    name: str, endpoint: SshEndpoint, *, accept_new_host_keys: bool = False
) -> tuple[SshSession | None, str]:
    """One verified connection, or why not (never raises for the host's own failure)."""
    session = SshSession(name, endpoint, accept_new_host_keys=accept_new_host_keys)
    try:
        session.connect()
    except RemoteError as error:
        return None, str(error)
    return session, ""


def connect_all(
    targets: Iterable[tuple[str, SshEndpoint]],
    *,
    accept_new_host_keys: bool = False,
    max_workers: int = 64,
) -> tuple[dict[str, SshSession], dict[str, str]]:
    """Connect to every host in parallel. Returns (sessions, errors by host); never raises per host."""
    items = list(targets)
    sessions: dict[str, SshSession] = {}
    errors: dict[str, str] = {}
    if not items:
        return sessions, errors

    def one(item: tuple[str, SshEndpoint]) -> tuple[str, SshSession | None, str]:
        name, endpoint = item
        session, error = connect_one(name, endpoint, accept_new_host_keys=accept_new_host_keys)
        return name, session, error

    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        for name, session, error in pool.map(one, items):
            if session is not None:
                sessions[name] = session
            else:
                errors[name] = error
    return sessions, errors
