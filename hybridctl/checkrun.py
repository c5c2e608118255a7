"""Running `check`: SSH to every prober in parallel, run its probes, diagnose failures."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridctl.adapters.base import Progress
from hybridctl.adapters.ssh import SshSession, connect_all
from hybridctl.check import Probe, ProbeResult, diagnose, endpoints, parse_probe_output, probe_script, probes
from hybridctl.engine import Options, open_context, prepare
from hybridctl.errors import RemoteError
from hybridctl.inventory.load import LoadedInventory
from hybridctl.planner.desired import ROUTING_LAYERS, DesiredState


@dataclass
class CheckResult:
    results: list[ProbeResult]
    unreachable_probers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results) and not self.unreachable_probers

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "probes": [
                {
                    "source": r.probe.source,
                    "source_site": r.probe.source_site,
                    "target": r.probe.target,
                    "target_site": r.probe.target_site,
                    "address": str(r.probe.address),
                    "kind": r.probe.kind,
                    "port": r.probe.port,
                    "ok": r.ok,
                    "rtt_ms": r.rtt_ms,
                    "detail": r.detail,
                    "suspect": r.suspect,
                }
                for r in self.results
            ],
            "unreachable_probers": self.unreachable_probers,
        }

    def render(self, console: Console) -> None:
        pings = [r for r in self.results if r.probe.port is None]
        sources = sorted({(r.probe.source_site, r.probe.source) for r in pings})
        targets = sorted({(r.probe.target_site, r.probe.target) for r in pings})
        cell = {(r.probe.source, r.probe.target): r for r in pings}
        table = Table(title="ping matrix (rows ping columns)", title_justify="left")
        table.add_column("from \\ to")
        for site, name in targets:
            table.add_column(f"{name}\n[dim]{site}[/]", justify="center")
        for site, name in sources:
            row = [f"{escape(name)} [dim]{escape(site)}[/]"]
            for _, target in targets:
                result = cell.get((name, target))
                if result is None:
                    row.append("[dim]·[/]")
                elif result.ok:
                    row.append(f"[green]ok[/] {result.rtt_ms:.1f}ms" if result.rtt_ms is not None else "[green]ok[/]")
                else:
                    row.append("[red]FAIL[/]")
            table.add_row(*row)
        console.print(table)
        tcp = [r for r in self.results if r.probe.port is not None]
        if tcp:
            services = Table(title="services", title_justify="left")
            for column in ("from", "service", "result"):
                services.add_column(column)
            for r in tcp:
                services.add_row(
                    escape(r.probe.source), escape(r.probe.label), "[green]ok[/]" if r.ok else "[red]FAIL[/]"
                )
            console.print(services)
        failed = [r for r in self.results if not r.ok]
        for r in failed:
            console.print(
                f"[red]FAIL[/] {escape(r.probe.source)} -> {escape(r.probe.label)} ({r.probe.address}): "
                f"{escape(r.detail)}; most likely: [bold]{escape(r.suspect)}[/]"
            )
        for prober, error in sorted(self.unreachable_probers.items()):
            console.print(f"[red]cannot probe from[/] {escape(prober)}: {escape(error)}")
        if self.ok:
            console.print(f"[green]All {len(self.results)} probes passed across every pair of sites.[/]")
        elif not self.results:
            console.print("[yellow]Nothing to probe: declare test_hosts (with ssh) or services in the inventory.[/]")


def _run_prober(session: SshSession, items: list[Probe]) -> list[ProbeResult]:
    try:
        # The same path as the host backend's scripts: one exec, under sudo when not root.
        result = session.run_script(probe_script(items), timeout=60, shell="bash")
    except RemoteError as error:
        return [ProbeResult(p, False, None, f"prober failed: {error}") for p in items]
    return parse_probe_output(items, result.stdout)


def run_check(loaded: LoadedInventory, desired: DesiredState, options: Options, progress: Progress) -> CheckResult:
    inventory = loaded.inventory
    all_probes = probes(inventory)
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
                for chunk in pool.map(lambda name: _run_prober(sessions[name], by_source[name]), list(sessions)):
                    results.extend(chunk)
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
    for result in results:
        if result.ok:
            out.append(result)
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
        out.append(ProbeResult(result.probe, False, None, result.detail, suspect))
    return out
