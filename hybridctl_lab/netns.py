"""Low-level helpers for network namespaces and the processes inside them.

Kept small and free of lab policy: running commands (one, or many in parallel),
``ip -batch``, finding the processes that live in given namespaces, and killing
processes by PID safely (a PID is only signalled if its start time still matches the
one recorded, and through a pidfd, so a recycled PID is never hit).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hybridctl.core.errors import PreconditionError, RemoteError

NETNS_DIR = Path("/run/netns")
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Job:
    """One command for :func:`run_parallel`."""

    argv: Sequence[str]
    input: str | None = None
    label: str = ""  # what to call it in an error message


def require_root_and_tools(tools: Iterable[str]) -> None:
    """Raise :class:`PreconditionError` unless we are root and every tool is on PATH."""
    if os.geteuid() != 0:
        raise PreconditionError("the lab needs root (network and mount namespaces)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise PreconditionError(
            f"missing programs for the lab: {', '.join(missing)} "
            "(apt-get install iproute2 nftables openssh-server openssh-client netcat-openbsd util-linux "
            "sudo systemd dbus)"
        )


def _fail(label: str, argv: Sequence[str], proc: subprocess.CompletedProcess[str]) -> RemoteError:
    detail = (proc.stderr or proc.stdout or "").strip()
    return RemoteError(label or argv[0], f"`{' '.join(argv)}` exited {proc.returncode}: {detail}")


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    check: bool = True,
    label: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture text output; raise :class:`RemoteError` on failure if ``check``."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RemoteError(label or argv[0], f"`{' '.join(argv)}` timed out after {timeout}s") from exc
    if check and proc.returncode != 0:
        raise _fail(label, argv, proc)
    return proc


def run_parallel(
    jobs: Sequence[Job], *, timeout: float = DEFAULT_TIMEOUT, check: bool = True
) -> list[subprocess.CompletedProcess[str]]:
    """Start every job at once, then collect them; the lab's setup is many tiny commands."""
    procs: list[tuple[Job, subprocess.Popen[str]]] = []
    for job in jobs:
        procs.append(
            (
                job,
                subprocess.Popen(
                    list(job.argv),
                    stdin=subprocess.PIPE if job.input is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    deadline = time.monotonic() + timeout
    results: list[subprocess.CompletedProcess[str]] = []
    failures: list[RemoteError] = []
    for job, proc in procs:
        try:
            out, err = proc.communicate(job.input, timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            failures.append(RemoteError(job.label or job.argv[0], f"timed out after {timeout}s"))
        done = subprocess.CompletedProcess(list(job.argv), proc.returncode, out, err)
        if proc.returncode != 0:
            failures.append(_fail(job.label, job.argv, done))
        results.append(done)
    if check and failures:
        raise failures[0]
    return results


def ip_batch(lines: Sequence[str], *, netns: str | None = None, label: str = "ip -batch") -> None:
    """Run many ``ip`` commands in one process (``-n NS`` applies to every line)."""
    if not lines:
        return
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    run(argv, input="\n".join(lines) + "\n", label=label)


_CLONE_NEWNET = 0x40000000


def write_sysctls(per_namespace: Mapping[str, Sequence[str]]) -> None:
    """Write ``key=value`` sysctls in many namespaces without a process per namespace.

    Net sysctls under /proc/sys/net belong to the network namespace of the thread that
    opens them, so one short-lived thread setns()es into each namespace in turn and writes
    the files directly. The calling thread's namespace never changes.
    """
    errors: list[BaseException] = []

    def worker() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            for ns, settings in per_namespace.items():
                fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({ns}): {os.strerror(err)}")
                finally:
                    os.close(fd)
                for setting in settings:
                    key, _, value = setting.partition("=")
                    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                        f.write(value)
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)
        finally:
            libc.setns(own, _CLONE_NEWNET)
            os.close(own)

    thread = threading.Thread(target=worker, name="hl-sysctl")
    thread.start()
    thread.join()
    if errors:
        raise RemoteError("sysctl", str(errors[0])) from errors[0]


def netns_exec_argv(netns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def list_namespaces(prefix: str) -> list[str]:
    """Named network namespaces (``ip netns`` names) starting with ``prefix``."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def delete_namespaces(names: Sequence[str]) -> None:
    """Delete named namespaces in one ``ip -batch`` (``-force``: keep going past a vanished one)."""
    if not names:
        return
    run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names), check=False)
    left = [n for n in names if (NETNS_DIR / n).exists()]
    if left:
        raise RemoteError("ip netns", f"could not delete namespaces: {', '.join(left)}")


def _ns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:  # gone, a zombie (no namespaces left), or not ours to see
        return None


def ns_inode_of_pid(pid: int, kind: str) -> int | None:
    """Inode of a process's namespace of ``kind`` ("net", "mnt"); None if it is gone."""
    return _ns_inode(f"/proc/{pid}/ns/{kind}")


def pids_in_namespaces(netns_names: Iterable[str], mnt_inodes: Iterable[int] = ()) -> dict[int, str]:
    """PIDs living in the named network namespaces or in the given mount namespaces.

    The same answer as ``ip netns pids NS`` for every NS, in one pass over /proc instead
    of one process per namespace; mount namespaces catch a process that only entered a
    host's mount namespace (nsenter -m).
    """
    net_by_inode: dict[int, str] = {}
    for name in netns_names:
        inode = _ns_inode(str(NETNS_DIR / name))
        if inode is not None:
            net_by_inode[inode] = name
    mnt = set(mnt_inodes)
    found: dict[int, str] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        net = ns_inode_of_pid(pid, "net")
        if net is not None and net in net_by_inode:
            found[pid] = net_by_inode[net]
            continue
        if mnt:
            m = ns_inode_of_pid(pid, "mnt")
            if m is not None and m in mnt:
                found[pid] = f"mnt:{m}"
    return found


def proc_starttime(pid: int) -> int | None:
    """Start time (clock ticks since boot, /proc/PID/stat field 22); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def kill_pids(pids: Mapping[int, int | None], *, grace: float = 3.0) -> list[int]:
    """SIGTERM each PID, wait up to ``grace`` seconds, SIGKILL what is left; return PIDs signalled.

    ``pids`` maps PID -> expected start time (None: take it as found now). A PID whose start
    time differs was recycled by an unrelated process and is left alone. Signals go
    through a pidfd, so the PID cannot be recycled between the check and the kill.
    """
    fds = _open_ours(pids)
    try:
        for fd in fds.values():
            _pidfd_signal(fd, signal.SIGTERM)
        pending = _wait_exit(fds, grace)
        for pid in pending:
            _pidfd_signal(fds[pid], signal.SIGKILL)
        _wait_exit({p: fds[p] for p in pending}, 5.0)
        for pid in fds:
            _reap(pid)
    finally:
        for fd in fds.values():
            os.close(fd)
    return list(fds)


def _open_ours(pids: Mapping[int, int | None]) -> dict[int, int]:
    """A pidfd for each PID that is still the process we expect (start time matches, or None:
    take it as found now). Open first, check after: the pidfd pins the process we checked."""
    fds: dict[int, int] = {}
    for pid, expected in pids.items():
        try:
            fd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            continue
        started = proc_starttime(pid)
        if started is None or (expected is not None and started != expected):
            os.close(fd)
            continue
        fds[pid] = fd
    return fds


def _pidfd_signal(fd: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(fd, sig)


def _wait_exit(fds: Mapping[int, int], timeout: float) -> list[int]:
    """Wait until every pidfd reports exit or the timeout passes; return PIDs still alive."""
    pending = dict(fds)
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        poller = select.poll()
        for fd in pending.values():
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(left * 1000):
            for pid, pfd in list(pending.items()):
                if pfd == fd:
                    del pending[pid]
    return list(pending)


def _reap(pid: int) -> None:
    """Collect the exit status if the process was our child, so no zombie stays behind."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def signal_pid(pid: int, expected_starttime: int | None, sig: int) -> bool:
    """Send ``sig`` to ``pid`` through a pidfd if its start time still matches; True if sent."""
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        started = proc_starttime(pid)
        if started is None or (expected_starttime is not None and started != expected_starttime):
            return False
        try:
            signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            return False
        return True
    finally:
        os.close(fd)


def wait_pids_exit(pids: Mapping[int, int | None], timeout: float) -> list[int]:
    """Wait until the processes exit (pidfd poll), at most ``timeout`` seconds; return those left.

    A PID whose start time differs from the expected one is not ours any more: taken as gone."""
    fds = _open_ours(pids)
    try:
        left = _wait_exit(fds, timeout)
        for pid in fds:
            if pid not in left:
                _reap(pid)
        return left
    finally:
        for fd in fds.values():
            os.close(fd)
