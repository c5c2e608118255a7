"""`check`: the ping matrix, path MTU and bulk TCP, services, and each failure's suspect layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridctl.core.check import ProbeResult

if TYPE_CHECKING:  # for types only: loading the SSH client is `check`'s business, not every command's
    from hybridctl.features.checkrun import CheckResult


def check_document(result: CheckResult) -> dict[str, Any]:
    """`check -o json` (graph --from-check reads it too)."""
    return {
        "ok": result.ok,
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
                "size": r.size,
            }
            for r in result.results
        ],
        "unreachable_probers": result.unreachable_probers,
    }


def render_check(console: Console, result: CheckResult) -> None:
    pings = [r for r in result.results if r.probe.kind == "ping"]
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
            found = cell.get((name, target))
            if found is None:
                row.append("[dim]·[/]")
            elif found.ok:
                row.append(f"[green]ok[/] {found.rtt_ms:.1f}ms" if found.rtt_ms is not None else "[green]ok[/]")
            else:
                row.append("[red]FAIL[/]")
        table.add_row(*row)
    console.print(table)
    deep = {(r.probe.source, r.probe.target, r.probe.kind): r for r in result.results if r.probe.check}
    if deep:
        paths = Table(title="path MTU (don't-fragment ping) and bulk TCP", title_justify="left")
        for column in ("from", "to", "largest DF packet", "bulk TCP"):
            paths.add_column(column)
        for _site, name in sources:
            for _, target in targets:
                mtu, bulk = deep.get((name, target, "mtu")), deep.get((name, target, "bulk"))
                if mtu is None and bulk is None:
                    continue
                paths.add_row(escape(name), escape(target), _cell(mtu, "bytes"), _cell(bulk, "ms"))
        console.print(paths)
    tcp = [r for r in result.results if r.probe.kind == "tcp"]
    if tcp:
        services = Table(title="services", title_justify="left")
        for column in ("from", "service", "result"):
            services.add_column(column)
        for r in tcp:
            services.add_row(
                escape(r.probe.source), escape(r.probe.label), "[green]ok[/]" if r.ok else "[red]FAIL[/]"
            )
        console.print(services)
    failed = [r for r in result.results if not r.ok]
    for r in failed:
        console.print(
            f"[red]FAIL[/] {escape(r.probe.source)} -> {escape(r.probe.label)} ({r.probe.address}): "
            f"{escape(r.detail)}; most likely: [bold]{escape(r.suspect)}[/]"
        )
    for prober, error in sorted(result.unreachable_probers.items()):
        console.print(f"[red]cannot probe from[/] {escape(prober)}: {escape(error)}")
    if result.ok:
        console.print(f"[green]All {len(result.results)} probes passed across every pair of sites.[/]")
    elif not result.results:
        console.print("[yellow]Nothing to probe: declare test_hosts (with ssh) or services in the inventory.[/]")


def _cell(result: ProbeResult | None, unit: str) -> str:
    if result is None:
        return "[dim]·[/]"
    if not result.ok:
        return f"[red]FAIL[/] {result.size}" if result.probe.kind == "mtu" and result.size else "[red]FAIL[/]"
    value = result.size if unit == "bytes" else result.rtt_ms
    return f"[green]ok[/] {value:.0f} {unit}" if value is not None else "[green]ok[/]"
