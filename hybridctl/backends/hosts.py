"""The SSH host backend: SoftEther server and bridges, and on-prem LAN clients, over paramiko.

Layers: host-package, host-file, host-service, softether, host-address, host-route,
client-route, and the flag ``net.ipv4.ip_forward``. docs/hosts.md has the whole story.

* One verified SSH connection per host (hybridctl/backends/ssh.py), all hosts in parallel.
* read: ONE exec per host running the read script (hostscript.render_read): packages, managed
  files' sha256, the service, ip_forward, ``ip -j`` addresses and routes, and — when SoftEther
  runs — the vpncmd read batch with the admin password on stdin. A host that cannot be
  connected to or read goes to ``ReadResult.unreachable``; the engine plans nothing against it.
* apply: per host ONE exec for its changes, in order package -> files -> ip_forward live ->
  service -> vpncmd (before network) -> addresses + routes (overlay script) -> [CascadeOnline ->
  restart (the cascade bug, docs/softether.md) -> overlay script again] -> removals. More execs
  only where unavoidable: a bridge whose cascade goes online waits (second exec) until the VPN
  server's own apply finished in this run; a stopped SoftEther with an existing config must be
  started and read before it can be planned. Hosts without changes get no exec at all.
* Secrets: only on stdin (hostscript's bootstrap); never in argv, outputs, errors or logs.
* Root: every script runs under one sudo when the login user is not root (ssh.py run_script).
* Counting: every exec is counted in ``counter`` (read vs mutate).
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from hybridctl.backends import distros
from hybridctl.backends import hoststate as hs
from hybridctl.backends.base import NoProgress, Outcome, Progress, ReadResult
from hybridctl.backends.calls import CallCounter
from hybridctl.backends.hostscript import (
    PING_TRIES,
    SOFTETHER_CONFIG,
    SOFTETHER_STATE,
    ApplyScript,
    RawRead,
    ReadRequest,
    ScriptOutputError,
    ServiceRef,
    output_tail,
    parse_apply,
    parse_read,
    put_file,
    remove_file,
    render_read,
    split_read_after,
)
from hybridctl.backends.journal import Journal
from hybridctl.backends.ssh import SshSession, connect_one
from hybridctl.backends.timeline import Timeline
from hybridctl.core.diff import Change
from hybridctl.core.errors import HybridctlError, RemoteError
from hybridctl.core.hostfiles import OVERLAY_UNIT, SOFTETHER_BINARIES
from hybridctl.core.planner.desired import (
    ClientRoutes,
    DesiredState,
    FileItem,
    Flag,
    HostPlan,
    PackageItem,
    Resource,
    SoftEtherItem,
)
from hybridctl.core.secrets import SecretRef, SecretStore
from hybridctl.core.softether import parse as se_parse
from hybridctl.core.softether.commands import RANDOM_SECRET, Step, admin_port, plan_steps
from hybridctl.core.softether.model import SoftEtherConfig
from hybridctl.core.softether.vpncmd import (
    VpncmdInvocation,
    check_transcript,
    parse_transcript,
    random_password,
    read_invocation,
)
from hybridctl.core.softether.vpncmd import render_invocations as render_vpncmd

if TYPE_CHECKING:
    from hybridctl.backends.context import Context

LISTENER_DELETE = "ListenerDelete"
READ_TIMEOUT_S = 180.0
APPLY_TIMEOUT_S = 900.0
SERVER_WAIT_S = 900.0
# LAN clients start their apply once every gateway's first exec is on its way (or after this):
# the gateways are the run's critical path, and 40+ client threads rendering and starting their
# scripts at the same moment held the VPN server's first exec back by 0.65 s (8 sites).
GATEWAYS_HEAD_START_S = 2.0
# After a reconnect in this run, how long a read waits for a cascade still "connecting" (one
# read exec per second) before reporting it: SoftEther links 0.2-1.3 s after a start; a network
# that just came back may need its first retransmissions.
CASCADE_SETTLE_S = 20.0
CONFIG_LAYER = "softether-config"  # journal: did a SoftEther config exist before hybridctl?


@dataclass
class _HostState:
    """One host as last read."""

    plan: HostPlan
    raw: RawRead
    softether: se_parse.ReadResult | None
    resources: list[Resource]


@dataclass
class _Run:
    """Progress of one host's apply: which step groups completed or failed."""

    host: str
    planned: dict[str, int] = field(default_factory=dict)  # group -> steps planned
    completed: dict[str, int] = field(default_factory=dict)  # group -> steps completed
    failed: dict[str, str] = field(default_factory=dict)  # group -> error
    stopped: str = ""  # why the run stopped early

    def plan(self, script: ApplyScript) -> None:
        for step in script.steps:
            self.planned[step.group] = self.planned.get(step.group, 0) + 1

    def done(self, group: str) -> None:
        self.completed[group] = self.completed.get(group, 0) + 1

    def fail(self, group: str, error: str) -> None:
        self.failed.setdefault(group, error)
        self.stopped = self.stopped or error

    def ok(self, group: str) -> bool:
        if group in self.failed:
            return False
        if self.planned.get(group, 0):
            return self.completed.get(group, 0) >= self.planned[group]
        return not self.stopped

    def error(self, group: str) -> str:
        if group in self.failed:
            return self.failed[group]
        return f"not done: {self.stopped}" if self.stopped else "not done"


def _batch_detail(commands: Sequence[str]) -> str:
    """A vpncmd batch for the timeline: how many commands, which (hub selections left out)."""
    real = [c.split(" ", 1)[0] for c in commands if c != "Hub" and not c.startswith("Hub ")]
    return f"{len(real)} commands: " + " ".join(real)


def _listener_removals(steps: Sequence[Step]) -> list[Step]:
    return [s for s in steps if s.command.split(" ", 1)[0] == LISTENER_DELETE]


def _drop_at_restart(steps: list[Step], admin_port: int, dropped: list[int]) -> list[Step]:
    """``steps`` without their listener removals, whose ports go to ``dropped`` (the restart
    removes them from the saved configuration), unless vpncmd administers through one of them."""
    removals = _listener_removals(steps)
    if not removals or f"{LISTENER_DELETE} {admin_port}" in {s.command for s in removals}:
        return steps
    dropped.extend(int(s.command.split(" ", 1)[1]) for s in removals)
    return [s for s in steps if s not in removals]


def _package(change: Change) -> str:
    item = change.subject
    if not isinstance(item, PackageItem):
        raise RemoteError(" ".join(change.key), f"not a package item: {item!r}")
    return item.package


def _path(change: Change) -> str:
    item = change.subject
    if not isinstance(item, FileItem):
        raise RemoteError(" ".join(change.key), f"not a host file item: {item!r}")
    return item.path


def _group(change: Change) -> str:
    delete = change.action == "delete"
    if change.layer == "host-package":
        return "package-remove" if delete else "package"
    if change.layer == "host-file":
        return "files-remove" if delete else "files"
    if change.layer == "flag":
        return "ip-forward"
    if change.layer == "host-service":
        return "service-stop" if delete else "service"
    if change.layer == "softether":
        return "softether"
    return "network"


class HostsBackend:
    """:class:`~hybridctl.backends.base.Backend` for every host of the plan that has ``ssh``."""

    name = "hosts"

    def __init__(
        self,
        desired: DesiredState,
        journal: Journal,
        secrets: SecretStore,
        *,
        accept_new_host_keys: bool = False,
        purge: bool = False,
        timeline: Timeline | None = None,
    ) -> None:
        self.desired = desired
        self.journal = journal
        self.secrets = secrets
        self.accept_new_host_keys = accept_new_host_keys
        self.purge = purge
        self.counter = CallCounter()
        self._plans: dict[str, HostPlan] = {h.name: h for h in desired.hosts if h.managed}
        self._clients: dict[str, ClientRoutes] = {c.client: c for c in desired.clients if c.managed}
        self._refs: dict[str, SecretRef] = {r.name: r for r in desired.secrets}
        self._sessions: dict[str, SshSession] = {}
        self._connect_errors: dict[str, str] = {}
        # Connections start() began, by host; each gives "" or why it failed.
        self._connecting: dict[str, Future[str]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._state: dict[str, _HostState] = {}
        self._unsupported: dict[str, str] = {}  # host -> why its distribution is not supported
        self._reconnected: set[str] = set()  # hosts whose SoftEther restarted in this run
        self._lock = threading.Lock()
        self._server_done = threading.Event()
        self._server_done.set()
        self._gateways_pending: set[str] = set()  # gateways whose first apply exec has not started
        self._gateways_started = threading.Event()
        self._gateways_started.set()
        self._cascades_wait = False
        self._applied: set[str] = set()  # hosts with changes in this run's apply
        self._read_errors: dict[str, str] = {}  # host -> why its last read failed
        # The verification read each applied host printed at the end of its last apply exec.
        self._read_after: dict[str, RawRead] = {}
        # Where each host's time went (connect, read, every apply step, waits, verify): data for
        # `up --timings` and `up -o json`. Reads after an apply in this run are the verification.
        self.timeline = timeline if timeline is not None else Timeline()
        self._phase = "read"
        # Optional observer of every exec's output (host, "read" | "apply", stdout): the fixture
        # capture script records real outputs with it. Outputs never hold a secret.
        self.recorder: Callable[[str, str, str], None] | None = None

    # -- Backend ---------------------------------------------------------------------------------

    def owns(self, thing: Resource | Change) -> bool:
        if thing.layer != "flag" and thing.layer not in hs.HOST_LAYERS:
            return False
        return hs.host_of(thing) in self._plans

    def start(self) -> None:
        """Connect to every host now, in the background, while the engine builds the other
        backends: the connections (handshakes, a jump host's, a ProxyCommand's start) are the
        longest part of every command's read and mostly wait on the network. ``read`` takes
        each host's connection (or its error) as it comes."""
        names = [n for n, p in self._plans.items() if p.ssh is not None and n not in self._sessions]
        if not names or self._connecting:
            return
        self._pool = ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="hybridctl-connect")
        self._connecting = {name: self._pool.submit(self._connect, name) for name in names}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)  # a connection still coming is closed below
            self._pool = None
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()

    def read(self, desired: DesiredState) -> ReadResult:
        result = ReadResult()
        names = [n for n, p in self._plans.items() if p.ssh is not None and n not in self._connect_errors]
        if names:
            # Each host is read as soon as its own connection is up (a jump host's, the slowest,
            # no longer holds back every other host's read).
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                for name, state, error in pool.map(self._connect_and_read, names):
                    if state is not None:
                        result.resources.extend(state.resources)
                    elif name not in self._connect_errors:
                        result.unreachable[name] = error
        result.unreachable.update(self._connect_errors)
        with self._lock:
            result.blocking.update({n: why for n, why in self._unsupported.items() if n in names})
        if self._phase == "verify":
            self._phase = "read"  # the verification is done: a later read reads every host again
        return result

    def apply(self, changes: Sequence[Change], desired: DesiredState, progress: Progress) -> list[Outcome]:
        progress = progress or NoProgress()
        by_host: dict[str, list[Change]] = {}
        for change in changes:
            host = hs.host_of(change)
            if change.action == "conflict" or host is None or not self.owns(change):
                continue
            by_host.setdefault(host, []).append(change)
        if not by_host:
            return []
        self._phase = "apply"
        with self._lock:
            self._applied = set(by_host)
            self._read_after.clear()
        servers = [n for n in by_host if self._plans[n].role == "vpn-server"]
        if servers:
            self._server_done.clear()
        # Whether a bridge's cascade goes online in this run, waiting for the server's apply.
        self._cascades_wait = bool(servers) and any(
            self._plans[n].role == "vpn-bridge" and self._plans[n].softether is not None for n in by_host
        )
        outcomes: list[Outcome] = []
        gateways = {n for n in by_host if self._plans[n].softether is not None}
        with self._lock:
            self._gateways_pending = set(gateways)
        if gateways and len(gateways) < len(by_host):
            self._gateways_started.clear()

        def one(name: str) -> list[Outcome]:
            try:
                if name not in gateways:
                    self._gateways_started.wait(GATEWAYS_HEAD_START_S)
                return self._apply_host(name, by_host[name], progress)
            finally:
                self._first_exec_started(name)
                if name in servers:
                    self._server_done.set()

        # Gateways first in line: their threads start before the clients'.
        order = sorted(by_host, key=lambda n: n not in gateways)
        with ThreadPoolExecutor(max_workers=len(by_host)) as pool:
            for chunk in pool.map(one, order):
                outcomes.extend(chunk)
        self._server_done.set()
        self._gateways_started.set()
        self._phase = "verify"
        return outcomes

    def down_keep(self, actual: ReadResult) -> list[Resource]:
        """SoftEther items `down` must leave alone: on hosts whose configuration existed before
        hybridctl (or whose history is unknown), everything hybridctl did not create."""
        keep = []
        for resource in actual.resources:
            item = resource.item
            if not isinstance(item, SoftEtherItem) or item.host not in self._plans:
                continue
            if self.journal.original(CONFIG_LAYER, (item.host,)) == "absent":
                continue  # hybridctl made the whole configuration: `down` removes it
            # The admin password stays even if hybridctl set it: unsetting it would open the
            # server to anybody on the host.
            if item.kind == "admin-password" or not self.journal.was_created("softether", resource.key):
                keep.append(resource)
        return keep

    # -- connecting and reading ------------------------------------------------------------------

    def _connect(self, name: str) -> str:
        """Connect to one host (once per run: the session is kept); why not, or ""."""
        if name in self._sessions:
            return ""
        endpoint = self._plans[name].ssh
        assert endpoint is not None  # only hosts with ssh are connected to
        session, error = connect_one(name, endpoint, accept_new_host_keys=self.accept_new_host_keys)
        if session is None:
            with self._lock:
                self._connect_errors[name] = error
            return error
        self.timeline.add(
            name, "connect", "connect", self.timeline.since(session.connect_started), session.connect_seconds
        )
        with self._lock:
            self._sessions[name] = session
        return ""

    def _connect_and_read(self, name: str) -> tuple[str, _HostState | None, str]:
        """Connect to one host (or take the connection :meth:`start` made), then read it."""
        with self._lock:
            connecting = self._connecting.pop(name, None)
        error = connecting.result() if connecting is not None else self._connect(name)
        if error:
            return name, None, error
        return self._read_safely(name)

    def _read_safely(self, name: str) -> tuple[str, _HostState | None, str]:
        if self._phase == "verify" and name not in self._applied:
            # Nothing was applied to this host in this run: its last read, or why it failed, stands.
            with self._lock:
                failed, known = self._read_errors.get(name), self._state.get(name)
            if failed is not None:
                return name, None, failed
            if known is not None:
                return name, known, ""
        try:
            state = self._read_host(name)
            with self._lock:
                self._read_errors.pop(name, None)
            return name, state, ""
        except HybridctlError as error:
            message = str(error)
        except Exception as error:  # one host's surprise must not stop the others
            message = f"{name}: reading failed unexpectedly: {error!r}"
        with self._lock:
            self._read_errors[name] = message
        return name, None, message

    def _service(self, plan: HostPlan) -> ServiceRef | None:
        if plan.service is None:
            return None
        return ServiceRef(plan.service, SOFTETHER_BINARIES[plan.role], plan.service)

    def _ports(self, plan: HostPlan) -> tuple[int, ...]:
        planned = plan.softether.listeners if plan.softether is not None else ()
        return tuple(dict.fromkeys([*planned, *hs.FACTORY_LISTENERS]))

    def _ref(self, name: str) -> SecretRef:
        return self._refs.get(name, SecretRef(name))

    def _admin_password_for_read(self, config: SoftEtherConfig) -> str:
        ref = self._ref(config.admin_password_secret)
        # A read never creates a secret: a fresh server does not ask, a server whose password we
        # do not know refuses any value (and says so).
        return self.secrets.resolve(ref) if self.secrets.known(ref) else random_password()

    def _read_request(self, name: str) -> ReadRequest:
        plan = self._plans[name]
        invocation = None
        if plan.softether is not None:
            invocation = read_invocation(
                se_parse.read_commands(plan.softether.role, plan.softether),
                self._admin_password_for_read(plan.softether),
            )
        return ReadRequest(
            paths=hs.managed_paths(),
            packages=(plan.service,) if plan.service else (),
            service=self._service(plan),
            vpncmd=invocation,
            vpncmd_ports=self._ports(plan),
            addresses=bool(plan.addresses),
        )

    def _read_host(self, name: str) -> _HostState:
        plan = self._plans[name]
        session = self._sessions[name]
        after = None
        if self._phase == "verify":
            with self._lock:
                after = self._read_after.pop(name, None)
        wire = render_read(self._read_request(name))
        deadline = time.monotonic() + CASCADE_SETTLE_S
        while True:
            # The verification read of a host that was applied to came back with its apply exec.
            raw = after if after is not None else self._read_once(name, session, wire.script, wire.secrets)
            after = None
            if name not in self._reconnected or plan.softether is None or raw.vpncmd_port is None:
                break
            facts = se_parse.parse_read(raw.vpncmd_output, plan.softether.role, target=name).facts
            settling = [
                c for c in plan.softether.cascades
                if c.online and hs.cascade_settling(getattr(facts.cascade(c.hub, c.name), "status", None))
            ]
            if not settling or time.monotonic() >= deadline:
                break
            with self.timeline.span(name, self._phase, "wait-cascade"):
                time.sleep(1.0)  # the session is on its way: wait for it rather than report it down
        verdict = distros.check(distros.parse_os_release(raw.os_release))
        with self._lock:
            if verdict.ok:
                self._unsupported.pop(name, None)
            else:
                self._unsupported[name] = verdict.error
        softether = None
        if plan.softether is not None and raw.vpncmd_port is not None:
            softether = se_parse.parse_read(raw.vpncmd_output, plan.softether.role, target=name)
        state = _HostState(plan, raw, softether, self._resources(plan, raw, softether))
        with self._lock:
            self._state[name] = state
        return state

    def _read_once(
        self, name: str, session: SshSession, script: str, secrets: bytes, phase: str | None = None
    ) -> RawRead:
        self.counter.read()
        phase = phase or self._phase
        start = self.timeline.now()
        try:
            result = session.run_script(script, secrets, timeout=READ_TIMEOUT_S)
        finally:
            self.timeline.add(name, phase, "read", start, self.timeline.now() - start)
        if self.recorder is not None:
            self.recorder(name, "read", result.stdout)
        try:
            raw = parse_read(result.stdout)
        except ScriptOutputError as error:
            raise RemoteError(
                name, f"read failed (exit {result.rc}): {error}: {output_tail(result.stdout + result.stderr)}"
            ) from None
        if raw.clock is not None and raw.vpncmd_clock is not None:
            self.timeline.add_remote(name, phase, start, raw.clock[0], [("vpncmd-read", *raw.vpncmd_clock)])
        return raw

    def _resources(self, plan: HostPlan, raw: RawRead, softether: se_parse.ReadResult | None) -> list[Resource]:
        key = (plan.name, plan.service or "")
        own = hs.Ownership(
            service_started=bool(plan.service) and self.journal.was_created("host-service", key),
            package_installed=bool(plan.service) and self.journal.was_created("host-package", key),
            purge=self.purge,
        )
        return hs.host_resources(plan, raw, softether, self._clients.get(plan.name), own, self.journal.was_created)

    # -- applying --------------------------------------------------------------------------------

    def _apply_host(self, name: str, changes: list[Change], progress: Progress) -> list[Outcome]:
        run = _Run(name)
        if name not in self._state or name not in self._sessions:
            return [Outcome(name, c, False, "the host was not read in this run") for c in changes]
        progress.step(name, f"applying {len(changes)} changes")
        try:
            self._converge(name, hs.HostChanges.of(changes), run, progress)
        except HybridctlError as error:
            run.stopped = run.stopped or str(error)
            for change in changes:
                group = _group(change)
                if not run.ok(group):
                    run.failed.setdefault(group, str(error))
        except ValueError as error:  # a secret vpncmd cannot type, a name the shell must not see
            run.stopped = run.stopped or f"{name}: {error}"
        except Exception as error:  # one host's surprise must not stop the others
            run.stopped = run.stopped or f"{name}: applying failed unexpectedly: {error!r}"
        outcomes = [
            Outcome(name, c, run.ok(_group(c)), "" if run.ok(_group(c)) else run.error(_group(c))) for c in changes
        ]
        self._journal_outcomes(name, outcomes)
        failed = [o for o in outcomes if not o.ok]
        progress.step(name, f"failed: {failed[0].error}" if failed else "done")
        return outcomes

    def _exec(
        self, name: str, script: ApplyScript, run: _Run, progress: Progress, *, last: bool = False
    ) -> bool:
        """Run one apply script; record its steps in ``run``. False when the host run must stop.

        ``last``: the host's last apply exec in this run; it ends with the verification read.
        """
        if not script:
            if last:
                self._verify_now(name)
            return True
        run.plan(script)
        progress.step(name, "running " + ", ".join(dict.fromkeys(step.name for step in script.steps)))
        # Rendered now: the read's admin password may be the one this very script sets.
        wire = script.render(read_after=self._read_request(name) if last else None)
        self.counter.mutate()
        self._first_exec_started(name)
        start = self.timeline.now()
        try:
            result = self._sessions[name].run_script(wire.script, wire.secrets, timeout=APPLY_TIMEOUT_S)
        finally:
            self.timeline.add(name, "apply", "exec", start, self.timeline.now() - start,
                              ", ".join(step.name for step in script.steps))
        applied, read_text = split_read_after(result.stdout)
        if self.recorder is not None:
            self.recorder(name, "apply", applied)
            if read_text is not None:
                self.recorder(name, "read", read_text)
        parsed = parse_apply(applied)
        if read_text is not None and parsed.finished:
            self._keep_read_after(name, start, parsed.started, read_text)
        batches = {f"vpncmd-{i}": _batch_detail(inv.commands) for i, inv in script.vpncmd.items()}
        self.timeline.add_remote(name, "apply", start, parsed.started, parsed.times, batches)
        groups = {step.name: step.group for step in script.steps}
        vpncmd_failed: dict[str, str] = {}
        for index, invocation in script.vpncmd.items():
            text = parsed.vpncmd.get(index)
            if text is None:
                continue
            try:
                check_transcript(
                    parse_transcript(text),
                    invocation.commands,
                    target=name,
                    expected_connect_prompt=invocation.admin_prompt_expected,
                )
            except RemoteError as error:
                vpncmd_failed[f"vpncmd-{index}"] = str(error)
        for step in parsed.completed:
            if step in vpncmd_failed:
                run.fail(groups[step], vpncmd_failed[step])
                return False
            if step in groups:
                run.done(groups[step])
        if parsed.failed is not None:
            detail = vpncmd_failed.get(parsed.failed) or output_tail(parsed.outputs.get(parsed.failed, ""))
            failed = parsed.failed
            run.fail(groups.get(failed, failed), f"step {failed} failed (exit {parsed.rc}): {detail}")
            return False
        if not parsed.finished:
            tail = output_tail(result.stdout + "\n" + result.stderr)
            run.stopped = f"the apply script stopped (exit {result.rc}): {tail}"
            return False
        return True

    def _first_exec_started(self, name: str) -> None:
        """``name``'s first apply exec is on its way (or it has none): once every gateway's is,
        the LAN clients go."""
        with self._lock:
            self._gateways_pending.discard(name)
            if not self._gateways_pending:
                self._gateways_started.set()

    def _verify_now(self, name: str) -> None:
        """The verification read in an exec of its own: the host's last apply exec had no step
        left to carry it (a VPN server that restarted to drop listeners released its bridges
        first). A failure here is left to the verify phase, which reads the host again."""
        wire = render_read(self._read_request(name))
        try:
            raw = self._read_once(name, self._sessions[name], wire.script, wire.secrets, phase="verify")
        except HybridctlError:
            return
        with self._lock:
            self._read_after[name] = raw

    def _keep_read_after(self, name: str, exec_start: float, origin: float | None, text: str) -> None:
        """The verification read an apply exec printed after its steps, for the verify phase."""
        try:
            raw = parse_read(text)
        except ScriptOutputError:
            return  # the verify phase reads the host with an exec of its own
        steps = []
        if raw.clock is not None:
            steps.append(("read", *raw.clock))
        if raw.vpncmd_clock is not None:
            steps.append(("vpncmd-read", *raw.vpncmd_clock))
        self.timeline.add_remote(name, "verify", exec_start, origin, steps)
        with self._lock:
            self._read_after[name] = raw

    def _converge(self, name: str, hc: hs.HostChanges, run: _Run, progress: Progress) -> None:
        state = self._state[name]
        plan = state.plan
        q = shlex.quote
        script = ApplyScript()
        service = self._service(plan)
        ports = " ".join(str(p) for p in self._ports(plan))
        if plan.softether is not None and (hc.package_install or hc.service_start or hc.softether):
            # What `down` restores to: whether SoftEther had a configuration before hybridctl.
            self.journal.found(CONFIG_LAYER, (name,), "present" if state.raw.config_exists else "absent")
        wholly_ours = self.journal.original(CONFIG_LAYER, (name,)) == "absent"

        for change in hc.package_install:
            script.add("package", "package", f"hctl_install {q(_package(change))}\n")
        if hc.files_put:
            body = ""
            for change in hc.files_put:
                item = change.planned
                file = item.file if isinstance(item, FileItem) else None
                if file is None:
                    raise RemoteError(name, f"{' '.join(change.key)} is not a file hybridctl renders for this host")
                body += put_file(file.path, file.content, file.mode)
            if hs.daemon_reload_needed(hc.files_put):
                body += "hctl_reload\n"
            script.add("files", "files", body)
        for change in hc.ip_forward:
            flag = change.planned
            value = flag.text if isinstance(flag, Flag) else ""
            if value not in ("0", "1"):
                raise RemoteError(name, f"ip_forward value {value!r} is not 0 or 1")
            current = dict(change.actual or ()).get("value")
            if current is not None and self.journal.original("flag", change.key) is None and current != value:
                self.journal.found("flag", change.key, current)
            script.add("ip-forward", "ip-forward", f"hctl_ip_forward {value}\n")
        if service is not None and hc.service_start:
            script.add("service", "service", f"hctl_start {q(service.name)} {q(service.binary)} {q(ports)}\n")

        wipe = bool(hc.service_stop) and wholly_ours and plan.softether is not None
        restart = False
        after: list[VpncmdInvocation] = []  # after network: CascadeOnline, Flush
        deferred: list[VpncmdInvocation] = []  # a server's, once its bridges may log in
        dropped: list[int] = []  # listener ports removed from the configuration during the restart
        if plan.softether is not None and hc.softether and not wipe and service is not None:
            softether = state.softether
            # Whether the diff saw SoftEther: if not (it was stopped), its changes are all
            # creates and nothing says what to remove, so converge to the whole plan.
            complete = softether is not None
            actual: SoftEtherConfig | None
            if softether is not None:
                actual, asked = softether.config, softether.facts.admin_password_set
            elif not state.raw.config_exists or not state.raw.packages.get(service.package):
                actual, asked = hs.factory_config(plan.softether.role), False
            else:
                # A stopped SoftEther with a configuration of its own: start it, read it, then plan.
                if not self._exec(name, script, run, progress):
                    return
                script = ApplyScript()
                progress.step(name, "SoftEther started: reading its configuration")
                state = self._read_host(name)
                if state.softether is None:
                    raise RemoteError(name, "SoftEther is still not readable after starting it")
                actual, asked = state.softether.config, state.softether.facts.admin_password_set
            restart = self._softether_steps(
                plan.softether, actual, asked, state, hc, script, after, complete, deferred, dropped
            )

        for change in hc.network_remove:
            if change.layer == "host-address":
                script.add("network-del", "network", hs.address_removal(change))
            else:
                script.add("network-del", "network", hs.route_removal(change))
        if hc.network_add:
            unit = f"{service.name}.service" if service is not None else ""
            script.add("overlay", "network", f"hctl_overlay {q(unit)}\n")

        server_restart = restart and plan.role == "vpn-server"
        if after or restart:
            if not server_restart and not self._server_done.is_set():
                # The cascade logs in to the server: bring it online once the server's own apply
                # (hub, user, password) is done, or its first failed login sticks (cascade bug).
                if not self._exec(name, script, run, progress):
                    return
                script = ApplyScript()
                progress.step(name, "waiting for the VPN server's apply before bringing the cascade online")
                with self.timeline.span(name, "apply", "wait-server"):
                    self._server_done.wait(SERVER_WAIT_S)
            for invocation in after:
                script.add_vpncmd("softether", invocation, invocation.port)
            if restart and service is not None:
                with self._lock:
                    self._reconnected.add(name)
                restart_args = f"{q(service.name)} {q(service.binary)} {q(ports)}"
                if dropped and plan.softether is not None:
                    config = SOFTETHER_CONFIG[plan.softether.role]
                    restart_args += f" {q(config)} {q(' '.join(str(p) for p in dropped))}"
                script.add("restart", "softether", f"hctl_restart {restart_args}\n")
                if plan.addresses or plan.routes:
                    script.add("overlay-again", "softether", "hctl_overlay_again\n")
                if plan.softether is not None and plan.softether.cascades:
                    wait = f"hctl_wait_ping {self.desired.switch_address} {PING_TRIES}\n"
                    script.add("wait-link", "softether", wait, False)

        if wipe and service is not None:
            # The configuration is removed right after: no need for a graceful (slow) stop.
            args = f"{q(service.name)} {q(service.binary)}"
            stop = f"hctl_kill_wait {args}\nhctl_stop {args}\n"
            script.add("service-stop", "service-stop", stop)
            # SoftEther had no configuration before hybridctl: everything in its state and runtime
            # directories (config, backups, chain_certs, lang.config, pid and control files) is
            # what hybridctl's run created. The directories stay (the package owns them).
            script.add(
                "softether-wipe",
                "softether",
                f"find {q(SOFTETHER_STATE)} /run/softether -mindepth 1 -maxdepth 1 -exec rm -rf {{}} + 2>/dev/null"
                " || true\n",
            )
        elif service is not None and hc.service_stop:
            script.add("service-stop", "service-stop", f"hctl_stop {q(service.name)} {q(service.binary)}\n")
        if hc.files_remove:
            body = ""
            paths = [_path(change) for change in hc.files_remove]
            for path in paths:
                if path == OVERLAY_UNIT:
                    body += "hctl_overlay_off\n"
                body += remove_file(path)
            # `systemctl enable` made UNIT.wants/ for what WantedBy= the unit (the overlay unit of
            # a SoftEther unit); disabling empties it but leaves it: remove it when empty.
            for path in paths:
                if path.startswith("/etc/systemd/system/") and path.endswith(".service"):
                    body += f"rmdir {q(path + '.wants')} 2>/dev/null || true\n"
            if hs.daemon_reload_needed(hc.files_remove):
                body += "hctl_reload\n"
            script.add("files-remove", "files-remove", body)
        for change in hc.package_remove:
            script.add("package-remove", "package-remove", f"hctl_remove {q(_package(change))}\n")
        if deferred or (server_restart and self._cascades_wait):
            if not self._exec(name, script, run, progress):
                return
            self._server_done.set()  # hubs, users and passwords are in place: cascades may log in
            script = ApplyScript()
            for invocation in deferred:
                script.add_vpncmd("softether", invocation, invocation.port)
        self._exec(name, script, run, progress, last=True)

    def _softether_steps(
        self,
        planned: SoftEtherConfig,
        actual: SoftEtherConfig,
        asked: bool,
        state: _HostState,
        hc: hs.HostChanges,
        script: ApplyScript,
        after: list[VpncmdInvocation],
        complete: bool,
        deferred: list[VpncmdInvocation],
        dropped: list[int],
    ) -> bool:
        """Add the before-network vpncmd runs to ``script``, collect the after-network ones in
        ``after`` and, on a VPN server, those to run once the bridges may log in in ``deferred``;
        the listener ports the restart removes in ``dropped``; True if the service must restart."""
        target = hs.target_config(actual, planned, hc.softether) if complete else planned
        if not target.listeners:
            # Never zero listeners (nobody could administer it again): keep the current ones.
            target = replace(target, listeners=actual.listeners)
        managed = hs.deleted_names(hc.softether, "hub") | hs.deleted_names(hc.softether, "l3-switch")
        steps = plan_steps(target, actual, admin_password_set=asked, managed=managed)
        port = admin_port(target, actual)
        secrets = self._secret_values(planned, steps.all_steps())
        admin = planned.admin_password_secret
        online = [s for s in steps.after_network if s.kind == "vpncmd"]
        stuck = []
        if state.softether is not None:
            stuck = hs.stuck_cascades(state.softether.config, state.softether.facts, planned)
        restart = hs.restart_needed(steps.after_network, stuck, hc.softether)
        before = list(steps.before_network)
        if restart and online:
            # The restart (after the server's apply) brings the cascade up from the configuration
            # on disk: set it online with the rest now, saved by the Flush below, and the after-
            # network exec needs no vpncmd. Its attempts until then fail and do not matter: the
            # restart starts a fresh process (the cascade bug, docs/softether.md).
            before += online
            online = []
            # Listeners go with the restart: removed from the saved configuration just before the
            # kill (hctl_drop_listeners) instead of ~0.4 s each through vpncmd, unless vpncmd
            # administers through one of them.
            before = _drop_at_restart(before, port, dropped)
        elif planned.role == "vpn-server" and hc.service_start and not restart:
            # A VPN server this run starts has no session yet. Its factory listeners would cost
            # ~0.4 s each through vpncmd, and while SoftEther stops one it lets no other login
            # in: not the bridges' cascades, not an admin session (measured, docs/softether.md).
            # Dropped from the saved configuration at a restart right after the batch instead
            # (SoftEther's second start takes ~0.2 s: its certificate is made at the first).
            kept = _drop_at_restart(before, port, dropped)
            restart = kept != before
            before = kept
        later: list[Step] = []
        if planned.role == "vpn-server" and self._cascades_wait:
            # Removing a listener takes SoftEther ~0.4 s each (three factory ones on a fresh
            # server) and no cascade needs it: after the bridges are told the server is ready.
            later = _listener_removals(before)
            before = [s for s in before if s not in later]
        if before:
            # On disk now: SoftEther saves its configuration lazily, a crash would lose the changes.
            before.append(Step("Flush", why="save the configuration"))
        for invocation in render_vpncmd(before, secrets, admin_secret=admin, admin_password_set=asked, port=port):
            script.add_vpncmd("softether", invocation, invocation.port)
        asked_after = asked or any(s.command == "ServerPasswordSet" for s in steps.before_network)
        if later:
            later.append(Step("Flush", why="save the configuration"))
            deferred.extend(
                render_vpncmd(later, secrets, admin_secret=admin, admin_password_set=asked_after, port=port)
            )
        if restart and not before:
            # The restart terminates the process (a graceful stop waits ~10 s on an online
            # cascade): write the configuration to disk first.
            online.append(Step("Flush", why="save the configuration before the restart"))
        if online:
            after.extend(render_vpncmd(online, secrets, admin_secret=admin, admin_password_set=asked_after, port=port))
        return restart

    def _secret_values(self, planned: SoftEtherConfig, steps: Sequence[Step]) -> dict[str, str]:
        names = {planned.admin_password_secret}
        names |= {s.secret for s in steps if s.secret and s.secret != RANDOM_SECRET}
        return {n: self.secrets.resolve(self._ref(n)) for n in sorted(names)}

    def _journal_outcomes(self, name: str, outcomes: list[Outcome]) -> None:
        """Remember what hybridctl created (so `down` removes exactly that) once it worked."""
        wholly_ours = self.journal.original(CONFIG_LAYER, (name,)) == "absent"
        for outcome in outcomes:
            change = outcome.change
            if change is None or not outcome.ok:
                continue
            delete = change.action == "delete"
            if change.layer in ("host-service", "host-package"):
                if delete:
                    self.journal.forget(change.layer, change.key)
                elif change.action == "create":
                    self.journal.created(change.layer, change.key)
            elif change.layer == "flag":
                value = dict(change.desired or ()).get("value")
                if value is not None and value == self.journal.original("flag", change.key):
                    self.journal.restored("flag", change.key)  # back to what was found
            elif change.layer == "softether" and not wholly_ours:
                if delete:
                    self.journal.forget("softether", change.key)
                elif change.action == "create":
                    self.journal.created("softether", change.key)
        stopped = any(
            o.ok and o.change is not None and o.change.layer == "host-service" and o.change.action == "delete"
            for o in outcomes
        )
        if stopped and wholly_ours:
            self.journal.restored(CONFIG_LAYER, (name,))


def backend_for(context: Context) -> HostsBackend | None:
    """The engine's factory: a host backend when the plan has hosts reachable over SSH."""
    if not any(h.managed for h in context.desired.hosts):
        return None
    return HostsBackend(
        context.desired,
        context.journal,
        context.secrets,
        accept_new_host_keys=context.options.accept_new_host_keys,
        purge=context.options.purge,
        timeline=context.timeline,
    )


__all__ = ["HostsBackend", "backend_for"]
