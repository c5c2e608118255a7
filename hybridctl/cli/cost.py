"""`hybridctl cost`, `hybridctl leaks` and `hybridctl graph`: parse, call hybridctl.features.cost, render.

Exit codes (hybridctl.cli.exit): 0 ok, 1 a cloud refused or failed (a refused read names the permission to grant),
2 bad input (nothing remote touched). docs/cost.md has the details.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from hybridctl.cli.common import InventoryOpt, Output, OutputOpt
from hybridctl.cli.environment import Environment
from hybridctl.core.errors import ExitStatus, HybridctlError, InputError, Problem
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.secrets import SecretStore
from hybridctl.features.cost import parse
from hybridctl.features.cost.leaks import select
from hybridctl.features.cost.models import DEFAULT_TAG, Leak
from hybridctl.features.cost.service import (
    Session,
    check_clouds,
    clouds_of,
    cost_report,
    delete_leak,
    find_leaks,
    leftovers,
)
from hybridctl.render.base import print_json
from hybridctl.render.cost import (
    cost_document,
    leaks_document,
    leftovers_document,
    render_cost,
    render_leaks,
    render_leftovers,
)

CLI = "command line"
CloudOpt = Annotated[str | None, typer.Option("--cloud", help="aws, azure or both (default: the inventory's).")]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _check_cloud(cloud: str | None) -> None:
    if cloud is not None and cloud not in ("aws", "azure", "both"):
        raise InputError([Problem(CLI, "--cloud", f"unknown cloud {cloud!r}", "use aws, azure or both")])


def _session(inventory: Path) -> Session:
    loaded = load_inventory(inventory)
    store = SecretStore.for_inventory(loaded.inventory.name, loaded.inventory.secrets.store)
    return Session(loaded, store)


def cost(
    ctx: typer.Context,
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    since: Annotated[str | None, typer.Option("--since", help="First day (YYYY-MM-DD); default the 1st.")] = None,
    group_by: Annotated[str, typer.Option("--group-by", help="service, resource or tag.")] = "service",
    tag: Annotated[str, typer.Option("--tag", help="Tag key for --group-by tag.")] = DEFAULT_TAG,
    cloud: CloudOpt = None,
    resource_group: Annotated[
        str | None,
        typer.Option("--resource-group", help="Azure: report this resource group instead of the subscription."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also draw spend per day to FILE.png or FILE.svg.")
    ] = None,
) -> ExitStatus:
    """Month-to-date actual and forecast spend per cloud and service: what hybridctl manages vs the rest."""
    today = _today()
    _check_cloud(cloud)
    start = parse.check_request(since, group_by, today)
    if plot is not None:
        from hybridctl.features.cost.plot import check_plot_target

        check_plot_target(plot)
    session = _session(inventory)
    try:
        clouds = clouds_of(session.inventory, cloud)
        check_clouds(session.loaded, clouds)
        reports = cost_report(
            session,
            clouds,
            since=start,
            today=today,
            group_by=group_by,
            tag_key=tag,
            azure_resource_group=resource_group,
        )
    finally:
        session.close()
    if plot is not None:
        from hybridctl.features.cost.plot import plot_spend

        plot_spend(reports, plot)
    env = Environment.of(ctx)
    if output is Output.json:
        print_json(env.stdout, cost_document(reports, session.counter.as_dict(), plot))
    else:
        for report in reports:
            render_cost(env.stdout, report)
        if plot is not None:
            env.stderr.print(f"wrote {plot}")
    return ExitStatus.OK


def leaks(
    ctx: typer.Context,
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    cloud: CloudOpt = None,
    snapshot_age: Annotated[int, typer.Option("--snapshot-age", help="Snapshots older than DAYS are listed.")] = 90,
    delete: Annotated[
        list[str] | None, typer.Option("--delete", help="Remove this listed item (id or name); repeatable.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --delete: remove without asking.")] = False,
) -> ExitStatus:
    """Resources that bill while doing nothing, with their monthly cost and the command that removes them."""
    _check_cloud(cloud)
    if snapshot_age < 1:
        raise InputError([Problem(CLI, "--snapshot-age", f"{snapshot_age} days", "use 1 day or more")])
    if delete and not yes:
        raise InputError(
            [Problem(CLI, "--delete", "removing needs confirmation", "add --yes (leaks never asks interactively)")]
        )
    env = Environment.of(ctx)
    session = _session(inventory)
    removed: list[Leak] = []
    try:
        clouds = clouds_of(session.inventory, cloud)
        check_clouds(session.loaded, clouds)
        found = find_leaks(session, clouds, now=dt.datetime.now(dt.UTC), snapshot_days=snapshot_age)
        if delete:
            chosen, unknown = select(found, delete)
            if unknown:
                raise InputError(
                    [
                        Problem(
                            CLI,
                            "--delete",
                            f"{name!r} is not among the leaks listed now",
                            "name an id or name `hybridctl leaks` lists (it deletes nothing it cannot show unused)",
                        )
                        for name in unknown
                    ]
                )
            for leak in chosen:
                delete_leak(session, leak)
                removed.append(leak)
                if output is Output.table:
                    env.stderr.print(f"removed {leak.cloud} {leak.kind} {escape(leak.label)}")
            found = [leak for leak in found if leak not in chosen]
    finally:
        session.close()
    if output is Output.json:
        print_json(env.stdout, leaks_document(found, removed, session.counter.as_dict()))
    else:
        render_leaks(env.stdout, found)
    return ExitStatus.OK


def billing_leftovers(env: Environment, inventory: Path, table: bool) -> dict[str, object]:
    """For `down`: what hybridctl created that still bills; never fails `down` (a read error is reported)."""
    session = _session(inventory)
    try:
        clouds = [c for c in clouds_of(session.inventory, None) if c != "azure" or session.inventory.azure is not None]
        found = leftovers(session, clouds)
    except HybridctlError as error:
        if table:
            env.stderr.print(f"[yellow]could not list what still bills[/]: {escape(str(error))}")
        return leftovers_document(None, str(error))
    finally:
        session.close()
    if table:
        render_leftovers(env.stdout, found)
    return leftovers_document(found)


def register(app: typer.Typer) -> None:
    app.command()(cost)
    app.command()(leaks)
