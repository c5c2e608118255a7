"""Running `check`: SSH to every prober in parallel, run its probes, diagnose failures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from hybridctl.backends.base import Progress
from hybridctl.backends.ssh import SshSession, connect_all
from hybridctl.core.check import (
    BULK_BYTES,
    Probe,
    ProbeResult,
    diagnose,
    endpoints,
    listener_command,
    parse_probe_output,
    probe_script,
    probes,
)
from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.load import LoadedInventory
from hybridctl.core.planner.desired import ROUTING_LAYERS, DesiredState
from hybridctl.features.engine import Options, open_context, prepare


@dataclass
class CheckResult:
    results: list[ProbeResult]
    unreachable_probers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results) and not self.unreachable_probers


def _run_prober(session: SshSession, items: list[Probe], mtu: int, ports: dict[str, int]) -> list[ProbeResult]:
    try:
        # The same path as the host backend's scripts: one exec, under sudo when not root.
        result = session.run_script(probe_script(items, mtu=mtu, bulk_ports=ports), timeout=90, shell="bash")
    except RemoteError as error:
        return [ProbeResult(p, False, None, f"prober failed: {error}") for p in items]
    return parse_probe_output(items, result.stdout, mtu=mtu)


# What a lost ping reply or a dropped SYN on a busy path reports: such a failure is tried once
# more before it is reported (every prober probing every host at once can drop a few).
RETRIED = ("no reply", "connection failed")


def confirm_failures(
    pool: ThreadPoolExecutor,
    sessions: Mapping[str, SshSession],
    results: list[ProbeResult],
    mtu: int,
    run: Callable[[SshSession, list[Probe], int, dict[str, int]], list[ProbeResult]] | None = None,
) -> list[ProbeResult]:
    """``results`` with each failed ping and TCP probe run a second time, only those, and the
    second answer kept: "passed on a second try" when it passed (a flaky path shows as such)."""
    run = run or _run_prober
    again: dict[str, list[Probe]] = defaultdict(list)
    for result in results:
        retry = not result.ok and result.probe.kind in ("ping", "tcp") and result.detail in RETRIED
        if retry and result.probe.source in sessions:
            again[result.probe.source].append(result.probe)
    if not again:
        return results
    jobs = list(again.items())
    retried: dict[Probe, ProbeResult] = {}
    for chunk in pool.map(lambda job: run(sessions[job[0]], job[1], mtu, {}), jobs):
        for second in chunk:
            retried[second.probe] = replace(second, detail="passed on a second try") if second.ok else second
    return [retried.get(r.probe, r) for r in results]


def _start_listener(session: SshSession) -> int | None:
    """A one-shot bulk listener on the target (it exits after 60 s without a connection)."""
    try:
        result = session.run(listener_command(idle=60, size=BULK_BYTES), timeout=15)
    except RemoteError:
        return None
    text = result.stdout.strip()
    return int(text) if result.rc == 0 and text.isdigit() else None


PHASES = (("ping", "tcp"), ("mtu",), ("bulk",))
MTU_FIX = (
    "MTU black hole: a hop on the path carries at most {size} bytes and its ICMP 'fragmentation needed' "
    "does not come back (let ICMP type 3 code 4 through, or lower the MTU of the hosts and transit.mtu to {size})"
)


def run_check(
    loaded: LoadedInventory, desired: DesiredState, options: Options, progress: Progress, *, bulk: bool = False
) -> CheckResult:
    inventory = loaded.inventory
    mtu = inventory.transit.mtu
    all_probes = probes(inventory, bulk=bulk)
    by_source: dict[str, list[Probe]] = defaultdict(list)
    for probe in all_probes:
        by_source[probe.source].append(probe)
    probers = [(e.name, e.ssh) for e in endpoints(inventory) if e.ssh is not None and e.name in by_source]
    progress.step("check", f"{len(all_probes)} probes from {len(probers)} hosts")
    sessions, errors = connect_all(
        [(name, ssh) for name, ssh in probers if ssh is not None], accept_new_host_keys=options.accept_new_host_keys
    )
    results: list[ProbeResult] = []
    try:
        if sessions:
            with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
                # One phase at a time across every prober: 256 KiB transfers on every pair at
                # once would queue in the tunnels and cost a single-packet ping its reply.
                silent: set[tuple[str, str]] = set()  # pairs whose ping failed: size probes add nothing
                for kinds in PHASES:
                    ports: dict[str, int] = {}
                    if "bulk" in kinds:
                        targets = sorted({p.target for p in all_probes if p.check == "bulk"} & set(sessions))
                        started = zip(targets, pool.map(lambda n: _start_listener(sessions[n]), targets), strict=True)
                        ports = {name: port for name, port in started if port is not None}
                    phase: dict[str, list[Probe]] = {}
                    for name in sessions:
                        for p in by_source[name]:
                            if p.kind not in kinds:
                                continue
                            if (p.source, p.target) in silent:
                                results.append(ProbeResult(p, False, None, "not run: this pair's ping got no reply"))
                            else:
                                phase.setdefault(name, []).append(p)
                    jobs = [(sessions[name], items) for name, items in phase.items() if items]
                    phase_results: list[ProbeResult] = []
                    for chunk in pool.map(lambda job, p=ports: _run_prober(job[0], job[1], mtu, p), jobs):
                        phase_results.extend(chunk)
                    if "ping" in kinds:
                        phase_results = confirm_failures(pool, sessions, phase_results, mtu)
                    results.extend(phase_results)
                    silent |= {(r.probe.source, r.probe.target) for r in results if r.probe.kind == "ping" and not r.ok}
    finally:
        for session in sessions.values():
            session.close()
    if any(not r.ok for r in results):
        results = _diagnosed(loaded, desired, options, progress, results)
    return CheckResult(results, errors)


def _diagnosed(
    loaded: LoadedInventory, desired: DesiredState, options: Options, progress: Progress, results: list[ProbeResult]
) -> list[ProbeResult]:
    """Read every layer (as `routes diff` does) and name the suspect layer of each failure."""
    progress.step("check", "probes failed: reading every layer to find the cause")
    context = open_context(
        loaded,
        desired,
        Options(accept_new_host_keys=options.accept_new_host_keys, layers=[*ROUTING_LAYERS, "host-service"]),
    )
    try:
        prepared = prepare(context, progress)
    finally:
        context.close()
    out = []
    by_pair = {(r.probe.source, r.probe.target, r.probe.kind): r for r in results}
    for result in results:
        if result.ok:
            out.append(result)
            continue
        pair = (result.probe.source, result.probe.target)
        ping = by_pair.get((*pair, "ping"))
        mtu = by_pair.get((*pair, "mtu"))
        if result.probe.check and ping is not None and ping.ok:
            # Small packets pass: no route or flag is missing, the size is the finding.
            if mtu is not None and not mtu.ok and mtu.size:
                suspect = MTU_FIX.format(size=mtu.size)
            elif result.probe.check == "bulk":
                suspect = "bulk TCP stalls though full-size pings pass: a firewall, MSS clamping or the listener"
            else:
                suspect = "no don't-fragment ping passes: a firewall drops DF packets or ICMP"
            out.append(ProbeResult(result.probe, False, None, result.detail, suspect, result.size))
            continue
        source = next(e for e in endpoints(loaded.inventory) if e.name == result.probe.source)
        suspect = diagnose(
            loaded.inventory,
            desired,
            source.address,
            result.probe.address,
            prepared.changes,
            prepared.actual.resources,
        )
        if prepared.actual.unreachable:
            suspect += f" (could not read: {', '.join(sorted(prepared.actual.unreachable))})"
        out.append(ProbeResult(result.probe, False, None, result.detail, suspect, result.size))
    return out
