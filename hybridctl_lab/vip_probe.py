"""Who answers the VIP, and how long a move leaves it unanswered: a UDP responder and prober.

ICMP replies from the VIP look the same whichever node sends them, so the lab's failover test
runs a responder on every node (it answers each datagram with its node name) and a prober on
the client (one datagram every ``interval`` seconds, each numbered). The prober's summary gives
the answering nodes in order and the outage window of a move: from the last answer of the old
node to the first answer of the new one.

    python -m hybridctl_lab.vip_probe serve --name node1 [--bind 0.0.0.0] [--port 7100]
    python -m hybridctl_lab.vip_probe probe 20.0.0.100 [--port 7100] [--interval 0.01] [--duration 10]

Bounded: the prober stops after ``duration`` seconds (or ``count`` datagrams) and sends only to
the one address it is given.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import select
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_PORT = 7100


def serve(
    name: str, bind: str = "0.0.0.0", port: int = DEFAULT_PORT, *, stop: Callable[[], bool] | None = None
) -> None:
    """Answer every datagram with ``<name> <payload>`` until ``stop()`` (or forever)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    try:
        while stop is None or not stop():
            ready, _, _ = select.select([sock], [], [], 0.2)
            if not ready:
                continue
            data, peer = sock.recvfrom(512)
            sock.sendto(name.encode() + b" " + data[:64], peer)
    finally:
        sock.close()


@dataclass
class ProbeResult:
    sent: int = 0
    answers: list[tuple[int, float, str]] = field(default_factory=list)  # (seq, time since start, node)

    @property
    def nodes(self) -> list[str]:
        """Answering nodes in order of first answer."""
        seen: list[str] = []
        for _, _, node in sorted(self.answers):
            if node not in seen:
                seen.append(node)
        return seen

    def window(self, old: str, new: str) -> float | None:
        """Seconds from the last answer of ``old`` to the first answer of ``new`` after it."""
        olds = [t for _, t, n in self.answers if n == old]
        if not olds:
            return None
        last_old = max(olds)
        news = [t for _, t, n in self.answers if n == new and t > last_old]
        return min(news) - last_old if news else None

    def max_gap(self) -> float:
        times = sorted(t for _, t, _ in self.answers)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def as_dict(self) -> dict[str, object]:
        counts: dict[str, int] = {}
        for _, _, node in self.answers:
            counts[node] = counts.get(node, 0) + 1
        nodes = self.nodes
        windows = {f"{a}->{b}": self.window(a, b) for a, b in itertools.pairwise(nodes)}
        return {
            "sent": self.sent,
            "answered": len(self.answers),
            "lost": self.sent - len({s for s, _, _ in self.answers}),
            "nodes": nodes,
            "counts": counts,
            "windows": windows,
            "max_gap": round(self.max_gap(), 4),
            "answers": [[s, round(t, 4), n] for s, t, n in self.answers],
        }


def probe(
    target: str,
    port: int = DEFAULT_PORT,
    *,
    interval: float = 0.01,
    duration: float = 10.0,
    count: int | None = None,
    until: Callable[[ProbeResult], bool] | None = None,
) -> ProbeResult:
    """Send numbered datagrams to ``target`` every ``interval`` s for ``duration`` s; collect answers."""
    result = ProbeResult()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    started = time.monotonic()
    next_send = started
    try:
        while True:
            now = time.monotonic()
            if now - started >= duration or (count is not None and result.sent >= count):
                break
            if until is not None and until(result):
                break
            if now >= next_send:
                # No route yet: that datagram is lost, as a client's would be.
                with contextlib.suppress(OSError):
                    sock.sendto(str(result.sent).encode(), (target, port))
                result.sent += 1
                next_send += interval
            ready, _, _ = select.select([sock], [], [], max(0.0, min(next_send - time.monotonic(), 0.05)))
            while ready:
                try:
                    data, _ = sock.recvfrom(512)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                node, _, seq = data.decode(errors="replace").partition(" ")
                if seq.isdigit():
                    result.answers.append((int(seq), time.monotonic() - started, node))
                ready, _, _ = select.select([sock], [], [], 0)
        # late answers to the last datagrams
        deadline = time.monotonic() + min(0.5, 50 * interval)
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready:
                continue
            try:
                data, _ = sock.recvfrom(512)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            node, _, seq = data.decode(errors="replace").partition(" ")
            if seq.isdigit():
                result.answers.append((int(seq), time.monotonic() - started, node))
    finally:
        sock.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybridctl_lab.vip_probe", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--name", required=True)
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    p = sub.add_parser("probe")
    p.add_argument("target")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.name, args.bind, args.port)
        return 0
    result = probe(args.target, args.port, interval=args.interval, duration=args.duration)
    sys.stdout.write(json.dumps(result.as_dict()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
