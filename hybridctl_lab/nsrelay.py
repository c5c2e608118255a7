"""A TCP port inside a lab host's network namespace that reaches a server in the machine's own.

The lab's emulators listen on the machine's loopback, which a lab host (its own network
namespace) cannot reach. A resource agent runs on the node, as on EC2, and needs the API
(and, for agents that ask the instance metadata service, 169.254.169.254). A socket stays in
the network namespace it was created in, so :func:`listen_in` creates the listening socket
from a short-lived thread that setns()es into the host's namespace; :class:`Relay` then
accepts on it and connects to the target from the machine's namespace. Nothing runs inside
the host, and nothing in it changes but the listening port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hybridctl.core.errors import RemoteError
from hybridctl_lab import dataplane, netns

_CLONE_NEWNET = 0x40000000


def host_netns(host: str, *, lab_dir: Path | str | None = None) -> Path:
    """The network namespace file of lab ``host`` (the one ``dataplane.exec_argv`` enters)."""
    argv = dataplane.exec_argv(host, lab_dir=lab_dir)
    if argv[:2] == ["nsenter", "-t"]:
        return Path(f"/proc/{argv[2]}/ns/net")
    if argv[:3] == ["ip", "netns", "exec"]:
        return netns.NETNS_DIR / argv[3]
    raise RemoteError(host, f"cannot tell its network namespace from {argv}")


T = TypeVar("T")


def run_in(namespace: Path, function: Callable[[], T], name: str = "hl-in-netns") -> T:
    """``function()`` on a thread of its own that setns()es into ``namespace`` first.

    Sockets it creates belong to that namespace and stay there; the calling thread's
    namespace never changes. Blocks until it returns; its exception is re-raised here.
    """
    made: list[T] = []
    errors: list[BaseException] = []

    def worker() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            fd = os.open(namespace, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({namespace}): {os.strerror(err)}")
            finally:
                os.close(fd)
            made.append(function())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)
        finally:
            libc.setns(own, _CLONE_NEWNET)
            os.close(own)

    thread = threading.Thread(target=worker, name=name)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return made[0]


def listen_in(namespace: Path, address: str = "127.0.0.1", port: int = 0, backlog: int = 64) -> socket.socket:
    """A listening TCP socket bound to ``address:port`` inside ``namespace``."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        return sock

    try:
        return run_in(namespace, make, "hl-listen-in")
    except OSError as exc:
        raise RemoteError(str(namespace), f"cannot listen on {address}:{port}: {exc}") from exc


class Relay:
    """Forward every connection to ``address:port`` in ``namespace`` to ``target`` (host, port) here."""

    def __init__(self, namespace: Path, target: tuple[str, int], address: str = "127.0.0.1", port: int = 0) -> None:
        self.target = target
        self.sock = listen_in(namespace, address, port)
        self.address, self.port = self.sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hl-relay", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until EOF, then half-close ``sink`` so the other side sees the end too."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
