"""From (desired, actual) SoftEtherConfig to the ordered vpncmd steps that converge them.

:func:`plan_steps` is pure: equal configs give an empty plan. Steps never hold a password, only
the *name* of the secret that answers the prompt(s) of a command; :func:`render_invocations`
turns steps plus resolved secrets into vpncmd batches whose passwords travel on stdin.

Phases:

* ``before_network``: everything except bringing cascades online. Cascades are created offline
  (that is what ``CascadeCreate`` does) so the bridge does not join the overlay before the host
  has addressed its tap device.
* ``after_network``: ``CascadeOnline`` for cascades that should be online, then a ``restart``
  step (not a vpncmd command: the caller restarts the SoftEther service). The restart is needed
  with softether 5.01 build 9674 on OpenSSL 3: every admin connection (vpncmd itself!) and every
  failed connection leaves an error in the OpenSSL error queue of a pooled thread, and a cascade
  link running on such a thread is torn down at its first idle read ~256 ms after it connects,
  forever (upstream SoftEtherVPN issue #1995, fixed by PR #2006 after this build). A freshly
  started process brings its online cascades up on clean threads. The host layer must re-add
  the tap address after the restart: ``tap_<name>`` is re-created by each start.

Ownership: listeners are authoritative (the reference removes the default 443/992/1194). Users,
local bridges and cascades are removed only on hubs the desired config names (they are ours).
Hubs and L3 switches that are not desired are deleted only if listed in ``managed`` (what
hybridctl created earlier, recorded by the caller) or with ``prune=True``; the factory hub
``DEFAULT`` of a VPN Server counts as managed (the installer made it, not a person). A VPN
Bridge's ``BRIDGE`` hub cannot be deleted.

Editing a virtual L3 switch needs it stopped (vpncmd error 95 otherwise): a changed switch is
stopped, edited (routes removed before interfaces, interfaces added before routes) and started.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.softether.model import (
    Cascade,
    Hub,
    L3Interface,
    L3Route,
    L3Switch,
    SoftEtherConfig,
)

Phase = Literal["before_network", "after_network"]


class CascadeStateLike(Protocol):
    @property
    def error(self) -> str | None: ...

StepKind = Literal["vpncmd", "restart"]

# Placeholder secret name: the renderer makes up a random value (hub admin passwords nobody
# needs: a random one locks hub-admin mode while server-admin mode keeps working).
RANDOM_SECRET = "@random"

FACTORY_HUBS = {"vpn-server": frozenset({"DEFAULT"}), "vpn-bridge": frozenset()}
BRIDGE_HUB = "BRIDGE"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_TAP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,10}$")  # tap_<name> must fit IFNAMSIZ
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$")


@dataclass(frozen=True)
class Step:
    """One vpncmd command line (or a service restart) and why it is there.

    ``hub`` is the hub the command must run in (the renderer selects it); ``secret`` names the
    secret answering the command's ``prompts`` password prompts.
    """

    command: str
    hub: str | None = None
    secret: str | None = None
    prompts: int = 0
    kind: StepKind = "vpncmd"
    why: str = ""

    def describe(self) -> str:
        where = f"[{self.hub}] " if self.hub else ""
        pw = f" (password from secret {self.secret})" if self.secret and self.secret != RANDOM_SECRET else ""
        return f"{where}{self.command}{pw}"


@dataclass(frozen=True)
class StepPlan:
    before_network: tuple[Step, ...] = ()
    after_network: tuple[Step, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.before_network or self.after_network)

    def all_steps(self) -> tuple[Step, ...]:
        return self.before_network + self.after_network


def _problem(field_: str, message: str, fix: str) -> Problem:
    return Problem("<softether config>", field_, message, fix)


def validate_config(config: SoftEtherConfig) -> None:
    """Reject names vpncmd would split, quote or silently truncate, and role mismatches."""
    problems: list[Problem] = []

    def name(kind: str, value: str, rx: re.Pattern[str] = _NAME_RE, fix: str = "use letters, digits, '-', '_'") -> None:
        if not rx.match(value):
            problems.append(_problem(kind, f"{value!r} is not usable in a vpncmd command", fix))

    for hub in config.hubs:
        name("hub", hub.name)
        for user in hub.users:
            name("user", user.name)
    for lb in config.local_bridges:
        name("local_bridge.hub", lb.hub)
        if lb.tap:
            name("local_bridge.device", lb.device, _TAP_RE, "at most 11 characters: Linux names it tap_<name>")
        else:
            name("local_bridge.device", lb.device, _DEVICE_RE, "a Linux interface name (at most 15 characters)")
    for sw in config.l3_switches:
        name("l3_switch", sw.name)
        for itf in sw.interfaces:
            name("l3_switch.interface.hub", itf.hub)
    for c in config.cascades:
        name("cascade", c.name)
        name("cascade.hub", c.hub)
        name("cascade.remote_hub", c.remote_hub)
        name("cascade.username", c.username)
        name("cascade.server_host", c.server_host, _HOST_RE)
        if not 1 <= c.server_port <= 65535:
            problems.append(_problem("cascade.server_port", f"{c.server_port} is not a TCP port", "1-65535"))
    for port in config.listeners:
        if not 1 <= port <= 65535:
            problems.append(_problem("listeners", f"{port} is not a TCP port", "1-65535"))
    if not config.listeners:
        problems.append(_problem("listeners", "no listener: nobody could reach the server", "keep one port"))
    if config.role == "vpn-bridge":
        if [h.name for h in config.hubs] not in ([], [BRIDGE_HUB]):
            problems.append(
                _problem("hubs", "a VPN Bridge has exactly one hub, BRIDGE", "use hub BRIDGE on bridges")
            )
        if any(h.users for h in config.hubs):
            problems.append(_problem("hubs.users", "a VPN Bridge has no user database", "drop the users"))
        if config.l3_switches:
            problems.append(_problem("l3_switches", "a VPN Bridge has no L3 switch", "drop the L3 switch"))
    hubs = {h.name for h in config.hubs} | ({BRIDGE_HUB} if config.role == "vpn-bridge" else set())
    for lb in config.local_bridges:
        if lb.hub not in hubs:
            problems.append(_problem("local_bridges", f"hub {lb.hub} is not in hubs", "declare the hub"))
    for c in config.cascades:
        if c.hub not in hubs:
            problems.append(_problem("cascades", f"hub {c.hub} is not in hubs", "declare the hub"))
    for sw in config.l3_switches:
        for itf in sw.interfaces:
            if itf.hub not in hubs:
                problems.append(_problem("l3_switches", f"hub {itf.hub} is not in hubs", "declare the hub"))
    if problems:
        raise InputError(problems)


def _mask(itf: L3Interface) -> str:
    return f"{itf.address.ip}/{itf.address.network.netmask}"


def _route_args(route: L3Route) -> str:
    net = route.network
    return f"/NETWORK:{net.network_address}/{net.netmask} /GATEWAY:{route.gateway} /METRIC:{route.metric}"


def _users_steps(want: Hub, have: Hub | None, rotate: Collection[str]) -> Iterator[Step]:
    have_users = {u.name for u in have.users} if have else set()
    want_users = {u.name: u for u in want.users}
    for uname in sorted(have_users - set(want_users)):
        yield Step(f"UserDelete {uname}", want.name, why="user not in the inventory")
    for uname, user in sorted(want_users.items()):
        if uname not in have_users:
            yield Step(f"UserCreate {uname} /GROUP:none /REALNAME:none /NOTE:none", want.name, why="new user")
            yield Step(f"UserPasswordSet {uname}", want.name, user.password_secret, 2, why="new user's password")
        elif user.password_secret in rotate:
            yield Step(f"UserPasswordSet {uname}", want.name, user.password_secret, 2, why="password rotation")


def _switch_steps(want: L3Switch, have: L3Switch | None) -> Iterator[Step]:
    if have is None:
        yield Step(f"RouterAdd {want.name}", why="new L3 switch")
        have = L3Switch(want.name, active=False)
    add_ifs = sorted(set(want.interfaces) - set(have.interfaces))
    del_ifs = sorted(set(have.interfaces) - set(want.interfaces))
    add_rts = sorted(set(want.routes) - set(have.routes))
    del_rts = sorted(set(have.routes) - set(want.routes))
    edit = bool(add_ifs or del_ifs or add_rts or del_rts)
    running = have.active
    if edit and running:
        yield Step(f"RouterStop {want.name}", why="an L3 switch must be stopped to be edited")
        running = False
    for rt in del_rts:
        yield Step(f"RouterTableDel {want.name} {_route_args(rt)}", why="route not wanted")
    # One interface per hub: an interface whose address changes is deleted by hub, then re-added.
    for itf in del_ifs:
        yield Step(f"RouterIfDel {want.name} /HUB:{itf.hub}", why="interface not wanted")
    for itf in add_ifs:
        yield Step(f"RouterIfAdd {want.name} /HUB:{itf.hub} /IP:{_mask(itf)}", why="interface")
    for rt in add_rts:
        yield Step(f"RouterTableAdd {want.name} {_route_args(rt)}", why="route")
    if want.active and not running:
        yield Step(f"RouterStart {want.name}", why="the L3 switch runs")
    elif not want.active and running:
        yield Step(f"RouterStop {want.name}", why="the L3 switch is meant to be stopped")


def _cascade_steps(want: Cascade, have: Cascade | None, rotate: Collection[str]) -> Iterator[Step]:
    server = f"/SERVER:{want.server_host}:{want.server_port} /HUB:{want.remote_hub}"
    if have is None:
        yield Step(
            f"CascadeCreate {want.name} {server} /USERNAME:{want.username}", want.hub, why="new cascade (offline)"
        )
        yield Step(f"CascadePasswordSet {want.name} /TYPE:standard", want.hub, want.password_secret, 2,
                   why="cascade password")
        return
    if (have.server_host, have.server_port, have.remote_hub) != (want.server_host, want.server_port, want.remote_hub):
        yield Step(f"CascadeSet {want.name} {server}", want.hub, why="cascade destination changed")
    if have.username != want.username:
        yield Step(f"CascadeUsernameSet {want.name} /USERNAME:{want.username}", want.hub, why="cascade user changed")
    if have.username != want.username or want.password_secret in rotate:
        yield Step(f"CascadePasswordSet {want.name} /TYPE:standard", want.hub, want.password_secret, 2,
                   why="cascade password")


def plan_steps(
    desired: SoftEtherConfig,
    actual: SoftEtherConfig,
    *,
    admin_password_set: bool = True,
    managed: Collection[str] = (),
    prune: bool = False,
    rotate: Collection[str] = (),
    restart_after_online: bool = True,
) -> StepPlan:
    """The vpncmd steps that turn ``actual`` into ``desired`` (nothing more).

    ``admin_password_set`` comes from :class:`~hybridctl.core.softether.parse.SoftEtherFacts`
    (``ServerPasswordSet`` runs only on a server that has none). ``managed`` names hubs and L3
    switches hybridctl may delete although they are not desired; ``rotate`` names secrets whose
    value changed and must be pushed again (passwords cannot be read back, so they are otherwise
    only set when their user/cascade is created).
    """
    validate_config(desired)
    if desired.role != actual.role:
        raise InputError(
            [_problem("role", f"the host runs a {actual.role}, the inventory wants a {desired.role}",
                      "install the matching SoftEther package")]
        )
    managed_names = set(managed) | FACTORY_HUBS[desired.role]
    before: list[Step] = []
    after: list[Step] = []

    if not admin_password_set:
        before.append(Step("ServerPasswordSet", None, desired.admin_password_secret, 2, why="first admin password"))

    want_ports = set(desired.listeners)
    have_ports = set(actual.listeners)
    for port in sorted(want_ports - have_ports):
        before.append(Step(f"ListenerCreate {port}", why="listener"))

    have_cascades = {(c.hub, c.name): c for c in actual.cascades}
    want_cascades = {(c.hub, c.name): c for c in desired.cascades}
    for key, want_c in sorted(want_cascades.items()):
        have_c = have_cascades.get(key)
        if have_c is not None and have_c.online and not want_c.online:
            before.append(Step(f"CascadeOffline {want_c.name}", want_c.hub, why="cascade meant to be offline"))

    have_hubs = {h.name: h for h in actual.hubs}
    want_hubs = {h.name: h for h in desired.hubs}
    for hname in sorted(set(want_hubs) - set(have_hubs)):
        before.append(Step(f"HubCreate {hname}", None, RANDOM_SECRET, 2,
                           why="new hub; a random hub password locks hub-admin mode"))
    for hname, want_h in sorted(want_hubs.items()):
        have_h = have_hubs.get(hname)
        if want_h.secure_nat != (have_h.secure_nat if have_h else False):
            verb = "SecureNatEnable" if want_h.secure_nat else "SecureNatDisable"
            before.append(Step(verb, hname, why="SecureNAT"))
        if desired.role == "vpn-server":
            before.extend(_users_steps(want_h, have_h, rotate))

    our_hubs = set(want_hubs) | ({BRIDGE_HUB} if desired.role == "vpn-bridge" else set())
    deletable_hubs = {
        name for name in have_hubs
        if name not in want_hubs and (prune or name in managed_names) and name != BRIDGE_HUB
    }
    want_lbs = set(desired.local_bridges)
    for lb in sorted(set(actual.local_bridges) - want_lbs):
        if lb.hub in our_hubs or lb.hub in deletable_hubs:
            before.append(Step(f"BridgeDelete {lb.hub} /DEVICE:{lb.device}", why="local bridge not wanted"))
    for lb in sorted(want_lbs - set(actual.local_bridges)):
        before.append(Step(f"BridgeCreate {lb.hub} /DEVICE:{lb.device} /TAP:{'yes' if lb.tap else 'no'}",
                           why="local bridge" + (f" (creates tap_{lb.device})" if lb.tap else "")))

    have_sw = {s.name: s for s in actual.l3_switches}
    want_sw = {s.name: s for s in desired.l3_switches}
    for sname in sorted(set(have_sw) - set(want_sw)):
        if prune or sname in managed_names:
            before.append(Step(f"RouterDelete {sname}", why="L3 switch not wanted"))
    for sname, want_s in sorted(want_sw.items()):
        before.extend(_switch_steps(want_s, have_sw.get(sname)))

    for key, have_c in sorted(have_cascades.items()):
        if key not in want_cascades and (have_c.hub in our_hubs):
            before.append(Step(f"CascadeDelete {have_c.name}", have_c.hub, why="cascade not wanted"))
    for key, want_c in sorted(want_cascades.items()):
        before.extend(_cascade_steps(want_c, have_cascades.get(key), rotate))

    for hname in sorted(deletable_hubs):
        before.append(Step(f"HubDelete {hname}", why="hub not wanted"))
    for port in sorted(have_ports - want_ports):
        before.append(Step(f"ListenerDelete {port}", why="only the inventory's ports listen"))

    online_now = False
    for key, want_c in sorted(want_cascades.items()):
        have_c = have_cascades.get(key)
        if want_c.online and (have_c is None or not have_c.online):
            after.append(Step(f"CascadeOnline {want_c.name}", want_c.hub, why="cascade online once the tap is up"))
            online_now = True
    if online_now and restart_after_online:
        after.append(Step("restart", kind="restart",
                          why="start the cascade on clean threads (softether 5.01/OpenSSL 3 bug); "
                              "re-address the tap afterwards"))
    return StepPlan(tuple(before), tuple(after))


def vpncmd_runs(steps: tuple[Step, ...]) -> list[tuple[Step, ...]]:
    """Split steps at ``restart`` steps: each run is one or more vpncmd batches."""
    runs: list[tuple[Step, ...]] = []
    current: list[Step] = []
    for step in steps:
        if step.kind == "restart":
            if current:
                runs.append(tuple(current))
            runs.append((step,))
            current = []
        else:
            current.append(step)
    if current:
        runs.append(tuple(current))
    return runs


def admin_port(desired: SoftEtherConfig, actual: SoftEtherConfig) -> int:
    """The port to administer through: one that listens now and stays (deleted ports go last)."""
    for port in desired.listeners:
        if port in actual.listeners:
            return port
    return actual.listeners[0] if actual.listeners else desired.listeners[0]


def stuck_cascades(desired: SoftEtherConfig, cascade_states: Mapping[tuple[str, str], CascadeStateLike]) -> list[str]:
    """Cascades meant to be online whose link reports an error (e.g. "Error 13: Time-out ...").

    With softether 5.01 / OpenSSL 3 a link that failed once keeps failing (its thread's OpenSSL
    error queue is poisoned) until the service restarts; callers restart after a grace period.
    """
    out = []
    for c in desired.cascades:
        state = cascade_states.get((c.hub, c.name))
        if c.online and state is not None and state.error is not None:
            out.append(f"{c.hub}/{c.name}")
    return out
