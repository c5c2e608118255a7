"""`up`, `down`, `routes diff` and `check`: parse, call the engine, render (hybridctl.render)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from hybridctl.cli.common import ConsoleProgress, InventoryOpt, LayerOpt, Output, OutputOpt, check_layers
from hybridctl.cli.environment import Environment
from hybridctl.core.errors import ExitStatus
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.desired import ROUTING_LAYERS
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.features.engine import Context, Options, down_desired, execute, open_context, prepare, rediff
from hybridctl.render.apply import apply_document, diff_document, render_diff, render_proposed, render_report
from hybridctl.render.base import print_json
from hybridctl.render.check import check_document, render_check
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


def _calls(context: Context) -> dict[str, dict[str, int]]:
    """Per backend: API calls / host commands made, reads vs changing ones (idempotency shows here)."""
    return {b.name: {"reads": b.counter.reads, "mutations": b.counter.mutations} for b in context.backends}


def _timeline(context: Context) -> list[Any]:
    """The run's timeline: every backend's read / apply / verify, every host's steps."""
    return list(context.timeline.spans())


def _apply_flow(
    env: Environment,
    context: Context,
    *,
    yes: bool,
    dry_run: bool,
    output: Output,
    verb: str,
    desired_for: str = "up",
    finish: Callable[[bool], dict[str, Any]] | None = None,
    timings: bool = False,
) -> ExitStatus:
    """``finish(table)``: runs last; renders itself when ``table``, its result joins the JSON document."""
    progress = ConsoleProgress(enabled=True, console=env.stderr)
    chosen = None
    prepared = prepare(context, progress)
    if desired_for == "down":
        chosen = down_desired(context, prepared.actual)
        prepared = rediff(context, prepared, chosen)  # the same reads, diffed against `down`'s wants
    plan = context.desired if desired_for == "up" else None
    unreachable = prepared.actual.unreachable
    changes = [c for c in prepared.changes if c.action != "conflict"]
    if output is Output.table:
        render_proposed(env.stdout, env.stderr, prepared.changes, unreachable, plan)
    if dry_run or not changes:
        tail = finish(output is Output.table) if finish is not None else {}
        if output is Output.json:
            print_json(env.stdout, apply_document(prepared.changes, unreachable, _calls(context), None, plan)
                       | {"timeline": timeline_document(_timeline(context))} | tail)
        elif timings:
            render_timeline(env.stdout, _timeline(context))
        return ExitStatus.ERROR if unreachable else ExitStatus.OK
    if not yes and not env.confirm(f"{verb} these {len(changes)} changes?"):
        env.stderr.print("nothing changed")
        return ExitStatus.OK
    report = execute(context, prepared, progress, chosen)
    if output is Output.json:
        tail = finish(False) if finish is not None else {}
        print_json(env.stdout, apply_document(prepared.changes, unreachable, _calls(context), report, plan)
                   | {"timeline": timeline_document(_timeline(context))} | tail)
    else:
        render_report(env.stdout, report)
        if finish is not None:
            finish(True)
        if timings:
            render_timeline(env.stdout, _timeline(context))
    return ExitStatus.OK if report.ok else ExitStatus.ERROR


def up(
    ctx: typer.Context,
    inventory: InventoryOpt,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    accept_new_host_keys: AcceptOpt = False,
    output: OutputOpt = Output.table,
    layer: LayerOpt = None,
    timings: TimingsOpt = False,
) -> ExitStatus:
    """Build or repair the overlay: read every layer, show the changes, apply them, verify."""
    env = Environment.of(ctx)
    context = _open(inventory, Options(accept_new_host_keys=accept_new_host_keys, layers=check_layers(layer)))
    try:
        return _apply_flow(env, context, yes=yes, dry_run=dry_run, output=output, verb="Apply", timings=timings)
    finally:
        context.close()


def down(
    ctx: typer.Context,
    inventory: InventoryOpt,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    purge: Annotated[bool, typer.Option("--purge", help="Also remove the SoftEther packages.")] = False,
    accept_new_host_keys: AcceptOpt = False,
    output: OutputOpt = Output.table,
) -> ExitStatus:
    """Remove what hybridctl created, restore the flags it changed, stop the services."""
    from hybridctl.cli.cost import billing_leftovers

    env = Environment.of(ctx)
    context = _open(inventory, Options(accept_new_host_keys=accept_new_host_keys, purge=purge))
    try:
        return _apply_flow(
            env,
            context,
            yes=yes,
            dry_run=dry_run,
            output=output,
            verb="Remove",
            desired_for="down",
            # What hybridctl created that still bills (and that down does not remove): listed last.
            finish=lambda table: billing_leftovers(env, inventory, table),
        )
    finally:
        context.close()


@routes_app.command("diff")
def routes_diff(
    ctx: typer.Context,
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    layer: LayerOpt = None,
    accept_new_host_keys: AcceptOpt = False,
) -> ExitStatus:
    """Desired vs actual routes and forwarding: exit 0 in sync, 2 drift, 1 error (a bad inventory too)."""
    env = Environment.of(ctx)
    layers = check_layers(layer) or list(ROUTING_LAYERS)
    context = _open(inventory, Options(accept_new_host_keys=accept_new_host_keys, layers=layers))
    try:
        prepared = prepare(context, ConsoleProgress(enabled=output is Output.table, console=env.stderr))
    finally:
        context.close()
    drift, unreachable = prepared.changes, prepared.actual.unreachable
    if output is Output.json:
        print_json(env.stdout, diff_document(layers, drift, unreachable))
    else:
        render_diff(env.stdout, env.stderr, drift, unreachable)
    if unreachable:
        return ExitStatus.ERROR
    return ExitStatus.DRIFT if drift else ExitStatus.OK


def check(
    ctx: typer.Context,
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    accept_new_host_keys: AcceptOpt = False,
    bulk: Annotated[
        bool,
        typer.Option("--bulk", help="Also move 256 KiB each way over TCP between every pair (docs/real-clouds.md)."),
    ] = False,
) -> ExitStatus:
    """Ping, DF-ping at transit.mtu and TCP-probe every test host and service across sites; name the layer at fault."""
    from hybridctl.features.checkrun import run_check

    env = Environment.of(ctx)
    loaded = load_inventory(inventory)
    desired = plan_loaded(loaded)
    result = run_check(
        loaded,
        desired,
        Options(accept_new_host_keys=accept_new_host_keys),
        ConsoleProgress(enabled=output is Output.table, console=env.stderr),
        bulk=bulk,
    )
    if output is Output.json:
        print_json(env.stdout, check_document(result))
    else:
        render_check(env.stdout, result)
    return ExitStatus.OK if result.ok else ExitStatus.ERROR


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(check)
    app.add_typer(routes_app, name="routes")
