"""Parsing the one-process read batch of a real server/bridge into SoftEtherConfig + facts."""

from __future__ import annotations

from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from hybridctl.core.errors import RemoteError
from hybridctl.core.softether.model import L3Interface, LocalBridge, SoftEtherConfig, SoftEtherRole
from hybridctl.core.softether.parse import ReadResult, csv_table, item_values, parse_read, read_commands
from hybridctl.core.softether.vpncmd import VpncmdAuthError, parse_transcript
from tests.fixtures.softether.lab_configs import BRIDGE, SERVER


def read(fixtures_dir: Path, name: str, role: SoftEtherRole = "vpn-server") -> ReadResult:
    return parse_read((fixtures_dir / "softether" / name).read_bytes().decode(), role)


def test_read_batch_is_one_process_with_hub_sections() -> None:
    cmds = read_commands("vpn-server", SERVER)
    assert cmds[:6] == ("ServerInfoGet", "ListenerList", "HubList", "BridgeList", "BridgeDeviceList", "RouterList")
    assert cmds[6:8] == ("RouterIfList L3SW", "RouterTableList L3SW")
    i = cmds.index("Hub HYBRID")
    assert cmds[i - 1] == "Hub"  # unselect first: a missing hub must not read the previous one
    assert cmds[i + 1 : i + 4] == ("StatusGet", "UserList", "CascadeList")
    assert cmds[-1] == "Hub"
    bridge = read_commands("vpn-bridge", BRIDGE)
    assert "UserList" not in bridge and "RouterList" not in bridge  # error 33 on a VPN Bridge
    assert "CascadeGet HYBRID" in bridge


@pytest.mark.parametrize(
    ("name", "role", "desired"),
    [
        ("read_server_fresh.txt", "vpn-server", SERVER),
        ("read_server_configured.txt", "vpn-server", SERVER),
        ("read_bridge_fresh.txt", "vpn-bridge", BRIDGE),
        ("read_bridge_online.txt", "vpn-bridge", BRIDGE),
    ],
)
def test_fixtures_come_from_the_read_batch(
    fixtures_dir: Path, name: str, role: SoftEtherRole, desired: SoftEtherConfig
) -> None:
    t = parse_transcript((fixtures_dir / "softether" / name).read_bytes().decode())
    assert tuple(r.command for r in t.results) == read_commands(role, desired)


def test_fresh_server(fixtures_dir: Path) -> None:
    r = read(fixtures_dir, "read_server_fresh.txt")
    assert not r.facts.admin_password_set
    assert r.facts.role == "vpn-server" and "VPN Server" in r.facts.product
    assert r.config.listeners == (443, 992, 1194, 5555)
    assert [h.name for h in r.config.hubs] == ["DEFAULT"]
    assert r.config.hubs[0].users == () and not r.config.hubs[0].secure_nat
    assert r.config.local_bridges == () and r.config.l3_switches == () and r.config.cascades == ()
    assert r.facts.bridge_devices == ("eth0", "eth1")


def test_configured_server(fixtures_dir: Path) -> None:
    r = read(fixtures_dir, "read_server_configured.txt")
    c = r.config
    assert r.facts.admin_password_set
    assert c.admin_password_secret == ""  # passwords cannot be read back
    assert c.listeners == (5555,)
    hubs = {h.name: h for h in c.hubs}
    assert [u.name for u in hubs["HYBRID"].users] == ["aws", "azure"]
    assert all(u.password_secret == "" for h in c.hubs for u in h.users)
    assert c.local_bridges == (LocalBridge("DEFAULT", "eth1", tap=False),)
    assert r.facts.bridge_status == {("DEFAULT", "eth1"): "Operating"}
    (sw,) = c.l3_switches
    assert sw.active and r.facts.l3_running == {"L3SW": True}
    assert sw.interfaces == (
        L3Interface("DEFAULT", IPv4Interface("192.168.1.249/24")),
        L3Interface("HYBRID", IPv4Interface("192.168.10.1/24")),
    )
    assert sw.routes == SERVER.l3_switches[0].routes


def test_bridge_states(fixtures_dir: Path) -> None:
    fresh = read(fixtures_dir, "read_bridge_fresh.txt", "vpn-bridge")
    assert fresh.facts.role == "vpn-bridge" and fresh.config.cascades == ()
    assert [h.name for h in fresh.config.hubs] == ["BRIDGE"]

    offline = read(fixtures_dir, "read_bridge_offline.txt", "vpn-bridge")
    (c,) = offline.config.cascades
    assert (c.name, c.hub, c.server_host, c.server_port, c.remote_hub, c.username) == (
        "HYBRID", "BRIDGE", "10.99.0.1", 5555, "HYBRID", "aws",
    )
    assert not c.online and c.password_secret == ""
    state = offline.facts.cascade("BRIDGE", "HYBRID")
    assert state is not None and not state.online and not state.established and state.established_at is None
    # vpntap is not in BridgeDeviceList (SoftEther hides its own taps): it is a tap bridge.
    assert offline.config.local_bridges == (LocalBridge("BRIDGE", "vpntap", tap=True),)

    online = read(fixtures_dir, "read_bridge_online.txt", "vpn-bridge")
    state = online.facts.cascade("BRIDGE", "HYBRID")
    assert state is not None and state.online and state.established and state.error is None
    assert online.config.cascades[0].online

    retrying = read(fixtures_dir, "read_bridge_retrying.txt", "vpn-bridge")
    state = retrying.facts.cascade("BRIDGE", "HYBRID")
    assert state is not None and state.online and not state.established
    assert state.error is not None and state.error.startswith("Error 13")
    assert retrying.config.cascades[0].online  # still configured online: it retries


def test_role_mismatch_and_auth_errors(fixtures_dir: Path) -> None:
    with pytest.raises(RemoteError, match="expected a SoftEther vpn-server"):
        read(fixtures_dir, "read_bridge_online.txt", "vpn-server")
    with pytest.raises(VpncmdAuthError):
        read(fixtures_dir, "wrong_password.txt")


def test_csv_helpers_handle_quoted_numbers() -> None:
    rows = csv_table(['A,B', '"1,941",x', '', 'ignored,after blank'])
    assert rows == [{"A": "1,941", "B": "x"}]
    assert item_values(["Item,Value", "SecureNAT,Enabled", "Empty"]) == {"SecureNAT": "Enabled", "Empty": ""}
