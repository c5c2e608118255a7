"""The gateway path's decisions (pure): one vpncmd process per host and phase, a SoftEther restart
only when a cascade needs one, systemd re-reading its units only when one it knows changed.

Real reads of the lab's hosts (tests/fixtures/hostread/, tests/fixtures/softether/) feed them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from hybridctl.backends import hoststate as hs
from hybridctl.backends.base import NoProgress
from hybridctl.backends.hosts import HostsBackend, _HostState
from hybridctl.backends.hostscript import bootstrap, parse_read
from hybridctl.backends.journal import Journal
from hybridctl.backends.ssh import CommandResult
from hybridctl.core.diff import Change, diff
from hybridctl.core.hostfiles import OVERLAY_SCRIPT, OVERLAY_UNIT, unit_path
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.desired import DesiredState, FileItem, Resource
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.core.secrets import SecretStore
from hybridctl.core.softether.commands import Step, plan_steps
from hybridctl.core.softether.parse import parse_read as parse_softether
from tests.conftest import FIXTURES
from tests.support.lab_inventory import never, write_lab_inventory

HOSTREAD = FIXTURES / "hostread"


@pytest.fixture(scope="module")
def desired(tmp_path_factory: pytest.TempPathFactory) -> DesiredState:
    return plan_loaded(load_inventory(write_lab_inventory(tmp_path_factory.mktemp("lab"))))


def file_change(path: str, action: str) -> Change:
    """The diff's change of one managed file: created, replaced or removed."""
    item = FileItem("aws-bridge", path)
    mine = Resource("host-file", ("aws-bridge", path), (("mode", "644"), ("sha256", "new")), "", True, item)
    found = Resource("host-file", ("aws-bridge", path), (("mode", "644"), ("sha256", "old")), "", True, item)
    wanted, actual = {"create": ([mine], []), "update": ([mine], [found]), "delete": ([], [found])}[action]
    (change,) = diff(wanted, actual)
    assert change.action == action
    return change


# -- systemd: daemon-reload only when a unit it may have loaded changes ------------------------------


def test_new_unit_files_need_no_reload() -> None:
    # A bare host: systemd never saw the units; it loads them when they are first named.
    cold = [file_change(p, "create") for p in (OVERLAY_SCRIPT, OVERLAY_UNIT, unit_path("softether-vpnbridge"))]
    assert not hs.daemon_reload_needed(cold)


@pytest.mark.parametrize("action", ["update", "delete"])
def test_a_replaced_or_removed_unit_needs_a_reload(action: str) -> None:
    assert hs.daemon_reload_needed([file_change(OVERLAY_SCRIPT, "update"), file_change(OVERLAY_UNIT, action)])


def test_other_files_never_need_a_reload() -> None:
    assert not hs.daemon_reload_needed([file_change(OVERLAY_SCRIPT, "update"), file_change(OVERLAY_SCRIPT, "delete")])


# -- SoftEther restarts ----------------------------------------------------------------------------


def test_restart_only_when_a_cascade_goes_online(desired: DesiredState) -> None:
    plan = desired.host("aws-bridge")
    assert plan.softether is not None
    factory = hs.factory_config("vpn-bridge")
    cold = plan_steps(plan.softether, factory, admin_password_set=False)
    assert hs.restart_needed(cold.after_network, [], [])
    # Everything but the cascade's online flag: listeners, bridges, passwords apply live.
    offline = plan_steps(plan.softether, factory, admin_password_set=False, restart_after_online=False)
    assert not hs.restart_needed(offline.after_network, [], [])
    assert not hs.restart_needed((Step("Flush"),), [], [])


def test_a_stuck_cascade_restarts_only_when_the_diff_touches_it(desired: DesiredState) -> None:
    read = parse_softether((FIXTURES / "softether" / "read_bridge_retrying.txt").read_text(), "vpn-bridge")
    plan = desired.host("aws-bridge")
    assert plan.softether is not None
    stuck = hs.stuck_cascades(read.config, read.facts, plan.softether)
    assert stuck
    items = hs.softether_actual_resources("aws-bridge", plan.softether, read.config, read.facts, never)
    wanted = [r for r in desired.resources() if r.key[:2] == ("aws-bridge", "cascade")]
    changes = diff(wanted, items)
    assert changes and hs.restart_needed((), stuck, changes)
    other = [c for c in diff([r for r in desired.resources() if r.key[:1] == ("aws-bridge",)], items)
             if c.layer == "softether" and c.key[1] != "cascade"]  # fmt: skip
    assert not hs.restart_needed((), stuck, other)


# -- the scripts a cold bridge gets ------------------------------------------------------------------


class RecordingSession:
    """Stands in for one host's SSH session: records each exec, answers like a host that ran nothing
    (``finished``: or like one whose script got to its end, printing its ``done`` marker)."""

    def __init__(self, finished: bool = False) -> None:
        self.execs: list[tuple[str, bytes]] = []
        self.finished = finished

    def run_script(self, script: str, secrets: bytes = b"", timeout: float = 0, shell: str = "sh") -> CommandResult:
        self.execs.append((bootstrap(script, shell=shell), script.encode() + secrets))
        return CommandResult(0, "\n@@hybridctl:done@@\n" if self.finished else "", "")

    def close(self) -> None:
        return None

    def scripts(self) -> list[str]:
        out = []
        for command, stdin in self.execs:
            match = re.search(r"head -c (\d+) ", command)
            assert match is not None
            out.append(stdin[: int(match.group(1))].decode())
        return out


def cold_apply(
    desired: DesiredState,
    tmp_path: Path,
    hosts: tuple[str, ...],
    finished: bool = False,
    session_of: Callable[[str], RecordingSession] | None = None,
) -> dict[str, RecordingSession]:
    """``apply`` of everything ``hosts`` lack when bare (their real bare reads), in one run;
    ``session_of``: the stand-in session for a host (default: a RecordingSession)."""
    backend = HostsBackend(desired, Journal(tmp_path / "journal.json"), SecretStore(tmp_path / "secrets.json"))
    sessions: dict[str, RecordingSession] = {}
    changes: list[Change] = []
    for host in hosts:
        plan = desired.host(host)
        raw = parse_read((HOSTREAD / f"read_bare_{host}.txt").read_text())
        client = next((c for c in desired.clients if c.client == host and c.managed), None)
        resources = hs.host_resources(plan, raw, None, client, hs.Ownership(), never)
        backend._state[host] = _HostState(plan, raw, None, resources)
        sessions[host] = session_of(host) if session_of is not None else RecordingSession(finished)
        backend._sessions[host] = sessions[host]  # type: ignore[assignment]
        wanted = [r for r in desired.resources() if host in r.key and r.layer not in ("cloud-route", "security-rule")]
        changes += diff(wanted, resources)
    backend.apply(changes, desired, NoProgress())
    return sessions


def cold_bridge_script(desired: DesiredState, tmp_path: Path, host: str = "aws-bridge") -> str:
    (script,) = cold_apply(desired, tmp_path, (host,))[host].scripts()
    return script


def step_bodies(script: str) -> dict[str, str]:
    return dict(re.findall(r"hctl_mark 'step:([a-z0-9-]+)'\n\(\nset -e\n(.*?)\)\nhctl_rc=", script, re.S))


def test_a_cold_bridge_has_one_vpncmd_per_phase_and_no_reload(desired: DesiredState, tmp_path: Path) -> None:
    script = cold_bridge_script(desired, tmp_path)
    bodies = step_bodies(script)
    assert list(bodies) == [
        "files", "ip-forward", "service", "vpncmd-1", "overlay", "restart", "overlay-again", "wait-link"
    ]  # fmt: skip
    # One vpncmd process, before the network: everything, the cascade set online, Flush last. The
    # restart then brings the cascade up from the saved configuration: no vpncmd after it.
    assert bodies["vpncmd-1"].count("hctl_vpncmd ") == 1
    batch = bodies["vpncmd-1"]
    assert batch.index("CascadeCreate") < batch.index("CascadeOnline") < batch.rindex("Flush")
    assert batch.split("\nHYBRIDCTL_EOF_7f3a\n", 1)[0].rsplit("\n", 1)[-1] == "Flush"  # the batch's last line
    # Bare host: new unit files, so no daemon-reload anywhere; one systemctl call starts the service.
    assert "hctl_reload" not in script.split("hctl_mark 'step:files'", 1)[1]
    assert bodies["service"].startswith("hctl_start ")
    assert bodies["overlay-again"] == "hctl_overlay_again\n"
    # The gateway's overlay unit follows its SoftEther unit (re-run at every SoftEther start).
    assert bodies["overlay"] == "hctl_overlay softether-vpnbridge.service\n"


def test_a_cold_lan_client_runs_its_overlay_script_without_a_systemd_job(desired: DesiredState, tmp_path: Path) -> None:
    script = cold_bridge_script(desired, tmp_path, "hl-home-c1")
    bodies = step_bodies(script)
    assert list(bodies) == ["files", "overlay"]
    assert bodies["overlay"] == "hctl_overlay ''\n"
    assert "hctl_reload" not in bodies["files"]
    overlay = re.search(r"hctl_overlay\(\) \{.*?\n\}", script, re.S)
    # Enabled for boot as `systemctl enable` would (the unit's only [Install] line is
    # WantedBy=multi-user.target), without a systemctl call per client.
    client_branch = overlay.group(0).split("else", 1)[1] if overlay is not None else ""
    assert not [line for line in client_branch.splitlines() if line.strip().startswith("systemctl")]
    assert "ln -sf /etc/systemd/system/hybridctl-overlay.service" in client_branch
    plan = desired.host("hl-home-c1")
    (unit,) = [f for f in plan.files if f.path == OVERLAY_UNIT]
    assert [line for line in unit.content.splitlines() if line.startswith("WantedBy=")] == [
        "WantedBy=multi-user.target"
    ]  # fmt: skip


def test_apply_functions_batch_systemctl(desired: DesiredState, tmp_path: Path) -> None:
    script = cold_bridge_script(desired, tmp_path)
    functions = script.split("hctl_mark 'step:files'", 1)[0]
    start = re.search(r"hctl_start\(\) \{.*?\n\}", functions, re.S)
    assert start is not None
    # enable + start in one call, without the reload `enable` does by default.
    assert "hctl_enable_now" in start.group(0) and "daemon-reload" not in start.group(0)
    assert "systemctl enable --no-reload --now" in functions
    restart = re.search(r"hctl_restart\(\) \{.*?\n\}", functions, re.S)
    assert restart is not None and "--signal=SIGKILL" in restart.group(0) and "--signal=SIGTERM" not in restart.group(0)


def test_the_last_apply_exec_ends_with_the_verification_read(desired: DesiredState, tmp_path: Path) -> None:
    script = cold_bridge_script(desired, tmp_path)
    applied, read = script.split("hctl_mark done\n", 1)
    assert "hctl_mark 'step:" in applied and "hctl_mark 'step:" not in read
    # The read part is the read script's (every fact, the vpncmd read batch, its end marker).
    for section in ("os", "pkg", "files", "service", "addr", "route", "config", "end"):
        assert f"hctl_mark {section}\n" in read, section
    assert "ServerInfoGet" in read and "CascadeList" in read


def restart_line(script: str) -> str:
    return next(line for line in script.splitlines() if line.startswith("hctl_restart "))


def test_a_cold_server_drops_its_factory_listeners_at_a_restart_before_the_bridges_go(
    desired: DesiredState, tmp_path: Path
) -> None:
    sessions = cold_apply(desired, tmp_path, ("vpnserver", "aws-bridge"), finished=True)
    apply, verify = sessions["vpnserver"].scripts()
    first = batch_lines(apply)
    # Hubs, users, passwords and the L3 switch in one batch ending with its Flush; no vpncmd
    # ListenerDelete (~0.4 s each, and no login gets in meanwhile): the restart right after it
    # drops them from the saved configuration, and the bridges' wait ends with that exec.
    assert "UserCreate" in first and "RouterStart" in first and "ListenerDelete" not in first
    assert first[-1] == "Flush"
    assert list(step_bodies(apply))[-2:] == ["vpncmd-1", "restart"]
    assert restart_line(apply).endswith(" /var/lib/softether/vpn_server.config '443 992 1194'")
    # Its verification read, in an exec of its own after the bridges were let go.
    assert "hctl_mark 'step:" not in verify and "hctl_mark end" in verify and "ListenerList" in verify
    # The bridge: its own batch (cascade online, no listener removal), then the restart once the
    # server's first exec ended, dropping the factory listeners from its configuration.
    bridge = sessions["aws-bridge"].scripts()
    assert "CascadeOnline" in batch_lines(bridge[0]) and "ListenerDelete" not in batch_lines(bridge[0])
    assert restart_line(bridge[-1]).endswith(" /var/lib/softether/vpn_bridge.config '443 992 1194'")


def test_a_server_alone_drops_its_listeners_at_its_restart_in_its_one_exec(
    desired: DesiredState, tmp_path: Path
) -> None:
    # No bridge waits for it: nothing to release early, so its verification read ends the exec.
    (script,) = cold_apply(desired, tmp_path, ("vpnserver",), finished=True)["vpnserver"].scripts()
    applied, read = script.split("hctl_mark done\n", 1)
    lines = batch_lines(applied)
    assert "UserCreate" in lines and lines[-1] == "Flush" and "ListenerDelete" not in "\n".join(lines)
    assert restart_line(applied).endswith(" /var/lib/softether/vpn_server.config '443 992 1194'")
    assert "hctl_mark end" in read


def test_a_running_server_removes_a_listener_with_vpncmd_and_no_restart(desired: DesiredState, tmp_path: Path) -> None:
    # SoftEther already runs (sessions may be up): its extra listeners go through vpncmd, live.
    plan = desired.host("vpnserver")
    assert plan.softether is not None
    raw = parse_read((HOSTREAD / "read_configured_vpnserver.txt").read_text())
    softether = parse_softether((FIXTURES / "softether" / "read_server_fresh.txt").read_text(), "vpn-server")
    backend = HostsBackend(desired, Journal(tmp_path / "journal.json"), SecretStore(tmp_path / "secrets.json"))
    resources = hs.host_resources(plan, raw, softether, None, hs.Ownership(), never)
    backend._state["vpnserver"] = _HostState(plan, raw, softether, resources)
    session = RecordingSession(finished=True)
    backend._sessions["vpnserver"] = session  # type: ignore[assignment]
    wanted = [r for r in desired.resources() if "vpnserver" in r.key and r.layer == "softether"]
    changes = diff(wanted, resources)
    assert any(c.action == "delete" and "listener" in c.key for c in changes)
    backend.apply(changes, desired, NoProgress())
    (script,) = session.scripts()
    assert "restart" not in step_bodies(script) and "service" not in step_bodies(script)
    lines = batch_lines(script)
    assert [line for line in lines if line.startswith("ListenerDelete")] == [
        "ListenerDelete 443", "ListenerDelete 992", "ListenerDelete 1194"
    ]  # fmt: skip
    assert lines[-1] == "Flush"


def batch_lines(script: str) -> list[str]:
    """The commands of every vpncmd batch in ``script`` (their argument-less first word for most)."""
    lines: list[str] = []
    for batch in re.findall(r"cat > \"\$HCTL_DIR/vpncmd-\d+\.in\" <<'HYBRIDCTL_EOF_7f3a'\n(.*?)\nHYBRIDCTL_EOF_7f3a\n",
                            script, re.S):  # fmt: skip
        lines += [line if line.startswith(("Listener", "Flush")) else line.split(" ", 1)[0]
                  for line in batch.split("\n")]  # fmt: skip
    return lines


def test_the_restart_drops_listeners_from_the_configuration_byte_for_byte(tmp_path: Path) -> None:
    """hctl_drop_listeners on a real fresh VPN Bridge's configuration (its listener list and the
    section after it, tests/fixtures/softether/): the named listeners' blocks go, every other
    byte (BOM, CRLF, tabs) stays, and the file keeps mode 600."""
    import subprocess

    from tests.support.hosts import shell_functions

    original = (FIXTURES / "softether" / "bridge_config_factory_listeners.config").read_bytes()
    config = tmp_path / "vpn_bridge.config"
    config.write_bytes(original)
    functions = shell_functions()
    script = functions + 'hctl_drop_listeners "$1" "443 992 1194"\n'
    subprocess.run(["sh", "-c", script, "sh", str(config)], check=True)
    edited = config.read_bytes()
    blocks = re.findall(rb"\t\tdeclare Listener\d+\r\n\t\t\{\r\n.*?\t\t\}\r\n", original, re.S)
    assert len(blocks) == 4
    assert edited == original.replace(blocks[0], b"").replace(blocks[1], b"").replace(blocks[2], b"")
    assert b"uint Port 5555" in edited and b"uint Port 443" not in edited
    assert edited.startswith(b"\xef\xbb\xbf") and (config.stat().st_mode & 0o777) == 0o600
    # Nothing to drop, or no such file: untouched, no error.
    subprocess.run(["sh", "-c", functions + 'hctl_drop_listeners "$1" ""\n', "sh", str(config)], check=True)
    assert config.read_bytes() == edited
    missing = str(tmp_path / "none")
    subprocess.run(["sh", "-c", functions + 'hctl_drop_listeners "$1" "443"\n', "sh", missing], check=True)


def test_only_hosts_with_overlay_addresses_list_their_addresses(desired: DesiredState, tmp_path: Path) -> None:
    # A LAN client plans routes only: its read spends no `ip addr` process (on every read).
    from hybridctl.backends.hostscript import render_read

    backend = HostsBackend(desired, Journal(tmp_path / "journal.json"), SecretStore(tmp_path / "secrets.json"))
    client = render_read(backend._read_request("hl-home-c1")).script
    bridge = render_read(backend._read_request("aws-bridge")).script
    assert "hctl_mark addr\n" in client and "ip -j -4 addr show" not in client
    assert "hctl_mark addr\nip -j -4 addr show\n" in bridge
    assert "ip -j -4 route show table main" in client and "ip -j -4 route show table main" in bridge
    assert not desired.host("hl-home-c1").addresses and desired.host("aws-bridge").addresses


def test_lan_clients_start_once_every_gateways_first_exec_is_on_its_way(desired: DesiredState, tmp_path: Path) -> None:
    # The gateways are the critical path: a client's first exec never goes before theirs.
    order: list[str] = []

    class Ordered(RecordingSession):
        def __init__(self, name: str) -> None:
            super().__init__(finished=True)
            self.name = name

        def run_script(self, script: str, secrets: bytes = b"", timeout: float = 0, shell: str = "sh") -> CommandResult:
            order.append(self.name)
            return super().run_script(script, secrets, timeout, shell)

    hosts = ("hl-home-c1", "aws-bridge", "vpnserver")
    cold_apply(desired, tmp_path, hosts, session_of=Ordered)
    first = {name: order.index(name) for name in hosts}
    assert first["hl-home-c1"] > first["aws-bridge"] and first["hl-home-c1"] > first["vpnserver"]
