"""Pure host-backend logic (hoststate.py) on the lab plan and real captured reads.

The plan is the lab inventory's (generated for a LAB_DIR under tmp_path: the plan does not depend
on it); the reads are tests/fixtures/hostread/ (a cold `up` on the lab, captured).
"""

from __future__ import annotations

import json
import re
import threading
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from hybridctl.backends import hoststate as hs
from hybridctl.backends.base import NoProgress
from hybridctl.backends.host_facts import Route
from hybridctl.backends.hosts import HostsBackend, _HostState
from hybridctl.backends.hostscript import bootstrap, parse_read
from hybridctl.backends.journal import Journal
from hybridctl.backends.ssh import CommandResult
from hybridctl.core.diff import Change, diff
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.desired import (
    AddressItem,
    DesiredState,
    KernelRouteItem,
    Resource,
    SoftEtherItem,
    softether_resources,
)
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.core.secrets import SecretStore
from hybridctl.core.softether.commands import plan_steps
from hybridctl.core.softether.model import Hub
from hybridctl.core.softether.parse import parse_read as parse_softether
from tests.conftest import FIXTURES
from tests.support.lab_inventory import never, write_lab_inventory

HOSTREAD = FIXTURES / "hostread"


@pytest.fixture(scope="module")
def desired(tmp_path_factory: pytest.TempPathFactory) -> DesiredState:
    return plan_loaded(load_inventory(write_lab_inventory(tmp_path_factory.mktemp("lab"))))


def actual_of(desired: DesiredState, host: str, phase: str, own: hs.Ownership | None = None) -> list[Resource]:
    plan = desired.host(host)
    raw = parse_read((HOSTREAD / f"read_{phase}_{host}.txt").read_text())
    softether = None
    if plan.softether is not None and raw.vpncmd_port is not None:
        softether = parse_softether(raw.vpncmd_output, plan.softether.role)
    client = next((c for c in desired.clients if c.client == host and c.managed), None)
    return hs.host_resources(plan, raw, softether, client, own or hs.Ownership(), never)


def host_desired(desired: DesiredState, host: str) -> list[Resource]:
    return [r for r in desired.resources() if host in r.key and r.layer not in ("security-rule", "cloud-route")]


HOSTS = ["vpnserver", "aws-bridge", "azure-bridge", "hl-home-c1"]


@pytest.mark.parametrize("host", HOSTS)
def test_configured_host_has_nothing_to_do(desired: DesiredState, host: str) -> None:
    changes = diff(host_desired(desired, host), actual_of(desired, host, "configured"))
    assert changes == []


@pytest.mark.parametrize("host", HOSTS)
def test_bare_host_needs_only_creates_and_the_forwarding_flag(desired: DesiredState, host: str) -> None:
    changes = diff(host_desired(desired, host), actual_of(desired, host, "bare"))
    assert changes
    assert {c.action for c in changes if c.layer != "flag"} == {"create"}
    for change in changes:
        if change.layer == "flag":
            assert change.action == "update" and dict(change.actual or ())["value"] == "0"


def test_bare_server_reports_no_softether_until_it_runs(desired: DesiredState) -> None:
    actual = actual_of(desired, "vpnserver", "bare")
    assert [r.layer for r in actual] == ["host-package"]
    assert actual[0].owned is False  # not installed by hybridctl (and no --purge)


def test_package_is_owned_only_when_installed_by_hybridctl_and_purging(desired: DesiredState) -> None:
    own = hs.Ownership(package_installed=True, purge=True)
    actual = actual_of(desired, "vpnserver", "bare", own)
    assert actual[0].owned is True


def test_configured_bridge_reports_runtime_facts_as_extra_attributes(desired: DesiredState) -> None:
    actual = {r.key: r for r in actual_of(desired, "aws-bridge", "configured")}
    cascade = actual[("aws-bridge", "cascade", "BRIDGE", "HYBRID")]
    assert cascade.get("status") == "established" and cascade.get("online") == "true"
    assert actual[("aws-bridge", "local-bridge", "BRIDGE", "vpntap")].get("status") == "Operating"
    service = actual[("aws-bridge", "softether-vpnbridge")]
    assert service.get("state") == "running" and service.get("enabled") == "enabled"  # systemd enabled it
    address = actual[("aws-bridge", "tap_vpntap", "192.168.10.2/24")]
    assert address.layer == "host-address" and address.owned
    route = actual[("aws-bridge", "192.168.1.0/24")]
    assert route.owned and route.get("protocol") == "177" and route.get("dev") == "tap_vpntap"


def test_client_routes_are_client_routes_only(desired: DesiredState) -> None:
    """A LAN client's kernel routes are reported once, as `client-route` (as the planner plans them)."""
    actual = actual_of(desired, "hl-home-c1", "configured")
    layers = {(r.layer, r.key[1]) for r in actual if r.layer in ("host-route", "client-route")}
    prefixes = {"192.168.10.0/24", "192.168.20.0/24", "192.168.21.0/24", "192.168.30.0/24", "192.168.31.0/24"}
    assert layers == {("client-route", p) for p in prefixes}
    assert all(r.get("via") == "192.168.1.249" for r in actual if r.layer == "client-route")
    planned = {
        (r.layer, r.key[1])
        for r in desired.resources()
        if r.key[0] == "hl-home-c1" and r.layer in ("host-route", "client-route")
    }
    assert planned == layers


def test_foreign_routes_to_overlay_prefixes_are_conflicts(desired: DesiredState) -> None:
    plan = desired.host("aws-bridge")
    routes = [
        Route(IPv4Network("192.168.1.0/24"), IPv4Address("192.168.20.1"), "eth0", "static"),  # same prefix
        Route(IPv4Network("192.168.30.128/25"), IPv4Address("192.168.20.1"), "eth0"),  # steals part of one
        Route(IPv4Network("192.168.31.0/24"), IPv4Address("192.168.10.1"), "tap_vpntap", "177"),  # ours
        Route(IPv4Network("10.0.0.0/8"), IPv4Address("192.168.20.1"), "eth0"),  # elsewhere: invisible
        Route(IPv4Network("172.16.0.0/16"), IPv4Address("192.168.10.1"), "tap_vpntap", "177"),  # ours, stale
    ]
    actual = hs.route_resources(plan, routes, None)
    by_prefix = {r.key[1]: r for r in actual}
    assert set(by_prefix) == {"192.168.1.0/24", "192.168.30.128/25", "192.168.31.0/24", "172.16.0.0/16"}
    assert not by_prefix["192.168.1.0/24"].owned and by_prefix["192.168.31.0/24"].owned
    wanted = [r for r in desired.resources() if r.layer == "host-route" and r.key[0] == "aws-bridge"]
    changes = {(c.action, c.key[1]) for c in diff(wanted, actual)}
    assert ("conflict", "192.168.1.0/24") in changes
    assert ("conflict", "192.168.30.128/25") in changes
    assert ("create", "192.168.30.0/24") in changes
    assert ("delete", "172.16.0.0/16") in changes
    assert not any(p == "192.168.31.0/24" for _, p in changes)


def test_cascade_status_words() -> None:
    assert hs.cascade_status("Online (Established)") == "established"
    assert hs.cascade_status("Offline (Stopped)") == "offline"
    assert hs.cascade_status("Online (Connecting)") == "connecting"
    failed = "Error 13: Time-out occurred during VPN session communication."
    assert hs.cascade_status(failed) == "error: " + failed
    statuses = ("Online (Established)", "Online (Connecting)", failed, "Offline (Stopped)")
    # Only an established link is online: "connecting" at read time is SoftEther's retry timer.
    assert [hs.cascade_online(s) for s in statuses] == ["true", "false", "false", "false"]


def test_cascade_action_after_a_network_blip() -> None:
    failed = "Error 13: Time-out occurred during VPN session communication."
    # (status, planned online, configured online) -> what up does
    cases = {
        ("Online (Established)", True, True): "none",
        ("Online (Connecting)", True, True): "reconnect",  # retry timer after a cut: force it, wait
        (failed, True, True): "reconnect",
        ("Offline (Stopped)", True, False): "online",
        ("Offline (Stopped)", True, True): "online",
        ("Online (Connecting)", False, True): "none",  # planned offline: the diff sets it offline
        (None, True, False): "none",  # not created yet: the diff creates it
    }
    assert {case: hs.cascade_action(*case) for case in cases} == cases
    assert hs.cascade_settling("Online (Connecting)")
    assert not hs.cascade_settling("Online (Established)") and not hs.cascade_settling(failed)
    assert not hs.cascade_settling(None)


def test_a_failed_cascade_is_stuck_and_shows_as_not_online(desired: DesiredState) -> None:
    # A real transcript of a bridge whose server went away (tests/fixtures/softether).
    text = (FIXTURES / "softether" / "read_bridge_retrying.txt").read_text()
    read = parse_softether(text, "vpn-bridge")
    plan = desired.host("aws-bridge")
    assert plan.softether is not None
    planned = plan.softether
    stuck = hs.stuck_cascades(read.config, read.facts, planned)
    assert [(c.hub, c.name) for c in stuck] == [("BRIDGE", "HYBRID")]
    items = hs.softether_actual_resources("aws-bridge", planned, read.config, read.facts, never)
    cascade = next(r for r in items if r.key[1] == "cascade")
    assert cascade.get("online") == "false" and cascade.get("status").startswith("error")
    # The diff asks to repair it; vpncmd has nothing to do (configured online): hosts.py restarts.
    change = next(c for c in diff([r for r in desired.resources() if r.key[:2] == ("aws-bridge", "cascade")], items))
    target = hs.target_config(read.config, planned, [change])
    assert not plan_steps(target, read.config).after_network


def test_target_config_applies_exactly_the_changes(desired: DesiredState) -> None:
    raw = parse_read((HOSTREAD / "read_configured_vpnserver.txt").read_text())
    actual = parse_softether(raw.vpncmd_output, "vpn-server").config
    planned = desired.host("vpnserver").softether
    assert planned is not None
    # Deletes carry the item read, creates the planned one: the diff's changes, made by hand.
    found = {r.key: r.item for r in softether_resources("vpnserver", actual)}
    route_key = ("vpnserver", "l3-route", "L3SW", "192.168.31.0/24")
    user_key = ("vpnserver", "user", "DEFAULT", "home-user")
    listener = SoftEtherItem("vpnserver", "listener", 443)
    changes = [
        Change("delete", "softether", route_key, None, (), found=found[route_key]),
        Change("delete", "softether", user_key, None, (), found=found[user_key]),
        Change("create", "softether", ("vpnserver", "listener", "443"), (), None, planned=listener),
    ]
    target = hs.target_config(actual, planned, changes)
    steps = [s.command for s in plan_steps(target, actual).all_steps()]
    assert steps == [
        "ListenerCreate 443",
        "UserDelete home-user",
        "RouterStop L3SW",
        "RouterTableDel L3SW /NETWORK:192.168.31.0/255.255.255.0 /GATEWAY:192.168.10.3 /METRIC:1",
        "RouterStart L3SW",
    ]
    # And no changes: nothing to do.
    assert not plan_steps(hs.target_config(actual, planned, []), actual)


def test_target_config_of_the_whole_plan_from_factory_matches_the_planned_steps(desired: DesiredState) -> None:
    planned = desired.host("aws-bridge").softether
    assert planned is not None
    factory = hs.factory_config("vpn-bridge")
    wanted = [r for r in desired.resources() if r.layer == "softether" and r.key[0] == "aws-bridge"]
    items = [
        Resource(
            "softether", ("aws-bridge", "listener", str(p)), (), "", True, SoftEtherItem("aws-bridge", "listener", p)
        )
        for p in factory.listeners
    ] + [
        Resource(
            "softether",
            ("aws-bridge", "hub", "BRIDGE"),
            (("secure_nat", "false"),),
            "",
            True,
            SoftEtherItem("aws-bridge", "hub", Hub("BRIDGE")),
        )
    ]
    target = hs.target_config(factory, planned, diff(wanted, items))
    assert plan_steps(target, factory, admin_password_set=False) == plan_steps(
        planned, factory, admin_password_set=False
    )


def test_host_changes_are_sorted_by_what_the_host_must_do() -> None:
    changes = [
        Change("create", "host-package", ("h", "softether-vpnbridge"), (), None),
        Change("update", "host-file", ("h", "/etc/x"), (), ()),
        Change("delete", "host-file", ("h", "/etc/y"), None, ()),
        Change("update", "flag", ("s", "h", hs.IP_FORWARD), (), ()),
        Change("create", "host-route", ("h", "10.0.0.0/8"), (), None),
        Change("delete", "client-route", ("h", "10.1.0.0/16"), None, ()),
        Change("conflict", "host-route", ("h", "10.2.0.0/16"), None, ()),
    ]
    hc = hs.HostChanges.of(changes)
    assert [len(hc.package_install), len(hc.files_put), len(hc.files_remove), len(hc.ip_forward)] == [1, 1, 1, 1]
    assert [c.key[1] for c in hc.network_add] == ["10.0.0.0/8"]
    assert [c.key[1] for c in hc.network_remove] == ["10.1.0.0/16"]
    assert len(hc.all()) == 6  # the conflict is never acted on


def test_removal_commands_only_take_addresses_and_device_names() -> None:
    def address(device: str) -> Change:
        item = AddressItem("h", device, IPv4Interface("192.168.10.9/24"))
        return Change("delete", "host-address", ("h", device, "192.168.10.9/24"), None, (), found=item)

    assert (
        hs.address_removal(address("tap_vpntap"))
        == "ip -4 addr del 192.168.10.9/24 dev tap_vpntap 2>/dev/null || true\n"
    )
    with pytest.raises(ValueError):
        hs.address_removal(address("x;reboot"))
    with pytest.raises(ValueError):  # a typed prefix cannot carry anything else
        KernelRouteItem("h", IPv4Network("1.2.3.4/8;reboot"), None)
    with pytest.raises(ValueError):  # nor is a change without its item acted on
        hs.route_removal(Change("delete", "host-route", ("h", "172.16.0.0/16"), None, ()))
    item = KernelRouteItem("h", IPv4Network("172.16.0.0/16"), IPv4Address("192.168.10.1"), "tap_vpntap")
    route = Change("delete", "host-route", ("h", "172.16.0.0/16"), None, (), found=item)
    assert hs.route_removal(route) == "ip -4 route del 172.16.0.0/16 proto 177 2>/dev/null || true\n"


def test_backend_owns_exactly_the_host_layers(desired: DesiredState, tmp_path: Path) -> None:
    backend = HostsBackend(desired, Journal(tmp_path / "journal.json"), SecretStore(tmp_path / "secrets.json"))
    owned = {(r.layer, r.key) for r in desired.resources() if backend.owns(r)}
    host_side = {
        (r.layer, r.key)
        for r in desired.resources()
        if r.layer in hs.HOST_LAYERS or (r.layer == "flag" and r.key[2] == hs.IP_FORWARD)
    }
    assert owned == host_side
    assert ("flag", ("aws", "aws-bridge", hs.IP_FORWARD)) in owned
    assert ("client-route", ("hl-home-c1", "192.168.20.0/24")) in owned
    assert {layer for layer, _ in owned} == set(hs.HOST_LAYERS) | {"flag"}
    stranger = KernelRouteItem("not-a-host", IPv4Network("10.0.0.0/8"), None)
    assert not backend.owns(Resource("host-route", ("not-a-host", "10.0.0.0/8"), item=stranger))
    assert not backend.owns(Resource("host-route", ("vpnserver", "10.0.0.0/8")))  # no item: not acted on


class RecordingSession:
    """Stands in for one host's SSH session: records each exec, answers like a host that ran
    nothing (the apply is then reported failed; only the rendered scripts matter here)."""

    def __init__(self) -> None:
        self.execs: list[tuple[str, bytes]] = []

    def run(self, command: str, stdin: bytes | str | None = None, timeout: float = 0) -> CommandResult:
        self.execs.append((command, stdin if isinstance(stdin, bytes) else (stdin or "").encode()))
        return CommandResult(0, "", "")

    def run_script(self, script: str, secrets: bytes = b"", timeout: float = 0, shell: str = "sh") -> CommandResult:
        return self.run(bootstrap(script, shell=shell), script.encode() + secrets, timeout)

    def close(self) -> None:
        return None


def bridge_backend(desired: DesiredState, tmp_path: Path) -> tuple[HostsBackend, RecordingSession]:
    backend = HostsBackend(desired, Journal(tmp_path / "journal.json"), SecretStore(tmp_path / "secrets.json"))
    plan = desired.host("aws-bridge")
    raw = parse_read((HOSTREAD / "read_bare_aws-bridge.txt").read_text())
    resources = hs.host_resources(plan, raw, None, None, hs.Ownership(), never)
    backend._state["aws-bridge"] = _HostState(plan, raw, None, resources)
    session = RecordingSession()
    backend._sessions["aws-bridge"] = session  # type: ignore[assignment]
    return backend, session


def test_a_bare_bridge_alone_is_one_exec_with_distinct_vpncmd_runs(desired: DesiredState, tmp_path: Path) -> None:
    backend, session = bridge_backend(desired, tmp_path)
    wanted = [r for r in desired.resources() if "aws-bridge" in r.key and r.layer != "cloud-route"]
    changes = diff(wanted, backend._state["aws-bridge"].resources)
    outcomes = backend.apply(changes, desired, NoProgress())
    assert len(session.execs) == 1 and backend.counter.mutations == 1  # no VPN server apply to wait for
    command, stdin = session.execs[0]
    match = re.search(r"head -c (\d+) ", command)
    assert match is not None
    script, answers = stdin[: int(match.group(1))].decode(), stdin[int(match.group(1)) :]
    steps = re.findall(r"hctl_mark 'step:([a-z0-9-]+)'", script)
    assert steps == [
        "files",
        "ip-forward",
        "service",
        "vpncmd-1",
        "overlay",
        "restart",
        "overlay-again",
        "wait-link",
    ]
    # Passwords (admin, cascade) only after the script, never in it or in the command line.
    store = json.loads((tmp_path / "secrets.json").read_text())
    assert len(store) == 2  # admin/aws-bridge, hub-user/HYBRID/bridge-aws
    for value in store.values():
        assert value not in command and value not in script
        assert value.encode() in answers
    assert all(not o.ok for o in outcomes)  # the stand-in ran nothing


def test_a_bridge_waits_for_the_server_before_its_cascade_goes_online(desired: DesiredState, tmp_path: Path) -> None:
    backend, session = bridge_backend(desired, tmp_path)
    backend._server_done.clear()  # a VPN server apply is in flight
    wanted = [r for r in desired.resources() if "aws-bridge" in r.key and r.layer != "cloud-route"]
    changes = diff(wanted, backend._state["aws-bridge"].resources)
    threading.Timer(0.2, backend._server_done.set).start()
    backend._apply_host("aws-bridge", changes, NoProgress())
    # The stand-in's empty output stops the host after the first exec. The cascade is set online
    # in the saved configuration there, but only the restart brings it up on clean threads (the
    # cascade bug), and the restart waits for the server's apply: not in the first exec.
    assert len(session.execs) == 1
    first = session.execs[0][1].decode(errors="replace")
    assert "step:restart" not in first
    assert first.index("CascadeOnline HYBRID") < first.index("\nFlush\n", first.index("CascadeOnline HYBRID"))
