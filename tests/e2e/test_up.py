"""`hybridctl up` on the whole lab, from bare hosts: faults, convergence, idempotency, secrets.

One lab for the module (LAB_DIR /var/lib/hybridctl-lab-test-up, free ports, under the lab lock),
hybridctl run as a subprocess like a user would. The tests run in order and build on each other:

1. `up` with the Azure bridge unreachable (its ssh ProxyCommand broken in a copy of the
   inventory): everything else is configured, exit 1, the summary names the host;
2. `up` with the bridge back: exit 0, then `check`: every cross-site pair passes;
   `ps -eo args` sampled during both `up`s, the outputs and every log never show a secret;
3. a second `up`: nothing to do, zero mutating calls at both emulators and zero changing
   host commands;
4. throttling injected at both emulators (EC2 RequestLimitExceeded, ARM 429) while `up`
   repairs drift in both clouds: retried, exit 0;
5. an Azure write answered 409 AnotherOperationInProgress, then its long-running operation
   ending Failed: only that change fails (AWS is repaired), exit 1; the next `up` rewrites
   what the failed operation left (provisioningState Failed) and converges;
6. `down`: hosts back to bare (no SoftEther, no hybridctl routes, ip_forward 0).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl_lab import dataplane, manager
from tests.e2e.test_lab import ec2_client, inventory_of, network_client, running_lab

pytestmark = [pytest.mark.lab]

LAB_DIR = Path("/var/lib/hybridctl-lab-test-up")
BROKEN_HOST = "azure-bridge"


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    with running_lab(LAB_DIR) as result:
        yield result


@pytest.fixture(scope="module")
def state_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="hybridctl-e2e-up-") as path:
        yield path


class Run:
    """A hybridctl subprocess, with every process's argv sampled while it runs."""

    def __init__(self, args: list[str], state_dir: str, sample: bool = False) -> None:
        self.argv_seen: set[str] = set()
        env = {**os.environ, "HYBRIDCTL_STATE_DIR": state_dir, "COLUMNS": "200"}
        process = subprocess.Popen(
            [sys.executable, "-m", "hybridctl.cli.main", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        done = threading.Event()

        def sampler() -> None:
            while not done.is_set():
                out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
                self.argv_seen.update(out.splitlines())
                time.sleep(0.01)

        thread = threading.Thread(target=sampler, daemon=True)
        if sample:
            thread.start()
        try:
            self.stdout, self.stderr = process.communicate(timeout=600)
        finally:
            done.set()
            if sample:
                thread.join()
        self.rc = process.returncode

    def json(self) -> dict[str, Any]:
        document = json.loads(self.stdout)
        assert isinstance(document, dict)
        return document

    def __repr__(self) -> str:
        # A failed `up -o json` says why in failed/remaining, which the tail of stdout may cut off.
        why = ""
        try:
            document = json.loads(self.stdout)
        except ValueError:
            document = None
        if isinstance(document, dict) and ("failed" in document or "remaining" in document):
            brief = {k: document.get(k) for k in ("failed", "unreachable", "remaining")}
            why = f"\nwhy={json.dumps(brief)[:4000]}"
        return f"rc={self.rc}{why}\nstdout={self.stdout[-3000:]}\nstderr={self.stderr[-3000:]}"


def secret_values(lab: manager.LabUpResult) -> list[str]:
    store = Path(inventory_of(lab)["secrets"]["store"])
    values = [v for v in json.loads(store.read_text()).values() if isinstance(v, str)]
    assert values
    return values


def log_texts(state_dir: str) -> dict[str, str]:
    """Every log and state file a secret could leak into."""
    files = [*LAB_DIR.glob("hosts/*/sshd.log"), *LAB_DIR.glob("hosts/*/fs/var/log/softether/**/*")]
    files += [LAB_DIR / "daemon.log", *Path(state_dir).glob("**/journal.json")]
    return {str(f): f.read_text(errors="replace") for f in files if f.is_file()}


def assert_no_secret(lab: manager.LabUpResult, state_dir: str, *runs: Run) -> None:
    secrets = secret_values(lab)
    for run in runs:
        leaked = [line for line in run.argv_seen if any(s in line for s in secrets)]
        assert leaked == [], "a secret showed up in a process's argv"
        assert not any(s in run.stdout or s in run.stderr for s in secrets), "a secret in hybridctl's output"
    for name, text in log_texts(state_dir).items():
        assert not any(s in text for s in secrets), f"a secret in {name}"


def broken_inventory(lab: manager.LabUpResult, tmp: Path) -> Path:
    """The lab inventory, with BROKEN_HOST reached through an ssh config whose ProxyCommand fails."""
    document = inventory_of(lab)
    alias = "hl-az-br"
    config = lab.ssh_config.read_text()
    block_start = config.index(f"Host {alias}\n")
    block_end = config.find("\nHost ", block_start + 1)
    block = config[block_start : block_end if block_end != -1 else len(config)]
    broken_block = "\n".join(
        "  ProxyCommand false" if line.strip().startswith("ProxyCommand") else line for line in block.splitlines()
    )
    broken_config = tmp / "ssh_config"
    broken_config.write_text(config.replace(block, broken_block))
    for site in document["sites"]:
        if site["gateway"]["name"] == BROKEN_HOST:
            site["gateway"]["ssh"]["config_file"] = str(broken_config)
    path = tmp / "lab.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def check_pairs(document: dict[str, Any]) -> dict[tuple[str, str], bool]:
    return {(p["source"], p["address"]): p["ok"] for p in document["probes"] if p["kind"] == "ping"}


def test_up_with_a_bridge_unreachable_configures_the_rest(
    lab: manager.LabUpResult, state_dir: str, tmp_path: Path
) -> None:
    inventory = broken_inventory(lab, tmp_path)
    run = Run(["up", "-i", str(inventory), "--yes"], state_dir, sample=True)
    assert run.rc == 1, run
    # The per-target summary names the unreachable host, and the others were applied.
    summary = run.stdout[run.stdout.index("result per target") :]
    assert BROKEN_HOST in summary and "unreachable" in summary, run
    for target in ("vpnserver", "aws-bridge", "hl-home-c1", "aws aws", "azure azure"):
        row = next(line for line in summary.splitlines() if f" {target} " in line)
        assert " 0 │" in row.split(target, 1)[1], row  # failed column
    assert_no_secret(lab, state_dir, run)
    # Home and AWS already talk; Azure's bridge is untouched (bare).
    check = Run(["check", "-i", str(lab.inventory), "-o", "json"], state_dir)
    pairs = check_pairs(check.json())
    assert pairs[("home-c1", "192.168.20.10")] and pairs[("aws-h21", "192.168.1.10")]
    assert not pairs[("home-c1", "192.168.30.10")]
    assert check.rc == 1
    failing = [p for p in check.json()["probes"] if not p["ok"]]
    assert failing and all(p["suspect"] for p in failing)


def test_next_up_finishes_the_job_and_check_passes_everywhere(lab: manager.LabUpResult, state_dir: str) -> None:
    run = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir, sample=True)
    assert run.rc == 0, run
    document = run.json()
    assert document["ok"] and document["unreachable"] == {} and document["remaining"] == []
    touched = {c["key"][0] for c in document["changes"] if c["layer"].startswith(("host-", "softether"))}
    assert touched == {BROKEN_HOST}  # only what the first run could not reach
    plan_json = Run(["plan", "-i", str(lab.inventory), "-o", "json"], state_dir)
    plan_table = Run(["plan", "-i", str(lab.inventory)], state_dir)
    assert plan_json.rc == 0 and plan_table.rc == 0
    assert_no_secret(lab, state_dir, run, plan_json, plan_table)

    check = Run(["check", "-i", str(lab.inventory), "-o", "json"], state_dir)
    assert check.rc == 0, check
    pairs = check_pairs(check.json())
    test_hosts = {
        (site["name"], t["name"], t["address"]) for site in inventory_of(lab)["sites"] for t in site["test_hosts"]
    }
    expected = {(s, a) for site_s, s, _ in test_hosts for site_a, _, a in test_hosts if site_s != site_a}
    assert set(pairs) == expected
    assert {"192.168.21.10", "192.168.31.10"} <= {a for _, a in pairs}
    assert all(pairs.values())
    services = [p for p in check.json()["probes"] if p["kind"] == "tcp"]
    assert services and all(p["ok"] for p in services)
    diff = Run(["routes", "diff", "-i", str(lab.inventory), "-o", "json"], state_dir)
    assert diff.rc == 0 and diff.json()["in_sync"], diff


def emulator_admin(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=str(LAB_DIR / "azure" / "tls" / "ca.pem"))
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/_emulator/{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        text = response.read()
    return json.loads(text) if text else None


def reset_counters(lab: manager.LabUpResult) -> None:
    emulator_admin(lab.aws_url, "POST", "calls/reset", {})
    emulator_admin(lab.azure_url, "DELETE", "requests")


def test_second_up_has_nothing_to_do(lab: manager.LabUpResult, state_dir: str) -> None:
    reset_counters(lab)
    run = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
    assert run.rc == 0, run
    document = run.json()
    assert document["changes"] == []
    assert document["calls"]["hosts"]["mutations"] == 0  # no changing host command
    assert document["calls"]["hosts"]["reads"] == 4  # one read exec per managed host
    assert document["calls"]["aws"]["mutations"] == 0 and document["calls"]["azure"]["mutations"] == 0
    aws = emulator_admin(lab.aws_url, "GET", "calls")["totals"]
    azure = emulator_admin(lab.azure_url, "GET", "requests")
    assert aws["mutating"] == 0 and aws["read"] > 0
    assert azure["mutating"] == 0 and azure["read"] > 0


def test_throttling_at_both_emulators_is_retried(lab: manager.LabUpResult, state_dir: str) -> None:
    # Drift in both clouds, so `up` has to write to both.
    ec2 = ec2_client(lab)
    table = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": ["Hybrid-RT"]}])["RouteTables"][0]
    ec2.delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="192.168.1.0/24")
    network = network_client(lab)
    network.routes.begin_delete("hybrid-rg", "Hybrid-RT", "hybridctl-192-168-1-0-24").result()
    for action in ("DescribeRouteTables", "CreateRoute"):
        emulator_admin(lab.aws_url, "POST", "faults", {"service": "ec2", "action": action, "count": 2})
    emulator_admin(lab.azure_url, "POST", "faults", {"method": "GET", "path_regex": "routeTables", "count": 2})
    emulator_admin(lab.azure_url, "POST", "faults", {"method": "PUT", "path_regex": "/routes/", "count": 2})
    reset_counters(lab)
    run = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
    assert run.rc == 0, run
    document = run.json()
    assert {(c["layer"], c["key"][0], c["key"][-1]) for c in document["changes"]} == {
        ("cloud-route", "aws", "192.168.1.0/24"),
        ("cloud-route", "azure", "192.168.1.0/24"),
    }
    assert document["ok"]
    assert emulator_admin(lab.aws_url, "GET", "faults")["faults"] == []  # all used up: retried
    assert emulator_admin(lab.aws_url, "GET", "calls")["totals"]["throttled"] == 4
    assert all(f["remaining"] == 0 for f in emulator_admin(lab.azure_url, "GET", "faults")["value"])
    assert emulator_admin(lab.azure_url, "GET", "requests")["by_status"].get("429") == 4
    emulator_admin(lab.azure_url, "DELETE", "faults")
    again = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
    assert again.rc == 0 and again.json()["changes"] == [], again


def test_a_failed_azure_operation_fails_that_change_and_the_next_up_converges(
    lab: manager.LabUpResult, state_dir: str
) -> None:
    ec2 = ec2_client(lab)
    table = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": ["Hybrid-RT"]}])["RouteTables"][0]
    ec2.delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="192.168.1.0/24")
    network = network_client(lab)
    network.routes.begin_delete("hybrid-rg", "Hybrid-RT", "hybridctl-192-168-1-0-24").result()
    # First a 409 (hybridctl retries it), then the retried write's operation ends Failed.
    emulator_admin(lab.azure_url, "POST", "faults", {"method": "PUT", "path_regex": "/routes/", "status": 409})
    emulator_admin(lab.azure_url, "POST", "faults", {
        "method": "PUT", "path_regex": "/routes/", "operation_status": "Failed", "code": "InternalServerError",
        "message": "The route could not be programmed."})
    run = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
    assert run.rc == 1, run
    document = run.json()
    assert [(f["target"], f["change"]["key"][-1]) for f in document["failed"]] == [("azure azure", "192.168.1.0/24")]
    assert "could not be programmed" in document["failed"][0]["error"]
    assert document["per_target"]["aws aws"] == {"ok": 1, "failed": 0}  # the other target finished
    assert emulator_admin(lab.azure_url, "GET", "requests")["by_status"].get("409") == 1
    emulator_admin(lab.azure_url, "DELETE", "faults")

    again = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
    assert again.rc == 0, again
    assert [(c["layer"], c["action"], c["key"][-1]) for c in again.json()["changes"]] == [
        ("cloud-route", "update", "192.168.1.0/24")
    ]
    route = network.routes.get("hybrid-rg", "Hybrid-RT", "hybridctl-192-168-1-0-24")
    assert route.provisioning_state == "Succeeded"
    last = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
    assert last.rc == 0 and last.json()["changes"] == [], last


def test_down_returns_hosts_to_bare(lab: manager.LabUpResult, state_dir: str) -> None:
    run = Run(["down", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
    assert run.rc == 0, run
    for host in ("hl-aws-br", "hl-az-br", "hl-home-c1", "hl-home-srv"):
        routes = dataplane.exec_in(host, "ip -4 route show proto 177", lab_dir=LAB_DIR)
        assert routes.stdout.strip() == "", (host, routes.stdout)
        left = dataplane.exec_in(host, "ls -A /etc/hybridctl", lab_dir=LAB_DIR).stdout
        assert left.strip() == "", (host, left)
        # No unit file, no enabled unit of hybridctl's under systemd.
        units = dataplane.exec_in(
            host,
            "ls /etc/systemd/system /etc/systemd/system/*.wants | grep -e hybridctl -e softether; "
            "systemctl list-unit-files --state=enabled --no-legend 'softether-*' 'hybridctl-*'",
            lab_dir=LAB_DIR,
            check=False,
        ).stdout
        assert units.strip() == "", (host, units)
    for host in ("hl-aws-br", "hl-az-br"):
        assert dataplane.exec_in(host, "cat /proc/sys/net/ipv4/ip_forward", lab_dir=LAB_DIR).stdout.strip() == "0"
        gone = "test ! -e /var/lib/softether/vpn_bridge.config && echo gone"
        assert dataplane.exec_in(host, gone, lab_dir=LAB_DIR).stdout.strip() == "gone"
        assert dataplane.exec_in(host, "ss -Hltn 'sport = :5555'", lab_dir=LAB_DIR).stdout.strip() == ""
    gone = "test ! -e /var/lib/softether/vpn_server.config && echo gone"
    assert dataplane.exec_in("hl-home-srv", gone, lab_dir=LAB_DIR).stdout.strip() == "gone"
    cross = manager.ping_matrix(lab_dir=LAB_DIR).cross_site
    assert cross and not any(r.ok for r in cross)
