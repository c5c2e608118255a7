"""`budget set | list | show | status | delete`: change sets, budget states, spend bars (docs/budgets.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hybridctl.features.budget.diff import BudgetChange, BudgetState, Contacts, Notice, Target, number
from hybridctl.features.budget.service import Crossing, StatusRow, TargetPlan, summary

# -- the objects every budget document is made of ------------------------------------------------


def target_document(target: Target) -> dict[str, str]:
    return {"cloud": target.cloud, "scope": target.scope, "name": target.name}


def contacts_document(contacts: Contacts) -> dict[str, list[str]]:
    return {
        "emails": list(contacts.emails),
        "sns_topics": list(contacts.sns_topics),
        "roles": list(contacts.roles),
        "action_groups": list(contacts.action_groups),
    }


def notice_document(notice: Notice) -> dict[str, Any]:
    """One alert of a budget."""
    out: dict[str, Any] = {
        "type": notice.alarm.kind,
        "threshold": number(notice.alarm.threshold),
        "unit": notice.alarm.unit,
        "operator": notice.alarm.operator,
        "enabled": notice.enabled,
        **contacts_document(notice.contacts),
    }
    if notice.key:
        out["key"] = notice.key
    if notice.state:
        out["state"] = notice.state
    return out


def state_document(state: BudgetState) -> dict[str, Any]:
    """A budget as a cloud reports it (or as declared)."""
    out: dict[str, Any] = {
        **target_document(state.target),
        "amount": number(state.amount),
        "currency": state.currency,
        "period": state.period,
        "start": state.start.isoformat() if state.start else None,
        "alerts": [notice_document(n) for n in state.notices],
    }
    if state.kind != "COST":
        out["budget_type"] = state.kind
    if state.spend is not None:
        out["spend"] = {
            "actual": number(state.spend.actual),
            "forecast": number(state.spend.forecast) if state.spend.forecast is not None else None,
            "unit": state.spend.unit,
        }
    return out


def change_document(change: BudgetChange) -> dict[str, Any]:
    out: dict[str, Any] = {"action": change.action, **target_document(change.target), "change": change.text()}
    if change.fields:
        out["fields"] = [{"field": f, "cloud": old, "declared": new} for f, old, new in change.fields]
    if change.before is not None:
        out["before"] = notice_document(change.before)
    if change.after is not None:
        out["after"] = notice_document(change.after)
    if change.why:
        out["why"] = change.why
    return out


def target_plan_document(plan: TargetPlan) -> dict[str, Any]:
    out: dict[str, Any] = {
        **target_document(plan.target),
        "result": plan.result,
        "changes": [change_document(c) for c in plan.changes],
    }
    if plan.error:
        out["error"] = plan.error
    return out


def crossing_document(crossing: Crossing) -> dict[str, Any]:
    return {
        "alert": crossing.notice.alarm.label(),
        "type": crossing.notice.alarm.kind,
        "limit": number(crossing.limit),
        "spend": number(crossing.spend),
    }


def status_row_document(row: StatusRow) -> dict[str, Any]:
    """One budget's spend against its amount (the table shows the same numbers)."""
    out: dict[str, Any] = {**target_document(row.target), "declared": row.declared is not None}
    state = row.state
    if state is None:
        out.update(state="missing")
        return out
    spend = state.spend
    percent = None
    if spend is not None and state.amount > 0:
        percent = float((spend.actual * 100 / state.amount).quantize(Decimal("0.1")))
    out.update(
        state="alarm" if row.crossed else "ok",
        amount=number(state.amount),
        currency=state.currency or (spend.unit if spend else None),
        period=state.period,
        actual=number(spend.actual) if spend else None,
        forecast=number(spend.forecast) if spend and spend.forecast is not None else None,
        spend_unit=spend.unit if spend else None,
        percent_used=percent,
        alerts=[notice_document(n) for n in state.notices],
        crossed=[crossing_document(c) for c in row.crossed],
    )
    if row.notes:
        out["notes"] = row.notes
    return out


# -- tables and documents per command -------------------------------------------------------------

STYLE_OF = {
    "create-budget": "green",
    "create-notification": "green",
    "update-budget": "yellow",
    "update-notification": "yellow",
    "update-contacts": "yellow",
    "delete-notification": "red",
    "delete-budget": "red",
    "blocked": "magenta",
}


def changes_table(plans: Sequence[TargetPlan], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("budget")
    table.add_column("change")
    table.add_column("detail")
    table.add_column("result", no_wrap=True)
    for plan in plans:
        if not plan.changes:
            table.add_row("", escape(plan.target.label()), "", "", f"[dim]{plan.result}[/]")
            continue
        for index, change in enumerate(plan.changes):
            style = STYLE_OF[change.action]
            result = plan.result if index == 0 else ""
            result_style = {"failed": "red", "ok": "green"}.get(result, "dim")
            table.add_row(
                f"[{style}]{change.symbol}[/]",
                escape(plan.target.label()) if index == 0 else "",
                change.action,
                escape(change.text()),
                f"[{result_style}]{result}[/]" if result else "",
            )
    return table


def plans_document(plans: Sequence[TargetPlan], calls: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
    """`budget set` / `budget delete -o json`."""
    return {
        "dry_run": dry_run,
        "targets": [target_plan_document(p) for p in plans],
        "summary": summary(plans),
        "calls": dict(calls),
        "ok": not any(p.result == "failed" for p in plans),
    }


def render_plans(out: Console, err: Console, plans: Sequence[TargetPlan], dry_run: bool, title: str) -> None:
    out.print(changes_table(plans, title))
    counts = summary(plans)
    missing = [p for p in plans if p.result == "not found"]
    for plan in missing:
        err.print(
            f"[yellow]note[/]: {escape(plan.target.label())}: no budget of that name "
            f"(scope {escape(plan.target.scope)}); nothing to delete",
            soft_wrap=True,
        )
    if not counts and missing:
        out.print("Nothing deleted: no budget of that name was found.")
    elif not counts:
        out.print("[green]Nothing to do: every budget is as declared.[/]")
    else:
        done = "would change" if dry_run else "changed"
        parts = ", ".join(f"{n} {action}" for action, n in counts.items())
        changed = sum(1 for p in plans if p.changes)
        out.print(f"{changed} budget(s) {done}: {parts}")
    for plan in plans:
        if plan.result == "failed":
            err.print(f"[red]error[/]: {escape(plan.target.label())}: {escape(plan.error or '')}", soft_wrap=True)


def bar(row: StatusRow, width: int = 16) -> Text:
    state = row.state
    text = Text()
    if state is None or state.spend is None or state.amount <= 0:
        text.append("·" * width, style="dim")
        return text
    actual = min(float(state.spend.actual / state.amount), 1.0)
    forecast = min(float((state.spend.forecast or Decimal(0)) / state.amount), 1.0)
    filled = round(actual * width)
    ahead = max(round(forecast * width) - filled, 0)
    kinds = {c.notice.alarm.kind for c in row.crossed}
    style = "red" if "actual" in kinds else "yellow" if kinds else "green"
    text.append("█" * filled, style=style)
    text.append("░" * ahead, style=style)
    text.append("·" * (width - filled - ahead), style="dim")
    return text


def status_table(rows: Sequence[StatusRow]) -> Table:
    table = Table(title="budget status", title_justify="left", caption="bar: █ actual, ░ forecast, of the amount")
    table.add_column("budget", overflow="fold")
    table.add_column("spend", justify="right")
    table.add_column("", no_wrap=True)
    table.add_column("crossed", min_width=10)
    for row in rows:
        data = status_row_document(row)
        if row.state is None:
            table.add_row(escape(row.target.label()), "", bar(row), "[red]missing in the cloud[/]")
            continue
        unit = data.get("spend_unit") or data.get("currency") or ""
        crossed = " ".join(c["alert"].replace(" ", "") for c in data["crossed"])
        actual = data["actual"] if data.get("actual") is not None else "-"
        lines = [f"{actual} / {data['amount']} {unit}".strip()]
        if data.get("percent_used") is not None:
            lines.append(f"{data['percent_used']:g}%")
        if data.get("forecast") is not None:
            lines[-1] += f" fc {data['forecast']}"
        table.add_row(
            escape(row.target.label()),
            "\n".join(lines),
            bar(row),
            f"[red]{escape(crossed)}[/]" if crossed else "[green]none[/]",
        )
    return table


def state_table(rows: Sequence[Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("budget", "amount", "period", "start", "alerts", "declared"):
        table.add_column(column)
    for state, declared in rows:
        data = state_document(state)
        alerts = "\n".join(
            f"{a['type']} > {a['threshold']}{'%' if a['unit'] == 'percent' else ''}" for a in data["alerts"]
        )
        table.add_row(
            escape(state.target.label()),
            f"{data['amount']} {data['currency'] or ''}".strip(),
            data["period"],
            data["start"] or "",
            escape(alerts),
            "yes" if declared else "no",
        )
    return table


def list_document(rows: Sequence[tuple[BudgetState, bool]], calls: Mapping[str, Any]) -> dict[str, Any]:
    """`budget list -o json`: each budget's state and whether the inventory declares it."""
    return {"budgets": [{**state_document(s), "declared": d} for s, d in rows], "calls": dict(calls)}


def render_list(console: Console, rows: Sequence[tuple[BudgetState, bool]]) -> None:
    if not rows:
        console.print("No budgets found.")
        return
    console.print(state_table(rows, "budgets"))


def show_document(plans: Sequence[TargetPlan]) -> dict[str, Any]:
    """`budget show -o json`."""
    return {
        "budgets": [
            {
                **target_document(p.target),
                "exists": p.actual is not None,
                "declared": p.desired is not None,
                "cloud_state": state_document(p.actual) if p.actual else None,
                "changes": [change_document(c) for c in p.changes],
            }
            for p in plans
        ]
    }


def render_show(console: Console, plans: Sequence[TargetPlan]) -> None:
    for plan in plans:
        console.print(f"[bold]{escape(plan.target.label())}[/]")
        if plan.actual is None:
            console.print("  [red]not found[/]")
        else:
            data = state_document(plan.actual)
            console.print(
                f"  amount {data['amount']}{' ' + data['currency'] if data['currency'] else ''}, {data['period']}, "
                f"start {data['start']}"
            )
            spend = data.get("spend")
            if spend:
                console.print(f"  spend: actual {spend['actual']} {spend['unit']}, forecast {spend['forecast']}")
            for item in data["alerts"]:
                contacts = ", ".join(item["emails"] + item["sns_topics"] + item["roles"] + item["action_groups"])
                suffix = "%" if item["unit"] == "percent" else ""
                state = f" [{item['state']}]" if item.get("state") else ""
                console.print(
                    f"  alert {item['type']} > {item['threshold']}{suffix}{state} -> {escape(contacts)}",
                    highlight=False,
                )
        if plan.desired is not None:
            if plan.changes:
                for change in plan.changes:
                    console.print(f"  [yellow]{change.symbol} {change.action}[/] {escape(change.text())}")
            else:
                console.print("  [green]as declared[/]")


def status_document(rows: Sequence[StatusRow]) -> dict[str, Any]:
    """`budget status -o json`."""
    return {
        "budgets": [status_row_document(r) for r in rows],
        "crossed": any(r.crossed for r in rows),
        "missing": any(r.missing for r in rows),
    }


def render_status(out: Console, err: Console, rows: Sequence[StatusRow]) -> None:
    if not rows:
        out.print("No budgets found.")
        return
    out.print(status_table(rows))
    for row in rows:
        for note in row.notes:
            err.print(f"[yellow]note[/]: {escape(row.target.label())}: {escape(note)}", soft_wrap=True)
