"""`hybridctl cost`, `hybridctl leaks` and `hybridctl graph`: parse, call hybridctl.features.cost, render.

Exit codes: 0 ok, 1 a cloud refused or failed (a refused read names the permission to grant),
2 bad input (nothing remote touched). docs/cost.md has the details.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hybridctl.cli.common import InventoryOpt, Output, OutputOpt, print_json, stderr, stdout
from hybridctl.core.errors import EXIT_OK, InputError, Problem
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.secrets import SecretStore
from hybridctl.features.cost import parse
from hybridctl.features.cost.leaks import select
from hybridctl.features.cost.models import DEFAULT_TAG, CloudCost, Leak, money
from hybridctl.features.cost.service import Session, check_clouds, clouds_of, cost_report, delete_leak, find_leaks

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


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}"


def _render_cost(report: CloudCost) -> None:
    title = (
        f"{report.cloud} {report.scope}: {report.since.isoformat()} to {report.until.isoformat()} "
        f"({report.currency}), by {report.group_by}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column(report.group_by)
    table.add_column("hybridctl", justify="right")
    table.add_column("other", justify="right")
    table.add_column("total", justify="right")
    for group in report.groups:
        table.add_row(escape(group.key), _fmt(money(group.managed)), _fmt(money(group.other)), _fmt(money(group.total)))
    table.add_section()
    table.add_row("[b]actual[/]", _fmt(money(report.managed)), _fmt(money(report.other)), _fmt(money(report.actual)))
    stdout.print(table)
    stdout.print(
        f"  month to date {_fmt(money(report.month_to_date))} {report.currency}; forecast for the month "
        f"{_fmt(money(report.forecast))} {report.currency}"
    )
    for name, amount in sorted(report.budget_amounts.items()):
        marks = [t for t in report.thresholds if t.budget == name]
        text = ", ".join(
            f"{t.label} = {_fmt(money(t.amount))}"
            + (" [red](crossed)[/]" if _crossed(report, t.kind, t.amount) else "")
            for t in marks
        )
        stdout.print(f"  budget {escape(name)}: {_fmt(money(amount))} {report.currency}; {text}", soft_wrap=True)
    for note in report.notes:
        stdout.print(f"  [yellow]note[/]: {escape(note)}", soft_wrap=True)


def _crossed(report: CloudCost, kind: str, amount: object) -> bool:
    value = report.month_to_date if kind == "actual" else report.forecast
    return value is not None and value > amount  # type: ignore[operator]


def cost(
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
) -> None:
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
    if output is Output.json:
        document = {"clouds": [r.as_dict() for r in reports], "calls": session.counter.as_dict()}
        if plot is not None:
            document["plot"] = str(plot)
        print_json(document)
    else:
        for report in reports:
            _render_cost(report)
        if plot is not None:
            stderr.print(f"wrote {plot}")
    raise typer.Exit(EXIT_OK)


def _render_leaks(leaks: list[Leak]) -> None:
    if not leaks:
        stdout.print("[green]No leaks: nothing in the overlay's regions and resource groups bills while unused.[/]")
        return
    table = Table(title="billing while unused", title_justify="left")
    table.add_column("cloud")
    table.add_column("kind")
    table.add_column("name", overflow="fold")
    table.add_column("where", overflow="fold")
    table.add_column("per month", justify="right", no_wrap=True)
    total: dict[str, float] = {}
    for leak in leaks:
        amount = money(leak.monthly) or 0.0
        total[leak.currency] = total.get(leak.currency, 0.0) + amount
        table.add_row(leak.cloud, leak.kind, escape(leak.label), escape(leak.where), f"{amount:,.2f} {leak.currency}")
    stdout.print(table)
    stdout.print("  " + ", ".join(f"{v:,.2f} {k} per month" for k, v in sorted(total.items())) + " (estimates)")
    for leak in leaks:
        # AWS ids are short and what its CLI takes; Azure's are long ARM ids, its CLI takes the name.
        ident = f" ({leak.id})" if leak.cloud == "aws" and leak.name and leak.name != leak.id else ""
        stdout.print(f"  [b]{escape(leak.label)}[/]{escape(ident)}: {escape(leak.why)}", soft_wrap=True)
        stdout.print(f"    remove: {escape(leak.remove)}", soft_wrap=True, highlight=False)
    stdout.print("  or: hybridctl leaks -i INV --delete NAME --yes (only what this list shows)")


def leaks(
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    cloud: CloudOpt = None,
    snapshot_age: Annotated[int, typer.Option("--snapshot-age", help="Snapshots older than DAYS are listed.")] = 90,
    delete: Annotated[
        list[str] | None, typer.Option("--delete", help="Remove this listed item (id or name); repeatable.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --delete: remove without asking.")] = False,
) -> None:
    """Resources that bill while doing nothing, with their monthly cost and the command that removes them."""
    _check_cloud(cloud)
    if snapshot_age < 1:
        raise InputError([Problem(CLI, "--snapshot-age", f"{snapshot_age} days", "use 1 day or more")])
    if delete and not yes:
        raise InputError(
            [Problem(CLI, "--delete", "removing needs confirmation", "add --yes (leaks never asks interactively)")]
        )
    session = _session(inventory)
    results: list[dict[str, object]] = []
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
                results.append({"removed": leak.as_dict()})
                if output is Output.table:
                    stderr.print(f"removed {leak.cloud} {leak.kind} {escape(leak.label)}")
            found = [leak for leak in found if leak not in chosen]
    finally:
        session.close()
    if output is Output.json:
        print_json(
            {
                "leaks": [leak.as_dict() for leak in found],
                "removed": [r["removed"] for r in results],
                "calls": session.counter.as_dict(),
            }
        )
    else:
        _render_leaks(found)
    raise typer.Exit(EXIT_OK)


def billing_leftovers(inventory: Path, table: bool) -> dict[str, object]:
    """For `down`: what hybridctl created that still bills; never fails `down` (a read error is reported)."""
    from hybridctl.core.errors import HybridctlError
    from hybridctl.features.cost.service import leftovers

    session = _session(inventory)
    try:
        clouds = [c for c in clouds_of(session.inventory, None) if c != "azure" or session.inventory.azure is not None]
        found = leftovers(session, clouds)
    except HybridctlError as error:
        if table:
            stderr.print(f"[yellow]could not list what still bills[/]: {escape(str(error))}")
        return {"billing_leftovers": None, "billing_leftovers_error": str(error)}
    finally:
        session.close()
    if table:
        if found:
            stdout.print("[yellow]Still billing, created by hybridctl (down does not remove these):[/]")
            for leak in found:
                stdout.print(
                    f"  {leak.cloud} {leak.kind} {escape(leak.label)} ({escape(leak.where)}): about "
                    f"{money(leak.monthly):,.2f} {leak.currency}/month; remove: {escape(leak.remove)}",
                    highlight=False,
                    soft_wrap=True,
                )
        else:
            stdout.print("[green]Nothing hybridctl created still bills.[/] (`hybridctl leaks` lists what else does.)")
    return {"billing_leftovers": [leak.as_dict() for leak in found]}


def register(app: typer.Typer) -> None:
    app.command()(cost)
    app.command()(leaks)
