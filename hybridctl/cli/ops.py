"""`up`, `down`, `routes diff` and `check`: parse, call the engine, render."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hybridctl.backends.base import Outcome
from hybridctl.cli.common import (
    ConsoleProgress,
    InventoryOpt,
    LayerOpt,
    Output,
    OutputOpt,
    check_layers,
    print_json,
    stderr,
    stdout,
)
from hybridctl.core.diff import Change, summary
from hybridctl.core.errors import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, HybridctlError
from hybridctl.core.inventory.load import load_inventory, plan_loaded
from hybridctl.core.planner.desired import ROUTING_LAYERS
from hybridctl.features.engine import ApplyReport, Context, Options, down_desired, execute, open_context, prepare
from hybridctl.render import render_changes, render_plan_extras
from hybridctl.render.timeline import render_timeline, timeline_document

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the changes and stop.")]
AcceptOpt = Annotated[
    bool,
    typer.Option("--accept-new-host-keys", help="Trust and record SSH host keys seen for the first time."),
]

TimingsOpt = Annotated[
    bool, typer.Option("--timings", help="Print where each host's time went (connect, read, each step, verify).")
]

routes_app = typer.Typer(help="Compare routes and forwarding in every layer with the plan.", no_args_is_help=True)


def _open(inventory: Any, options: Options) -> Context:
    loaded = load_inventory(inventory)
    desired = plan_loaded(loaded)
    return open_context(loaded, desired, options)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise HybridctlError("no terminal to confirm on: pass --yes to apply, or --dry-run to only look")
    return typer.confirm(question, default=False)


def _outcome_rows(outcomes: Sequence[Outcome]) -> dict[str, dict[str, int]]:
    per_target: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        counts = per_target.setdefault(outcome.target, {"ok": 0, "failed": 0})
        counts["ok" if outcome.ok else "failed"] += 1
    return per_target


def _calls(context: Context) -> dict[str, dict[str, int]]:
    """Per backend: API calls / host commands made, reads vs changing ones (idempotency shows here)."""
    return {b.name: {"reads": b.counter.reads, "mutations": b.counter.mutations} for b in context.backends}


def _timeline(context: Context) -> list[Any]:
    """The run's timeline: every backend's read / apply / verify, every host's steps."""
    return list(context.timeline.spans())


def _manual_clients(context: Context) -> list[dict[str, Any]]:
    """LAN clients hybridctl cannot reach: the routes to add by hand, or push by DHCP option 121."""
    return [
        {
            "client": c.client,
            "address": str(c.address),
            "routes": [f"{p} via {c.via}" for p in c.prefixes],
            "dhcp_option_121": c.dhcp_option_121,
            "dnsmasq": c.dnsmasq_option,
        }
        for c in context.desired.clients
        if not c.managed
    ]


def _report_document(changes: Sequence[Change], report: ApplyReport | None) -> dict[str, Any]:
    document: dict[str, Any] = {"changes": [c.as_dict() for c in changes], "summary": summary(changes)}
    if report is not None:
        document.update(
            ok=report.ok,
            failed=[
                {"target": o.target, "change": o.change.as_dict() if o.change else None, "error": o.error}
                for o in report.failed
            ],
            unreachable=report.unreachable,
            remaining=[c.as_dict() for c in report.remaining],
            per_target=_outcome_rows(report.outcomes),
        )
    return document


def _render_report(report: ApplyReport) -> None:
    table = Table(title="result per target", title_justify="left")
    table.add_column("target")
    table.add_column("applied", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("error")
    errors: dict[str, str] = {}
    for outcome in report.failed:
        errors.setdefault(outcome.target, outcome.error)
    for target, counts in sorted(_outcome_rows(report.outcomes).items()):
        table.add_row(escape(target), str(counts["ok"]), str(counts["failed"]), escape(errors.get(target, "")))
    for target, error in sorted(report.unreachable.items()):
        table.add_row(escape(target), "0", "-", escape(f"unreachable: {error}"))
    stdout.print(table)
    if report.remaining:
        stdout.print("[yellow]Still different after applying (re-run `hybridctl up` to converge):[/]")
        render_changes(stdout, report.remaining, show_actual=True)
    if report.ok:
        stdout.print("[green]Done: every layer matches the plan.[/]")


def _apply_flow(
    context: Context,
    *,
    yes: bool,
    dry_run: bool,
    output: Output,
    verb: str,
    desired_for: str = "up",
    finish: Callable[[bool], dict[str, Any]] | None = None,
    timings: bool = False,
) -> int:
    """``finish(table)``: runs last; renders itself when ``table``, its result joins the JSON document."""
    progress = ConsoleProgress(enabled=True)
    chosen = None
    prepared = prepare(context, progress)
    if desired_for == "down":
        chosen = down_desired(context, prepared.actual)
        prepared = prepare(context, progress, chosen)
    changes = [c for c in prepared.changes if c.action != "conflict"]
    if output is Output.table:
        render_changes(stdout, prepared.changes, show_actual=True)
        if desired_for == "up":
            render_plan_extras(stdout, context.desired)
        for target, error in sorted(prepared.actual.unreachable.items()):
            stderr.print(f"[red]unreachable[/] {escape(target)}: {escape(error)}")
    if dry_run or not changes:
        tail = finish(output is Output.table) if finish is not None else {}
        if output is Output.json:
            print_json(
                _report_document(prepared.changes, None)
                | {"unreachable": prepared.actual.unreachable, "calls": _calls(context)}
                | ({"manual_clients": _manual_clients(context)} if desired_for == "up" else {})
                | {"timeline": timeline_document(_timeline(context))}
                | tail
            )
        elif timings:
            render_timeline(stdout, _timeline(context))
        return EXIT_ERROR if prepared.actual.unreachable else EXIT_OK
    if not yes and not _confirm(f"{verb} these {len(changes)} changes?"):
        stderr.print("nothing changed")
        return EXIT_OK
    report = execute(context, prepared, progress, chosen)
    if output is Output.json:
        extra = {"manual_clients": _manual_clients(context)} if desired_for == "up" else {}
        tail = finish(False) if finish is not None else {}
        timeline = {"timeline": timeline_document(_timeline(context))}
        print_json(_report_document(prepared.changes, report) | {"calls": _calls(context)} | extra | timeline | tail)
    else:
        _render_report(report)
        if finish is not None:
            finish(True)
        if timings:
            render_timeline(stdout, _timeline(context))
    return EXIT_OK if report.ok else EXIT_ERROR


def up(
    inventory: InventoryOpt,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    accept_new_host_keys: AcceptOpt = False,
    output: OutputOpt = Output.table,
    layer: LayerOpt = None,
    timings: TimingsOpt = False,
) -> None:
    """Build or repair the overlay: read every layer, show the changes, apply them, verify."""
    context = _open(inventory, Options(accept_new_host_keys=accept_new_host_keys, layers=check_layers(layer)))
    try:
        code = _apply_flow(context, yes=yes, dry_run=dry_run, output=output, verb="Apply", timings=timings)
    finally:
        context.close()
    raise typer.Exit(code)


def down(
    inventory: InventoryOpt,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    purge: Annotated[bool, typer.Option("--purge", help="Also remove the SoftEther packages.")] = False,
    accept_new_host_keys: AcceptOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Remove what hybridctl created, restore the flags it changed, stop the services."""
    from hybridctl.cli.cost import billing_leftovers

    context = _open(inventory, Options(accept_new_host_keys=accept_new_host_keys, purge=purge))
    try:
        code = _apply_flow(
            context,
            yes=yes,
            dry_run=dry_run,
            output=output,
            verb="Remove",
            desired_for="down",
            # What hybridctl created that still bills (and that down does not remove): listed last.
            finish=lambda table: billing_leftovers(inventory, table),
        )
    finally:
        context.close()
    raise typer.Exit(code)


@routes_app.command("diff")
def routes_diff(
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    layer: LayerOpt = None,
    accept_new_host_keys: AcceptOpt = False,
) -> None:
    """Desired vs actual routes and forwarding: exit 0 in sync, 2 drift, 1 error."""
    layers = check_layers(layer) or list(ROUTING_LAYERS)
    context = _open(inventory, Options(accept_new_host_keys=accept_new_host_keys, layers=layers))
    try:
        prepared = prepare(context, ConsoleProgress(enabled=output is Output.table))
    finally:
        context.close()
    drift = prepared.changes
    if output is Output.json:
        print_json(
            {
                "in_sync": not drift and not prepared.actual.unreachable,
                "layers": layers,
                "drift": [
                    {
                        "symbol": c.symbol,
                        **c.as_dict(),
                        "differs": {k: {"expected": e, "actual": a} for k, (e, a) in c.differing().items()},
                    }
                    for c in drift
                ],
                "unreachable": prepared.actual.unreachable,
            }
        )
    else:
        if drift:
            render_changes(stdout, drift, show_actual=True)
        else:
            stdout.print("[green]In sync: every layer matches the plan.[/]")
        for target, error in sorted(prepared.actual.unreachable.items()):
            stderr.print(f"[red]unreachable[/] {escape(target)}: {escape(error)}")
    if prepared.actual.unreachable:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_DRIFT if drift else EXIT_OK)


def check(
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    accept_new_host_keys: AcceptOpt = False,
    bulk: Annotated[
        bool,
        typer.Option("--bulk", help="Also move 256 KiB each way over TCP between every pair (docs/real-clouds.md)."),
    ] = False,
) -> None:
    """Ping, DF-ping at transit.mtu and TCP-probe every test host and service across sites; name the layer at fault."""
    from hybridctl.features.checkrun import run_check

    loaded = load_inventory(inventory)
    desired = plan_loaded(loaded)
    result = run_check(
        loaded,
        desired,
        Options(accept_new_host_keys=accept_new_host_keys),
        ConsoleProgress(enabled=output is Output.table),
        bulk=bulk,
    )
    if output is Output.json:
        print_json(result.as_dict())
    else:
        result.render(stdout)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_ERROR)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(check)
    app.add_typer(routes_app, name="routes")
