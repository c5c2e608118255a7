"""The SSH host backend against real hosts: sshd + SoftEther VPN Server in network namespaces.

Two namespace hosts, each with its own sshd in its own mount namespace (tests/support/sshd.py,
``files_on_disk``: private /run, /var/lib/softether, /var/log/softether, /etc/sysctl.d,
/etc/systemd/system, /etc/hybridctl, like the lab's managed hosts; no systemd, as in the lab):
``srv`` (the VPN server; its eth1 is a veth whose other end is ``cli``'s eth0) and ``cli`` (a
managed LAN client). The inventory's bridge points at an ssh alias whose ProxyCommand fails: it
is unreachable throughout.

Namespaces are named ``hs-hb-<role>-<pid>`` (tests/support/sshd.py's prefix) and removed at the end;
processes are stopped by PID (those in the namespaces).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hybridctl.backends.hosts import HostsBackend
from hybridctl.features.engine import Context, down_desired, execute, prepare
from tests.conftest import require, require_lab_prereqs
from tests.support.hosts import ArgvSampler, hosts_context
from tests.support.sshd import BASE, Sshd, start_sshd

pytestmark = [pytest.mark.integration]

SERVER_CONFIG = "var/lib/softether/vpn_server.config"


def _sh(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


@dataclass
class Site:
    root: Path
    inventory: Path
    srv: Sshd
    cli: Sshd
    secrets: Path


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    require_lab_prereqs()
    require(shutil.which("nc") is not None, "nc (netcat-openbsd) for the ssh ProxyCommand")
    BASE.mkdir(parents=True, exist_ok=True)
    BASE.chmod(0o755)
    root = BASE / f"hosts-it-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(mode=0o700)
    started: list[Sshd] = []
    state = root / "state"
    old_state = os.environ.get("HYBRIDCTL_STATE_DIR")
    os.environ["HYBRIDCTL_STATE_DIR"] = str(state)
    try:
        srv = start_sshd("hb-srv", files_on_disk=True)
        started.append(srv)
        cli = start_sshd("hb-cli", files_on_disk=True)
        started.append(cli)
        _sh("ip", "link", "add", "eth1", "netns", srv.namespace, "type", "veth", "peer", "name", "eth0", "netns",
            cli.namespace)
        _sh("ip", "-n", srv.namespace, "link", "set", "eth1", "up", "promisc", "on")
        _sh("ip", "-n", cli.namespace, "addr", "add", "192.168.1.10/24", "dev", "eth0")
        _sh("ip", "-n", cli.namespace, "link", "set", "eth0", "up")
        ssh_config = root / "ssh_config"
        ssh_config.write_text(
            srv.ssh_config.read_text()
            + cli.ssh_config.read_text()
            + f"Host brg\n  HostName brg\n  User root\n  IdentityFile {srv.client_key}\n"
            f"  UserKnownHostsFile {srv.known_hosts}\n  ProxyCommand false\n"
        )
        secrets = root / "secrets.json"
        inventory = root / "inventory.yaml"
        ssh = f"config_file: {ssh_config}"
        inventory.write_text(
            f"""version: 1
name: hosts-it
transit: {{cidr: 192.168.10.0/24, hub: HYBRID, switch_name: L3SW}}
secrets: {{store: {secrets}}}
sites:
- name: home
  kind: onprem
  networks: [{{name: lan, cidr: 192.168.1.0/24}}]
  gateway:
    name: srv
    role: vpn-server
    ssh: {{host: {srv.alias}, {ssh}}}
    private_ip: 192.168.1.250
    public_address: 10.77.0.1
    hub: DEFAULT
    lan_device: eth1
    switch_address: 192.168.1.249/24
    users: [{{name: home-user, password: generate}}]
  clients:
  - name: cli
    address: 192.168.1.10
    ssh: {{host: {cli.alias}, {ssh}}}
  - name: printer
    address: 192.168.1.20
- name: branch
  kind: onprem
  networks: [{{name: lan, cidr: 192.168.50.0/24}}]
  gateway:
    name: brg
    role: vpn-bridge
    ssh: {{host: brg, {ssh}}}
    private_ip: 192.168.50.1
    tap: vpntap
"""
        )
        yield Site(root, inventory, srv, cli, secrets)
    finally:
        for host in started:
            host.stop()
        if old_state is None:
            os.environ.pop("HYBRIDCTL_STATE_DIR", None)
        else:
            os.environ["HYBRIDCTL_STATE_DIR"] = old_state
        shutil.rmtree(root, ignore_errors=True)


def context_of(site: Site, purge: bool = False) -> Context:
    return hosts_context(site.inventory, purge=purge)


def backend(context: Context) -> HostsBackend:
    found = context.backends[0]
    assert isinstance(found, HostsBackend)
    return found


def secret_values(site: Site) -> list[str]:
    values = json.loads(site.secrets.read_text()).values()
    return [v for v in values if isinstance(v, str)]


def test_up_configures_reachable_hosts_and_reports_the_unreachable_one(site: Site) -> None:
    context = context_of(site)
    try:
        prepared = prepare(context)
        assert set(prepared.actual.unreachable) == {"brg"}
        assert "ProxyCommand" in prepared.actual.unreachable["brg"] or "connect" in prepared.actual.unreachable["brg"]
        assert not any("brg" in c.key for c in prepared.changes)  # nothing planned against the unknown
        with ArgvSampler() as sampler:
            report = execute(context, prepared)
        counter = backend(context).counter
        verified = {s.host for s in backend(context).timeline.spans() if (s.phase, s.step) == ("verify", "read")}
    finally:
        context.close()
    assert report.failed == [], [(o.target, o.error) for o in report.failed]
    assert report.remaining == []
    assert set(report.unreachable) == {"brg"}
    # srv + cli: one read each, then one apply exec each that ends with the verification read.
    assert (counter.reads, counter.mutations) == (2, 2)
    assert verified == {"srv", "cli"}
    secrets = secret_values(site)
    assert secrets
    assert not [line for line in sampler.lines if any(s in line for s in secrets)]
    # The sampler did see the execs: the script runs from its private directory, vpncmd from a batch file.
    assert any("/hybridctl." in line and "run.sh" in line for line in sampler.lines)
    assert any("vpncmd localhost:5555 /SERVER /CSV /IN:" in line for line in sampler.lines)
    # The L3 switch answers on the LAN; the client has its routes, marked as hybridctl's.
    assert site.cli.run("ping", "-c1", "-W2", "192.168.1.249").returncode == 0
    routes = site.cli.run("ip", "-4", "route", "show", "proto", "177").stdout
    assert "192.168.10.0/24 via 192.168.1.249" in routes and "192.168.50.0/24 via 192.168.1.249" in routes
    assert site.srv.fs(SERVER_CONFIG).exists()
    journal = Path(os.environ["HYBRIDCTL_STATE_DIR"]) / "hosts-it" / "journal.json"
    text = journal.read_text()
    assert not any(s in text for s in secrets)
    entries = json.loads(text)
    assert entries["found"]["softether-config|srv"] == "absent"
    assert "host-service|srv|softether-vpnserver" in entries["created"]


def test_second_up_has_nothing_to_do_and_changes_nothing(site: Site) -> None:
    context = context_of(site)
    try:
        # Opening the context began connecting: both sessions exist before anything reads them.
        connecting = backend(context)._connecting
        assert set(connecting) == {"srv", "cli", "brg"}
        assert [f.result(timeout=30) for n, f in sorted(connecting.items()) if n != "brg"] == ["", ""]
        assert set(backend(context)._sessions) == {"srv", "cli"}
        prepared = prepare(context)
        counter = backend(context).counter
        assert prepared.changes == []
        assert (counter.reads, counter.mutations) == (2, 0)
        assert set(backend(context)._sessions) == {"srv", "cli"}  # the read made no connection of its own
        by_key = {r.key: r for r in prepared.actual.resources}
        switch = by_key[("srv", "l3-switch", "L3SW")]
        assert switch.get("active") == "true" and switch.get("running") == "true"
        assert by_key[("srv", "softether-vpnserver")].get("state") == "running"
    finally:
        context.close()


def test_cli_up_lists_unmanaged_clients_and_counts_calls(site: Site) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "hybridctl.cli.main", "up", "-i", str(site.inventory), "--yes", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HYBRIDCTL_STATE_DIR": os.environ["HYBRIDCTL_STATE_DIR"]},
    )
    assert run.returncode == 1, run.stderr  # the bridge is unreachable
    document = json.loads(run.stdout)
    assert document["changes"] == [] and set(document["unreachable"]) == {"brg"}
    assert document["calls"]["hosts"] == {"reads": 2, "mutations": 0}
    # The plan document's clients (docs/output.md): managed false means routes to add by hand.
    printer = next(c for c in document["clients"] if c["client"] == "printer")
    assert printer["managed"] is False and printer["via"] == "192.168.1.249"
    assert printer["routes"] == ["192.168.10.0/24", "192.168.50.0/24"]
    # RFC 3442: /24 192.168.10 via 192.168.1.249, /24 192.168.50 via 192.168.1.249
    assert printer["dhcp_option_121"] == "18:c0:a8:0a:c0:a8:01:f9:18:c0:a8:32:c0:a8:01:f9"
    assert not any(s in run.stdout or s in run.stderr for s in secret_values(site))


def test_drift_is_repaired_and_foreign_routes_are_left_alone(site: Site) -> None:
    site.cli.run("ip", "route", "del", "192.168.50.0/24")
    assert site.cli.run("ip", "route", "add", "192.168.10.128/25", "via", "192.168.1.1", "dev", "eth0").returncode == 0
    context = context_of(site)
    try:
        prepared = prepare(context)
        seen = {(c.action, c.layer, c.key) for c in prepared.changes}
        assert ("create", "client-route", ("cli", "192.168.50.0/24")) in seen
        assert ("conflict", "client-route", ("cli", "192.168.10.128/25")) in seen
        report = execute(context, prepared)
        counter = backend(context).counter
    finally:
        context.close()
    assert report.failed == [] and report.remaining == []
    assert counter.mutations == 1  # the client only: one exec
    assert "192.168.50.0/24 via 192.168.1.249" in site.cli.run("ip", "-4", "route").stdout
    assert "192.168.10.128/25 via 192.168.1.1" in site.cli.run("ip", "-4", "route").stdout  # foreign: untouched
    site.cli.run("ip", "route", "del", "192.168.10.128/25")


def test_down_returns_the_hosts_to_what_they_were(site: Site) -> None:
    context = context_of(site)
    try:
        first = prepare(context)
        chosen = down_desired(context, first.actual)
        prepared = prepare(context, desired=chosen)
        layers = {c.layer for c in prepared.changes}
        assert {"host-file", "host-service", "softether", "client-route"} <= layers
        assert all(c.action == "delete" for c in prepared.changes)
        assert not any(c.layer == "host-package" for c in prepared.changes)  # no --purge
        report = execute(context, prepared, desired=chosen)
    finally:
        context.close()
    assert report.failed == [], [(o.target, o.error) for o in report.failed]
    assert report.remaining == []
    assert not site.srv.fs(SERVER_CONFIG).exists()  # there was none before hybridctl
    assert not site.srv.fs("/etc/systemd/system/softether-vpnserver.service").exists()
    assert not list(site.cli.fs("/etc/hybridctl").iterdir())
    assert site.cli.run("ip", "-4", "route", "show", "proto", "177").stdout.strip() == ""
    assert site.srv.run("ss", "-Hltn", "sport = :5555").stdout.strip() == ""
    # And `up` again works from there.
    context = context_of(site)
    try:
        report = execute(context, prepare(context))
    finally:
        context.close()
    assert report.failed == [] and report.remaining == []


def vpncmd_on(host: Sshd, *commands: str, password: str = "") -> str:
    """vpncmd on the host itself (the test's own setup and checks; answers on stdin)."""
    batch = host.fs("/var/lib/softether") / "test-batch.in"
    batch.write_text("".join(c + "\n" for c in commands))
    out = subprocess.run(
        ["nsenter", "-t", str(host.pid), "-m", "-n", "vpncmd", "localhost:5555", "/SERVER", "/CSV",
         "/IN:/var/lib/softether/test-batch.in"],
        input=(password + "\n" if password else "") + "\x04\x04",
        capture_output=True,
        text=True,
        timeout=60,
    )
    batch.unlink()
    return out.stdout


def test_down_keeps_a_configuration_that_existed_before(site: Site) -> None:
    # Start from a SoftEther somebody else set up: running, with a hub of their own.
    context = context_of(site)
    try:
        first = prepare(context)
        chosen = down_desired(context, first.actual)
        execute(context, prepare(context, desired=chosen), desired=chosen)
    finally:
        context.close()
    assert not site.srv.fs(SERVER_CONFIG).exists()
    binary = "/usr/libexec/softether/vpnserver/vpnserver"
    site.srv.run("sh", "-c", f"setsid {binary} start </dev/null >/dev/null 2>&1")
    deadline = time.monotonic() + 20
    while "LISTEN" not in site.srv.run("ss", "-Hltn", "sport = :5555").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    vpncmd_on(site.srv, "HubCreate PRE /PASSWORD:none")
    journal = Path(os.environ["HYBRIDCTL_STATE_DIR"]) / "hosts-it" / "journal.json"
    journal.unlink()  # hybridctl has never seen this host

    context = context_of(site)
    try:
        report = execute(context, prepare(context))
    finally:
        context.close()
    assert report.failed == [] and report.remaining == []
    entries = json.loads(journal.read_text())
    assert entries["found"]["softether-config|srv"] == "present"
    assert "softether|srv|hub|HYBRID" in entries["created"]
    assert "host-service|srv|softether-vpnserver" not in entries["created"]  # it was running already

    context = context_of(site)
    try:
        first = prepare(context)
        chosen = down_desired(context, first.actual)
        prepared = prepare(context, desired=chosen)
        deleted = {c.key for c in prepared.changes if c.layer == "softether"}
        report = execute(context, prepared, desired=chosen)
        password = context.secrets.resolve(next(r for r in context.desired.secrets if r.name == "admin/srv"))
    finally:
        context.close()
    assert report.failed == [] and report.remaining == []
    assert ("srv", "hub", "HYBRID") in deleted and ("srv", "l3-switch", "L3SW") in deleted
    assert ("srv", "user", "DEFAULT", "home-user") in deleted
    assert not any(key[1] in ("listener", "admin-password") or key[2] == "PRE" for key in deleted)
    hubs = vpncmd_on(site.srv, "HubList", password=password)
    assert "PRE," in hubs and "DEFAULT," in hubs and "HYBRID," not in hubs
    assert site.srv.fs(SERVER_CONFIG).exists()  # theirs: kept, minus what hybridctl added
    binary_running = site.srv.run("ss", "-Hltn", "sport = :5555").stdout
    assert "LISTEN" in binary_running  # their service keeps running
