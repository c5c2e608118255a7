"""The failover prober on loopback: it names who answered and measures the gap of a switch-over."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from hybridctl_lab import vip_probe as probe

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _responder(name: str, port: int) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=probe.serve, args=(name, "127.0.0.1", port), kwargs={"stop": stop.is_set})
    thread.start()
    return thread, stop


def test_switch_over_is_seen_in_order_with_its_window() -> None:
    port = _free_port()
    first, stop_first = _responder("node1", port)
    box: dict[str, probe.ProbeResult] = {}
    prober = threading.Thread(
        target=lambda: box.setdefault(
            "r",
            probe.probe(
                "127.0.0.1",
                port,
                interval=0.01,
                duration=20,
                until=lambda r: (
                    any(n == "node2" for _, _, n in r.answers[-5:]) and sum(n == "node2" for _, _, n in r.answers) >= 20
                ),
            ),
        )
    )
    prober.start()
    time.sleep(0.3)  # some node1 answers, then "fail over"
    stop_first.set()
    first.join()
    second, stop_second = _responder("node2", port)
    prober.join(timeout=30)
    stop_second.set()
    second.join()
    result = box["r"]
    summary = result.as_dict()
    assert result.nodes == ["node1", "node2"]
    window = result.window("node1", "node2")
    assert window is not None and window > 0
    assert summary["windows"] == {"node1->node2": window}
    assert summary["counts"]["node2"] >= 20 and summary["counts"]["node1"] >= 1
    assert summary["answered"] <= summary["sent"]
    # answers of the old node all precede the new node's
    last_old = max(t for _, t, n in result.answers if n == "node1")
    assert all(t > last_old for _, t, n in result.answers if n == "node2")


def test_probe_is_bounded_and_counts_losses() -> None:
    port = _free_port()  # nothing answers
    result = probe.probe("127.0.0.1", port, interval=0.01, count=10, duration=5)
    assert result.sent == 10 and result.answers == []
    assert result.as_dict()["lost"] == 10 and result.nodes == []
