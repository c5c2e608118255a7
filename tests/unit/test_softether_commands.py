"""plan_steps: the vpncmd steps converging actual SoftEther state to desired, and nothing more.

A small simulator applies step command lines to a config with vpncmd's rules that matter for
ordering (hubs exist before their users/bridges/interfaces, an L3 switch is stopped to be edited,
one L3 interface per hub); the property test checks that any actual state converges to any
desired state in one plan, and that the next plan is empty.
"""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridctl.core.errors import InputError
from hybridctl.core.softether.commands import (
    RANDOM_SECRET,
    Step,
    admin_port,
    plan_steps,
    stuck_cascades,
    validate_config,
    vpncmd_runs,
)
from hybridctl.core.softether.model import (
    Cascade,
    Hub,
    HubUser,
    L3Interface,
    L3Route,
    L3Switch,
    LocalBridge,
    SoftEtherConfig,
    SoftEtherRole,
)
from hybridctl.core.softether.parse import ReadResult, parse_read
from tests.fixtures.softether.lab_configs import BRIDGE, SERVER


def read(fixtures_dir: Path, name: str, role: SoftEtherRole = "vpn-server") -> ReadResult:
    return parse_read((fixtures_dir / "softether" / name).read_bytes().decode(), role)


def commands(steps: tuple[Step, ...]) -> list[str]:
    return [s.command for s in steps]


def as_actual(config: SoftEtherConfig) -> SoftEtherConfig:
    """What a read returns for a host configured as ``config``: no secret names."""
    return dataclasses.replace(
        config,
        admin_password_secret="",
        hubs=tuple(Hub(h.name, tuple(HubUser(u.name, "") for u in h.users), h.secure_nat) for h in config.hubs),
        cascades=tuple(dataclasses.replace(c, password_secret="") for c in config.cascades),
    )


@dataclasses.dataclass
class _Switch:
    ifs: set[L3Interface]
    routes: set[L3Route]
    on: bool


class Sim:
    """Applies step command lines like vpncmd would, raising where vpncmd reports an error."""

    def __init__(self, c: SoftEtherConfig) -> None:
        self.role = c.role
        self.listeners = set(c.listeners)
        self.nat = {h.name: h.secure_nat for h in c.hubs}
        self.users = {h.name: {u.name for u in h.users} for h in c.hubs}
        self.bridges = set(c.local_bridges)
        self.switches = {s.name: _Switch(set(s.interfaces), set(s.routes), s.active) for s in c.l3_switches}
        self.cascades = {(x.hub, x.name): x for x in c.cascades}

    def apply(self, step: Step) -> None:
        if step.kind == "restart":
            return
        verb, _, rest = step.command.partition(" ")
        args = dict(a[1:].split(":", 1) for a in rest.split() if a.startswith("/") and ":" in a)
        first = rest.split(" ")[0] if rest else ""
        if step.hub is not None and step.hub not in self.users:
            raise AssertionError(f"{step.command}: hub {step.hub} does not exist (error 8)")
        users = self.users.get(step.hub or "", set())
        if verb == "ListenerCreate":
            assert int(first) not in self.listeners, "error 54"
            self.listeners.add(int(first))
        elif verb == "ListenerDelete":
            self.listeners.remove(int(first))
        elif verb == "HubCreate":
            assert first not in self.users, "error 57"
            assert step.secret == RANDOM_SECRET and step.prompts == 2
            self.users[first] = set()
            self.nat[first] = False
        elif verb == "HubDelete":
            del self.users[first], self.nat[first]
        elif verb in ("SecureNatEnable", "SecureNatDisable"):
            self.nat[step.hub or ""] = verb == "SecureNatEnable"
        elif verb == "UserCreate":
            assert first not in users, "error 66"
            users.add(first)
        elif verb == "UserDelete":
            users.remove(first)
        elif verb == "UserPasswordSet":
            assert first in users and step.prompts == 2
        elif verb == "BridgeCreate":
            assert first in self.users
            self.bridges.add(LocalBridge(first, args["DEVICE"], args["TAP"] == "yes"))
        elif verb == "BridgeDelete":
            self.bridges = {b for b in self.bridges if (b.hub, b.device) != (first, args["DEVICE"])}
        elif verb == "RouterAdd":
            self.switches[first] = _Switch(set(), set(), False)
        elif verb == "RouterDelete":
            del self.switches[first]
        elif verb in ("RouterStart", "RouterStop"):
            self.switches[first].on = verb == "RouterStart"
        elif verb.startswith("RouterIf") or verb.startswith("RouterTable"):
            sw = self.switches[first]
            assert not sw.on, f"{step.command}: error 95, the switch is running"
            if verb == "RouterIfAdd":
                assert args["HUB"] in self.users
                assert all(i.hub != args["HUB"] for i in sw.ifs), "error 97"
                sw.ifs.add(L3Interface(args["HUB"], IPv4Interface(args["IP"])))
            elif verb == "RouterIfDel":
                sw.ifs = {i for i in sw.ifs if i.hub != args["HUB"]}
            else:
                route = L3Route(IPv4Network(args["NETWORK"]), IPv4Address(args["GATEWAY"]), int(args["METRIC"]))
                if verb == "RouterTableAdd":
                    sw.routes.add(route)
                else:
                    sw.routes.remove(route)
        elif verb == "CascadeCreate":
            assert step.hub is not None
            host, port = args["SERVER"].rsplit(":", 1)
            self.cascades[(step.hub, first)] = Cascade(first, step.hub, host, int(port), args["HUB"],
                                                       args["USERNAME"], "", online=False)
        elif verb == "CascadeDelete":
            del self.cascades[(step.hub or "", first)]
        elif verb == "CascadeSet":
            host, port = args["SERVER"].rsplit(":", 1)
            c = self.cascades[(step.hub or "", first)]
            self.cascades[(c.hub, first)] = dataclasses.replace(c, server_host=host, server_port=int(port),
                                                                remote_hub=args["HUB"])
        elif verb == "CascadeUsernameSet":
            c = self.cascades[(step.hub or "", first)]
            self.cascades[(c.hub, first)] = dataclasses.replace(c, username=args["USERNAME"])
        elif verb == "CascadePasswordSet":
            assert (step.hub, first) in self.cascades and step.prompts == 2
        elif verb in ("CascadeOnline", "CascadeOffline"):
            c = self.cascades[(step.hub or "", first)]
            self.cascades[(c.hub, first)] = dataclasses.replace(c, online=verb == "CascadeOnline")
        elif verb != "ServerPasswordSet":
            raise AssertionError(f"unknown command {step.command}")

    def config(self) -> SoftEtherConfig:
        return SoftEtherConfig(
            role=self.role,
            admin_password_secret="",
            listeners=tuple(sorted(self.listeners)),
            hubs=tuple(Hub(n, tuple(HubUser(u, "") for u in sorted(us)), self.nat[n])
                       for n, us in sorted(self.users.items())),
            local_bridges=tuple(sorted(self.bridges)),
            l3_switches=tuple(L3Switch(n, tuple(sorted(s.ifs)), tuple(sorted(s.routes)), s.on)
                              for n, s in sorted(self.switches.items())),
            cascades=tuple(sorted(self.cascades.values(), key=lambda c: (c.hub, c.name))),
        )


def converge(
    desired: SoftEtherConfig, actual: SoftEtherConfig, *, admin_password_set: bool = True, prune: bool = False
) -> SoftEtherConfig:
    sim = Sim(actual)
    for step in plan_steps(desired, actual, admin_password_set=admin_password_set, prune=prune).all_steps():
        sim.apply(step)
    return sim.config()


def test_fresh_server_plan(fixtures_dir: Path) -> None:
    fresh = read(fixtures_dir, "read_server_fresh.txt")
    plan = plan_steps(SERVER, fresh.config, admin_password_set=False)
    cmds = commands(plan.before_network)
    assert cmds[0] == "ServerPasswordSet" and plan.before_network[0].secret == "softether/server-admin"
    assert cmds[-3:] == ["ListenerDelete 443", "ListenerDelete 992", "ListenerDelete 1194"]
    assert cmds.index("HubCreate HYBRID") < cmds.index("UserCreate aws /GROUP:none /REALNAME:none /NOTE:none")
    assert cmds.index("RouterAdd L3SW") < cmds.index("RouterIfAdd L3SW /HUB:HYBRID /IP:192.168.10.1/255.255.255.0")
    assert cmds[-4] == "RouterStart L3SW"
    assert "HubDelete DEFAULT" not in cmds  # DEFAULT is desired
    assert plan.after_network == ()
    assert not plan_steps(SERVER, converge(SERVER, fresh.config, admin_password_set=False))


def test_configured_hosts_give_empty_plans(fixtures_dir: Path) -> None:
    assert not plan_steps(SERVER, read(fixtures_dir, "read_server_configured.txt").config)
    assert not plan_steps(BRIDGE, read(fixtures_dir, "read_bridge_online.txt", "vpn-bridge").config)
    # A cascade that is set online but failing is not a config change (see stuck_cascades).
    retrying = read(fixtures_dir, "read_bridge_retrying.txt", "vpn-bridge")
    assert not plan_steps(BRIDGE, retrying.config)
    assert stuck_cascades(BRIDGE, retrying.facts.cascades) == ["BRIDGE/HYBRID"]
    online = read(fixtures_dir, "read_bridge_online.txt", "vpn-bridge")
    assert stuck_cascades(BRIDGE, online.facts.cascades) == []


def test_bridge_phases(fixtures_dir: Path) -> None:
    fresh = read(fixtures_dir, "read_bridge_fresh.txt", "vpn-bridge")
    plan = plan_steps(BRIDGE, fresh.config, admin_password_set=False)
    before = commands(plan.before_network)
    assert before[:4] == [
        "ServerPasswordSet",
        "BridgeCreate BRIDGE /DEVICE:vpntap /TAP:yes",
        "CascadeCreate HYBRID /SERVER:10.99.0.1:5555 /HUB:HYBRID /USERNAME:aws",
        "CascadePasswordSet HYBRID /TYPE:standard",
    ]
    assert not any("CascadeOnline" in c for c in before)
    assert [(s.command, s.kind) for s in plan.after_network] == [
        ("CascadeOnline HYBRID", "vpncmd"),
        ("restart", "restart"),
    ]
    assert plan.after_network[0].hub == "BRIDGE"
    offline = read(fixtures_dir, "read_bridge_offline.txt", "vpn-bridge")
    again = plan_steps(BRIDGE, offline.config)
    assert again.before_network == () and commands(again.after_network) == ["CascadeOnline HYBRID", "restart"]
    no_restart = plan_steps(BRIDGE, offline.config, restart_after_online=False)
    assert commands(no_restart.after_network) == ["CascadeOnline HYBRID"]
    runs = vpncmd_runs(plan.all_steps())
    assert [r[-1].kind for r in runs] == ["vpncmd", "restart"]


def test_cascade_wanted_offline_goes_offline_before_network(fixtures_dir: Path) -> None:
    online = read(fixtures_dir, "read_bridge_online.txt", "vpn-bridge")
    desired = dataclasses.replace(BRIDGE, cascades=(dataclasses.replace(BRIDGE.cascades[0], online=False),))
    plan = plan_steps(desired, online.config)
    assert commands(plan.before_network) == ["CascadeOffline HYBRID"] and not plan.after_network


def test_cascade_changes_keep_or_reset_password(fixtures_dir: Path) -> None:
    actual = read(fixtures_dir, "read_bridge_online.txt", "vpn-bridge").config
    c = BRIDGE.cascades[0]
    moved = dataclasses.replace(BRIDGE, cascades=(dataclasses.replace(c, server_host="203.0.113.5"),))
    assert commands(plan_steps(moved, actual).before_network) == [
        "CascadeSet HYBRID /SERVER:203.0.113.5:5555 /HUB:HYBRID"
    ]
    renamed = dataclasses.replace(BRIDGE, cascades=(dataclasses.replace(c, username="aws2"),))
    assert commands(plan_steps(renamed, actual).before_network) == [
        "CascadeUsernameSet HYBRID /USERNAME:aws2",
        "CascadePasswordSet HYBRID /TYPE:standard",
    ]
    rotated = plan_steps(BRIDGE, actual, rotate={"hub/HYBRID/aws"})
    assert [(s.command, s.secret) for s in rotated.before_network] == [
        ("CascadePasswordSet HYBRID /TYPE:standard", "hub/HYBRID/aws")
    ]


def test_l3_switch_is_stopped_to_edit_and_started_again(fixtures_dir: Path) -> None:
    actual = read(fixtures_dir, "read_server_configured.txt").config
    sw = SERVER.l3_switches[0]
    routes = (*sw.routes[:3], L3Route(IPv4Network("192.168.40.0/24"), IPv4Address("192.168.10.4"), 5))
    moved_if = (sw.interfaces[0], L3Interface("HYBRID", IPv4Interface("192.168.10.254/24")))
    desired = dataclasses.replace(SERVER, l3_switches=(dataclasses.replace(sw, interfaces=moved_if, routes=routes),))
    cmds = commands(plan_steps(desired, actual).before_network)
    assert cmds == [
        "RouterStop L3SW",
        "RouterTableDel L3SW /NETWORK:192.168.31.0/255.255.255.0 /GATEWAY:192.168.10.3 /METRIC:1",
        "RouterIfDel L3SW /HUB:HYBRID",
        "RouterIfAdd L3SW /HUB:HYBRID /IP:192.168.10.254/255.255.255.0",
        "RouterTableAdd L3SW /NETWORK:192.168.40.0/255.255.255.0 /GATEWAY:192.168.10.4 /METRIC:5",
        "RouterStart L3SW",
    ]
    assert not plan_steps(desired, converge(desired, actual))
    stopped = dataclasses.replace(SERVER, l3_switches=(dataclasses.replace(sw, active=False),))
    assert commands(plan_steps(stopped, actual).before_network) == ["RouterStop L3SW"]


def test_ownership_rules(fixtures_dir: Path) -> None:
    actual = read(fixtures_dir, "read_server_configured.txt").config
    human_hub = Hub("OFFICE", (HubUser("bob", ""),))
    actual = dataclasses.replace(
        actual,
        listeners=(443, 5555),
        hubs=(*actual.hubs, human_hub),
        local_bridges=(*actual.local_bridges, LocalBridge("OFFICE", "eth2"), LocalBridge("HYBRID", "eth3")),
        l3_switches=(*actual.l3_switches, L3Switch("OTHER")),
    )
    hubs = {h.name: h for h in actual.hubs}
    hubs["DEFAULT"] = Hub("DEFAULT", (*hubs["DEFAULT"].users, HubUser("mallory", "")))
    actual = dataclasses.replace(actual, hubs=tuple(hubs.values()))
    cmds = commands(plan_steps(SERVER, actual).before_network)
    # Our hubs are ours entirely; the port list is authoritative; a person's hub is left alone.
    assert cmds == ["UserDelete mallory", "BridgeDelete HYBRID /DEVICE:eth3", "ListenerDelete 443"]
    managed = commands(plan_steps(SERVER, actual, managed={"OFFICE", "OTHER"}).before_network)
    assert "HubDelete OFFICE" in managed and "RouterDelete OTHER" in managed
    assert "BridgeDelete OFFICE /DEVICE:eth2" in managed
    assert managed.index("BridgeDelete OFFICE /DEVICE:eth2") < managed.index("HubDelete OFFICE")
    assert commands(plan_steps(SERVER, actual, prune=True).before_network) == managed
    # The factory DEFAULT hub goes when the inventory does not want it.
    no_default = dataclasses.replace(
        SERVER,
        hubs=SERVER.hubs[1:],
        local_bridges=(),
        l3_switches=(dataclasses.replace(SERVER.l3_switches[0], interfaces=SERVER.l3_switches[0].interfaces[1:]),),
    )
    cmds = commands(plan_steps(no_default, read(fixtures_dir, "read_server_configured.txt").config).before_network)
    assert cmds[-1] == "HubDelete DEFAULT" and "BridgeDelete DEFAULT /DEVICE:eth1" in cmds


def test_users_secure_nat_and_rotation(fixtures_dir: Path) -> None:
    actual = read(fixtures_dir, "read_server_configured.txt").config
    hubs = (SERVER.hubs[0], Hub("HYBRID", (HubUser("aws", "hub/HYBRID/aws"),), secure_nat=True))
    plan = plan_steps(dataclasses.replace(SERVER, hubs=hubs), actual, rotate={"hub/DEFAULT/alice"})
    assert [(s.hub, s.command) for s in plan.before_network] == [
        ("DEFAULT", "UserPasswordSet alice"),
        ("HYBRID", "SecureNatEnable"),
        ("HYBRID", "UserDelete azure"),
    ]


def test_validation() -> None:
    with pytest.raises(InputError, match="not usable"):
        validate_config(dataclasses.replace(SERVER, hubs=(Hub("two words"),)))
    with pytest.raises(InputError, match="exactly one hub"):
        validate_config(dataclasses.replace(BRIDGE, hubs=(Hub("OTHER"),)))
    with pytest.raises(InputError, match="no user database"):
        validate_config(dataclasses.replace(BRIDGE, hubs=(Hub("BRIDGE", (HubUser("a", "s"),)),)))
    with pytest.raises(InputError, match="not in hubs"):
        validate_config(dataclasses.replace(SERVER, local_bridges=(LocalBridge("NOPE", "eth1"),)))
    with pytest.raises(InputError, match="tap_"):
        validate_config(dataclasses.replace(BRIDGE, local_bridges=(LocalBridge("BRIDGE", "waytoolongtap", True),)))
    with pytest.raises(InputError, match="no listener"):
        validate_config(dataclasses.replace(SERVER, listeners=()))
    with pytest.raises(InputError, match="role"):
        plan_steps(SERVER, as_actual(BRIDGE))


def test_admin_port_prefers_a_port_that_stays() -> None:
    assert admin_port(SERVER, dataclasses.replace(SERVER, listeners=(443, 992, 1194, 5555))) == 5555
    assert admin_port(dataclasses.replace(SERVER, listeners=(8443,)), SERVER) == 5555


# --- property: any actual state converges to any desired state in one plan ---------------------

HUBS = ["DEFAULT", "HYBRID", "LAB"]
USERS = ["u1", "u2", "u3"]
NETS = [IPv4Network(f"10.{i}.0.0/16") for i in range(4)]


@st.composite
def configs(draw: st.DrawFn) -> SoftEtherConfig:
    hub_names = draw(st.lists(st.sampled_from(HUBS), unique=True, min_size=1))
    hubs = tuple(
        Hub(h, tuple(HubUser(u, f"hub/{h}/{u}") for u in draw(st.lists(st.sampled_from(USERS), unique=True))),
            draw(st.booleans()))
        for h in sorted(hub_names)
    )
    if_hubs = draw(st.lists(st.sampled_from(hub_names), unique=True))
    ifs = tuple(L3Interface(h, IPv4Interface(f"192.168.{i + draw(st.integers(0, 1)) * 10}.1/24"))
                for i, h in enumerate(if_hubs))
    routes = tuple(L3Route(n, IPv4Address("192.168.0.9"), draw(st.integers(1, 2)))
                   for n in draw(st.lists(st.sampled_from(NETS), unique=True)))
    switches = (L3Switch("SW", ifs, routes, draw(st.booleans())),) if draw(st.booleans()) else ()
    bridges = tuple(LocalBridge(h, "eth1") for h in draw(st.lists(st.sampled_from(hub_names), unique=True,
                                                                    max_size=1)))
    cascades = tuple(
        Cascade("UP", h, draw(st.sampled_from(["a.example", "b.example"])), 5555, "HYBRID",
                draw(st.sampled_from(["x", "y"])), "c/secret", draw(st.booleans()))
        for h in draw(st.lists(st.sampled_from(hub_names), unique=True, max_size=2))
    )
    listeners = tuple(sorted(draw(st.sets(st.sampled_from([443, 992, 5555]), min_size=1))))
    return SoftEtherConfig("vpn-server", "admin", listeners, hubs, bridges, switches, cascades)


@settings(max_examples=300, deadline=None)
@given(desired=configs(), actual=configs())
def test_any_state_converges_in_one_plan_and_then_is_stable(
    desired: SoftEtherConfig, actual: SoftEtherConfig
) -> None:
    result = converge(desired, as_actual(actual), prune=True)
    assert not plan_steps(desired, result, prune=True)
    assert result.listeners == desired.listeners
    assert {h.name for h in result.hubs} == {h.name for h in desired.hubs}
    # Without prune, hubs nobody declared managed survive (DEFAULT is the factory hub).
    kept = converge(desired, as_actual(actual))
    survivors = {h.name for h in actual.hubs} - {h.name for h in desired.hubs} - {"DEFAULT"}
    assert survivors <= {h.name for h in kept.hubs}
