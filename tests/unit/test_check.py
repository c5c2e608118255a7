"""`check`: probe planning, the probe script (run for real on loopback), and diagnosis."""

from __future__ import annotations

import copy
import shutil
import socket
import subprocess
from ipaddress import IPv4Address

import pytest
import yaml

from hybridctl.core.check import Probe, diagnose, parse_probe_output, probe_script, probes
from hybridctl.core.diff import Change
from hybridctl.core.inventory.load import parse_inventory
from hybridctl.core.planner.desired import Resource, res
from hybridctl.core.planner.plan import plan
from tests.conftest import REPO

BASE = yaml.safe_load((REPO / "inventory" / "reference.yaml").read_text())


def reference_with_test_hosts():
    doc = copy.deepcopy(BASE)
    ssh = {"host": "x"}
    doc["sites"][0]["clients"][0]["ssh"] = ssh
    doc["sites"][1]["test_hosts"] = [
        {"name": "h20", "address": "192.168.20.10", "ssh": ssh},
        {"name": "h21", "address": "192.168.21.10", "ssh": ssh},
    ]
    doc["sites"][2]["test_hosts"] = [{"name": "h30", "address": "192.168.30.10", "ssh": ssh}]
    doc["sites"][2]["services"] = ["192.168.30.10:22"]
    inventory = parse_inventory(yaml.safe_dump(doc), "ref.yaml").inventory
    return inventory, plan(inventory)


def test_probes_cover_every_cross_site_pair_and_services() -> None:
    inventory, _ = reference_with_test_hosts()
    items = probes(inventory)
    pings = {(p.source, p.target) for p in items if p.port is None}
    # 4 endpoints in 3 sites; same-site pairs (h20<->h21) are not probed.
    assert ("h20", "h21") not in pings
    assert {("lan-client", "h20"), ("h20", "h30"), ("h30", "h21"), ("h21", "lan-client")} <= pings
    assert len(pings) == 4 * 3 - 2
    tcp = [p for p in items if p.port is not None]
    assert {(p.source, p.port) for p in tcp} == {("lan-client", 22), ("h20", 22), ("h21", 22)}


def test_probe_script_runs_and_parses_real_results() -> None:
    if shutil.which("ping") is None or shutil.which("bash") is None:
        pytest.skip("ping and bash")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    open_port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    items = [
        Probe("a", "s1", "lo", "s2", IPv4Address("127.0.0.1"), None),
        Probe("a", "s1", "open", "s2", IPv4Address("127.0.0.1"), open_port),
        Probe("a", "s1", "closed", "s2", IPv4Address("127.0.0.1"), closed_port),
    ]
    output = subprocess.run(["bash", "-s"], input=probe_script(items, timeout=1), capture_output=True, text=True)
    listener.close()
    results = parse_probe_output(items, output.stdout)
    assert [r.ok for r in results] == [True, True, False]
    assert results[0].rtt_ms is not None
    assert results[2].detail == "connection failed"


def test_missing_probe_line_is_a_failure() -> None:
    items = [Probe("a", "s1", "b", "s2", IPv4Address("10.0.0.1"), None)]
    (result,) = parse_probe_output(items, "garbage\n")
    assert not result.ok and result.detail == "probe did not report"


def change(layer: str, *key: str, **attrs: str) -> Change:
    r = res(layer, tuple(key), **attrs)
    return Change("update", layer, r.key, r.attrs, None)


@pytest.mark.parametrize(
    ("drift", "actual", "expected"),
    [
        ([change("flag", "aws", "aws-bridge-eni", "source_dest_check", value="false")], [], "forwarding flag"),
        (
            [Change("create", "cloud-route", ("azure", "Hybrid-RT", "192.168.20.0/24"), (("target", "x"),), None)],
            [],
            "cloud route",
        ),
        ([Change("create", "host-route", ("azure-bridge", "192.168.20.0/24"), (), None)], [], "host route"),
        (
            [Change("create", "softether", ("vpnserver", "l3-route", "L3SW", "192.168.20.0/24"), (), None)],
            [],
            "L3 switch",
        ),
        (
            [],
            [res("softether", ("aws-bridge", "cascade", "BRIDGE", "HYBRID"), online="false")],
            "cascade down on aws-bridge",
        ),
        ([], [], "no layer differs"),
    ],
)
def test_diagnose_names_the_layer(drift: list[Change], actual: list[Resource], expected: str) -> None:
    inventory, desired = reference_with_test_hosts()
    verdict = diagnose(inventory, desired, IPv4Address("192.168.30.10"), IPv4Address("192.168.20.10"), drift, actual)
    assert verdict.startswith(expected), verdict


def test_deep_probes_per_pair_mtu_always_bulk_towards_ssh_targets() -> None:
    inventory, _ = reference_with_test_hosts()
    items = probes(inventory, bulk=True)
    pings = {(p.source, p.target) for p in items if p.kind == "ping"}
    assert {(p.source, p.target) for p in items if p.kind == "mtu"} == pings
    assert not [p for p in probes(inventory) if p.kind == "bulk"]  # opt-in (check --bulk)
    # Every endpoint of the fixture has ssh: a bulk transfer per pair too.
    assert {(p.source, p.target) for p in items if p.kind == "bulk"} == pings
    assert {p.kind for p in probes(inventory, deep=False)} == {"ping", "tcp"}


def _pair(check: str | None) -> Probe:
    return Probe("a", "s1", "b", "s2", IPv4Address("192.168.20.10"), None, check)


@pytest.mark.parametrize(
    ("line", "ok", "size", "detail"),
    [
        ("MTU 0 0 1472", True, 1500, "1500 bytes pass"),
        ("MTU 0 1 1372", False, 1400, "pass up to 1400 bytes, not the overlay MTU 1500"),
        ("MTU 0 1 -", False, None, "no don't-fragment ping passes"),
    ],
)
def test_mtu_lines_name_the_largest_size(line: str, ok: bool, size: int | None, detail: str) -> None:
    (result,) = parse_probe_output([_pair("mtu")], f"noise\n{line}\n", mtu=1500)
    assert (result.ok, result.size) == (ok, size) and detail in result.detail


@pytest.mark.parametrize(
    ("line", "ok", "detail"),
    [
        ("BULK 0 262144 262144 12 -", True, "262144 bytes each way in 12 ms"),
        ("BULK 0 262144 65160 5003 TimeoutError", False, "stalled: sent 262144 of 262144 bytes, received 65160"),
        ("BULK 0 0 0 1 ConnectionRefusedError", False, "connection refused"),
        ("BULK 0 0 0 0 no-listener", False, "no listener"),
        ("BULK 0 262144 1000 3 -", False, "connection closed early"),
    ],
)
def test_bulk_lines(line: str, ok: bool, detail: str) -> None:
    (result,) = parse_probe_output([_pair("bulk")], line + "\n")
    assert result.ok is ok and detail in result.detail


def test_mtu_and_bulk_probes_run_for_real_on_loopback() -> None:
    if shutil.which("ping") is None or shutil.which("python3") is None:
        pytest.skip("ping and python3")
    from hybridctl.core.check import listener_command

    started = subprocess.run(listener_command(idle=5), shell=True, capture_output=True, text=True, timeout=10)
    port = int(started.stdout.strip())
    lo = IPv4Address("127.0.0.1")
    items = [Probe("a", "s1", "lo", "s2", lo, None, "mtu"), Probe("a", "s1", "lo", "s2", lo, None, "bulk")]
    script = probe_script(items, mtu=1500, bulk_ports={"lo": port})
    output = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, timeout=30)
    mtu, bulk = parse_probe_output(items, output.stdout, mtu=1500)
    assert mtu.ok and mtu.size == 1500, output
    assert bulk.ok and bulk.size == 256 * 1024, output


def test_bulk_transfers_of_a_prober_run_one_after_another() -> None:
    items = [_pair("bulk"), Probe("a", "s1", "c", "s3", IPv4Address("192.168.30.10"), None, "bulk"), _pair("mtu")]
    script = probe_script(items, bulk_ports={"b": 4000, "c": 4001})
    (line,) = [line for line in script.splitlines() if "$BULK_PY" in line]
    # Both transfers in one background subshell, in order; the DF ping runs beside them.
    assert line.startswith("( python3") and line.count("$BULK_PY") == 2 and line.endswith(") &")
    assert line.index("4000") < line.index("4001")
    assert sum(1 for line in script.splitlines() if line.startswith("( t()")) == 1


def test_a_failed_ping_or_tcp_probe_is_tried_once_more_and_only_it() -> None:
    """confirm_failures with the real probe script run locally (bash, real sockets): a port that
    starts listening after the first round passes on the second try, one still closed stays
    failed, passing probes and other kinds are not run again."""
    from concurrent.futures import ThreadPoolExecutor

    from hybridctl.core.check import ProbeResult
    from hybridctl.features.checkrun import confirm_failures

    late = socket.socket()
    late.bind(("127.0.0.1", 0))
    late_port = late.getsockname()[1]
    never = socket.socket()
    never.bind(("127.0.0.1", 0))
    never_port = never.getsockname()[1]
    lo = IPv4Address("127.0.0.1")
    items = [
        Probe("a", "s1", "lo", "s2", lo, None),
        Probe("a", "s1", "late", "s2", lo, late_port),
        Probe("a", "s1", "never", "s2", lo, never_port),
    ]
    mtu_failure = ProbeResult(Probe("a", "s1", "lo", "s2", lo, None, "mtu"), False, None, "no reply")
    runs: list[list[str]] = []

    def run_locally(session: object, probes_: list[Probe], mtu: int, ports: dict[str, int]) -> list[ProbeResult]:
        runs.append([p.target for p in probes_])
        script = probe_script(probes_, timeout=1)
        done = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, check=False)
        return parse_probe_output(probes_, done.stdout)

    first = run_locally(None, items, 1500, {})
    assert [r.ok for r in first] == [True, False, False]
    late.listen()  # the path is back before the second try
    with ThreadPoolExecutor(max_workers=2) as pool:
        final = confirm_failures(pool, {"a": object()}, [*first, mtu_failure], 1500, run=run_locally)  # type: ignore[dict-item]
    late.close()
    never.close()
    assert runs[1] == ["late", "never"]  # only the failed ping/tcp probes, once
    assert [(r.probe.target, r.ok, r.detail) for r in final[:3]] == [
        ("lo", True, ""), ("late", True, "passed on a second try"), ("never", False, "connection failed")
    ]  # fmt: skip
    assert final[3] is mtu_failure
