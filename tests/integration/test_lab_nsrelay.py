"""hybridctl_lab.nsrelay: a port inside a network namespace that reaches a server outside it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridctl_lab import netns, nsrelay
from tests.conftest import have_root_and_netns, require

pytestmark = [pytest.mark.lab, pytest.mark.integration]

CLIENT = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b"ping " * 20000)
    s.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
print(data.decode()[:9], len(data))
"""


@pytest.fixture
def namespace() -> Iterator[Path]:
    require(have_root_and_netns(), "root and network namespaces (ip netns add)")
    name = f"hctl-relay-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield netns.NETNS_DIR / name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_a_connection_in_the_namespace_reaches_the_server_outside(namespace: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))  # the machine's loopback: not the namespace's
    port = server.getsockname()[1]

    def echo_upper() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            conn.sendall(data.upper())

    thread = threading.Thread(target=echo_upper, daemon=True)
    thread.start()
    with nsrelay.Relay(namespace, ("127.0.0.1", port)) as relay:
        assert relay.address == "127.0.0.1"
        argv = ["ip", "netns", "exec", namespace.name, sys.executable, "-c", CLIENT]
        direct = subprocess.run([*argv, str(port)], capture_output=True, text=True, timeout=30)
        assert direct.returncode != 0 and "Connection refused" in direct.stderr  # isolated without it
        relayed = subprocess.run([*argv, str(relay.port)], capture_output=True, text=True, timeout=30)
    thread.join(timeout=10)
    server.close()
    assert relayed.returncode == 0, relayed.stderr
    assert relayed.stdout.split() == ["PING", "PING", str(len(b"ping " * 20000))]
