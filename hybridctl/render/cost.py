"""`cost`, `leaks` and what `down` leaves billing: spend tables, leaks and how to remove them (docs/cost.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridctl.features.cost.models import CloudCost, GroupCost, Leak, Threshold, money


def group_document(group: GroupCost) -> dict[str, Any]:
    return {
        "key": group.key,
        "managed": money(group.managed),
        "other": money(group.other),
        "total": money(group.total),
    }


def threshold_document(threshold: Threshold) -> dict[str, Any]:
    return {
        "budget": threshold.budget,
        "type": threshold.kind,
        "amount": money(threshold.amount),
        "label": threshold.label,
    }


def cloud_cost_document(report: CloudCost) -> dict[str, Any]:
    """One cloud's spend over the period, grouped, with the month's forecast and budget thresholds."""
    return {
        "cloud": report.cloud,
        "scope": report.scope,
        "currency": report.currency,
        "period": {"from": report.since.isoformat(), "to": report.until.isoformat()},
        "actual": money(report.actual),
        "managed": money(report.managed),
        "other": money(report.other),
        "month_to_date": money(report.month_to_date),
        "forecast_month": money(report.forecast),
        "group_by": report.group_by,
        "groups": [group_document(g) for g in report.groups],
        "daily": [{"date": d.isoformat(), "amount": money(v)} for d, v in sorted(report.daily.items())],
        "forecast_daily": [
            {"date": d.isoformat(), "amount": money(v)} for d, v in sorted(report.forecast_daily.items())
        ],
        "budgets": [{"name": n, "amount": money(a)} for n, a in sorted(report.budget_amounts.items())],
        "thresholds": [threshold_document(t) for t in report.thresholds],
        "notes": list(report.notes),
    }


def leak_document(leak: Leak) -> dict[str, Any]:
    """Something that bills while unused: what, where, how much a month, why, the command removing it."""
    return {
        "cloud": leak.cloud,
        "kind": leak.kind,
        "id": leak.id,
        "name": leak.name,
        "where": leak.where,
        "monthly_cost": money(leak.monthly),
        "currency": leak.currency,
        "price_source": leak.price_source,
        "why": leak.why,
        "remove": leak.remove,
        "managed": leak.managed,
    }


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}"


def render_cost(console: Console, report: CloudCost) -> None:
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
    console.print(table)
    console.print(
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
        console.print(f"  budget {escape(name)}: {_fmt(money(amount))} {report.currency}; {text}", soft_wrap=True)
    for note in report.notes:
        console.print(f"  [yellow]note[/]: {escape(note)}", soft_wrap=True)


def _crossed(report: CloudCost, kind: str, amount: object) -> bool:
    value = report.month_to_date if kind == "actual" else report.forecast
    return value is not None and value > amount  # type: ignore[operator]


def cost_document(reports: Sequence[CloudCost], calls: Mapping[str, Any], plot: Path | None) -> dict[str, Any]:
    """`cost -o json`."""
    document: dict[str, Any] = {"clouds": [cloud_cost_document(r) for r in reports], "calls": dict(calls)}
    if plot is not None:
        document["plot"] = str(plot)
    return document


def render_leaks(console: Console, leaks: Sequence[Leak]) -> None:
    if not leaks:
        console.print("[green]No leaks: nothing in the overlay's regions and resource groups bills while unused.[/]")
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
    console.print(table)
    console.print("  " + ", ".join(f"{v:,.2f} {k} per month" for k, v in sorted(total.items())) + " (estimates)")
    for leak in leaks:
        # AWS ids are short and what its CLI takes; Azure's are long ARM ids, its CLI takes the name.
        ident = f" ({leak.id})" if leak.cloud == "aws" and leak.name and leak.name != leak.id else ""
        console.print(f"  [b]{escape(leak.label)}[/]{escape(ident)}: {escape(leak.why)}", soft_wrap=True)
        console.print(f"    remove: {escape(leak.remove)}", soft_wrap=True, highlight=False)
    console.print("  or: hybridctl leaks -i INV --delete NAME --yes (only what this list shows)")


def leaks_document(found: Sequence[Leak], removed: Sequence[Leak], calls: Mapping[str, Any]) -> dict[str, Any]:
    """`leaks -o json`: what bills while unused, and what ``--delete`` removed."""
    return {
        "leaks": [leak_document(leak) for leak in found],
        "removed": [leak_document(leak) for leak in removed],
        "calls": dict(calls),
    }


def leftovers_document(found: Sequence[Leak] | None, error: str | None = None) -> dict[str, Any]:
    """The keys `down -o json` gains: what hybridctl created that still bills (None: could not list)."""
    if found is None:
        return {"billing_leftovers": None, "billing_leftovers_error": error}
    return {"billing_leftovers": [leak_document(leak) for leak in found]}


def render_leftovers(console: Console, found: Sequence[Leak]) -> None:
    if not found:
        console.print("[green]Nothing hybridctl created still bills.[/] (`hybridctl leaks` lists what else does.)")
        return
    console.print("[yellow]Still billing, created by hybridctl (down does not remove these):[/]")
    for leak in found:
        console.print(
            f"  {leak.cloud} {leak.kind} {escape(leak.label)} ({escape(leak.where)}): about "
            f"{money(leak.monthly):,.2f} {leak.currency}/month; remove: {escape(leak.remove)}",
            highlight=False,
            soft_wrap=True,
        )
