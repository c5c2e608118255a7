"""A small HTTP server serving from a daemon thread for as long as a ``with`` block runs.

bench/vip_failover.py's latency proxy and bench/vip_agents.py's instance metadata service are
both one of these: a handler class, served on a fresh loopback port or on a socket the caller
made (inside a lab node's network namespace: hybridctl_lab.nsrelay.listen_in).
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class BackgroundServer:
    """``handler`` on 127.0.0.1 (a free port), or on ``sock`` (already bound and listening)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], sock: socket.socket | None = None) -> None:
        if sock is None:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        else:
            self.server = ThreadingHTTPServer(sock.getsockname(), handler, bind_and_activate=False)
            self.server.socket.close()
            self.server.socket = sock
            self.server.server_address = sock.getsockname()
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
