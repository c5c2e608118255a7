"""`hybridctl budget set | list | show | status | delete`: parse, call hybridctl.features.budget, render.

Exit codes: 0 ok, 1 error (a cloud refused, a target failed), 2 bad input (nothing called) or,
for ``status``, a declared budget missing in its cloud or a NAME that matches no budget;
``status`` exits 3 when any threshold is crossed (that wins over a missing budget), so cron or
CI can alarm on it. docs/budgets.md has the details.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hybridctl.cli.common import Output, OutputOpt, print_json, stderr, stdout
from hybridctl.core.errors import EXIT_BAD_INPUT, EXIT_ERROR, InputError, Problem
from hybridctl.core.inventory.budget_rules import SCOPE_PATTERN
from hybridctl.core.inventory.budgets import Budget
from hybridctl.core.inventory.load import load_inventory
from hybridctl.features.budget.diff import Target, targets_of
from hybridctl.features.budget.service import (
    Clouds,
    StatusRow,
    TargetPlan,
    apply_plans,
    check_azure_section,
    check_plans,
    discover,
    plan_delete,
    plan_set,
    read_targets,
    status_rows,
    summary,
)
from hybridctl.features.budget.validation import budget_from_flags

EXIT_THRESHOLD = 3  # `budget status`: a threshold is crossed
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

budget_app = typer.Typer(
    help="Spend alarms in AWS and Azure, declared once, applied idempotently (docs/budgets.md).",
    no_args_is_help=True,
)


class CloudChoice(StrEnum):
    aws = "aws"
    azure = "azure"
    both = "both"


class PeriodChoice(StrEnum):
    monthly = "monthly"
    quarterly = "quarterly"
    annual = "annual"


InventoryOpt = Annotated[
    Path | None,
    typer.Option("--inventory", "-i", help="Inventory YAML: its budgets, and its aws/azure sections for access."),
]
CloudOpt = Annotated[CloudChoice | None, typer.Option("--cloud", help="aws, azure or both.")]
ScopeOpt = Annotated[
    str | None, typer.Option("--scope", help="Azure scope: subscription or resource-group:NAME.", show_default=False)
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the change set, change nothing.")]
NameArg = Annotated[str | None, typer.Argument(help="Budget name.", show_default=False)]


# -- inputs ---------------------------------------------------------------------------------------


def _open(inventory: Path | None, scope: str | None = None) -> tuple[Clouds, list[Budget] | None, Any]:
    """Clouds and declared budgets from the inventory, or clouds from the environment."""
    if scope is not None and not re.fullmatch(SCOPE_PATTERN, scope):
        # A malformed scope must never fall back to the subscription (delete would hit the wrong budget).
        raise InputError(
            [
                Problem(
                    "(flags)",
                    "--scope",
                    f"scope '{scope}' is neither 'subscription' nor 'resource-group:<name>'",
                    "write subscription or resource-group:NAME",
                )
            ]
        )
    if inventory is None:
        return Clouds.from_env(), None, None
    loaded = load_inventory(inventory)
    return Clouds.from_inventory(loaded), list(loaded.inventory.budgets), loaded


def _which(cloud: CloudChoice | None, clouds: Clouds) -> list[str]:
    if cloud is None:
        return ["aws", "azure"] if clouds.has_azure else ["aws"]
    which = ["aws", "azure"] if cloud is CloudChoice.both else [cloud.value]
    if "azure" in which and not clouds.has_azure:
        raise InputError([clouds.missing_azure()])
    return which


def _scopes(scope: str | None, declared: Sequence[Budget] | None) -> list[str]:
    scopes = [b.scope for b in declared or [] if "azure" in b.clouds]
    if scope:
        scopes.append(scope)
    return list(dict.fromkeys(scopes))


def _named(declared: Sequence[Budget] | None, name: str) -> list[Budget]:
    """The declared budgets called ``name`` (budget names compare case-insensitively)."""
    return [b for b in declared or [] if b.name.lower() == name.lower()]


def _select(declared: Sequence[Budget], name: str, file: str) -> list[Budget]:
    chosen = _named(declared, name)
    if not chosen:
        known = ", ".join(b.name for b in declared) or "none"
        raise InputError([Problem(file, "budgets", f"no budget named '{name}' (declared: {known})", "check the name")])
    return chosen


# -- rendering ------------------------------------------------------------------------------------


def _changes_table(plans: Sequence[TargetPlan], title: str) -> Table:
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


def _report(plans: Sequence[TargetPlan], clouds: Clouds, output: Output, dry_run: bool, title: str) -> None:
    failed = [p for p in plans if p.result == "failed"]
    if output is Output.json:
        print_json(
            {
                "dry_run": dry_run,
                "targets": [p.as_dict() for p in plans],
                "summary": summary(plans),
                "calls": clouds.calls(),
                "ok": not failed,
            }
        )
    else:
        stdout.print(_changes_table(plans, title))
        counts = summary(plans)
        missing = [p for p in plans if p.result == "not found"]
        for plan in missing:
            stderr.print(
                f"[yellow]note[/]: {escape(plan.target.label())}: no budget of that name "
                f"(scope {escape(plan.target.scope)}); nothing to delete",
                soft_wrap=True,
            )
        if not counts and missing:
            stdout.print("Nothing deleted: no budget of that name was found.")
        elif not counts:
            stdout.print("[green]Nothing to do: every budget is as declared.[/]")
        else:
            done = "would change" if dry_run else "changed"
            parts = ", ".join(f"{n} {action}" for action, n in counts.items())
            changed = sum(1 for p in plans if p.changes)
            stdout.print(f"{changed} budget(s) {done}: {parts}")
        for plan in failed:
            stderr.print(f"[red]error[/]: {escape(plan.target.label())}: {escape(plan.error or '')}", soft_wrap=True)
    if failed:
        raise typer.Exit(EXIT_ERROR)


def _bar(row: StatusRow, width: int = 16) -> Text:
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


def _status_table(rows: Sequence[StatusRow]) -> Table:
    table = Table(title="budget status", title_justify="left", caption="bar: █ actual, ░ forecast, of the amount")
    table.add_column("budget", overflow="fold")
    table.add_column("spend", justify="right")
    table.add_column("", no_wrap=True)
    table.add_column("crossed", min_width=10)
    for row in rows:
        data = row.as_dict()
        if row.state is None:
            table.add_row(escape(row.target.label()), "", _bar(row), "[red]missing in the cloud[/]")
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
            _bar(row),
            f"[red]{escape(crossed)}[/]" if crossed else "[green]none[/]",
        )
    return table


def _state_table(rows: Sequence[Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("budget", "amount", "period", "start", "alerts", "declared"):
        table.add_column(column)
    for state, declared in rows:
        data = state.as_dict()
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


# -- commands -------------------------------------------------------------------------------------


@budget_app.command("set")
def set_budget(
    name: NameArg = None,
    inventory: InventoryOpt = None,
    amount: Annotated[str | None, typer.Option("--amount", help="Amount per period.", show_default=False)] = None,
    currency: Annotated[str | None, typer.Option("--currency", help="ISO code; AWS: USD only.")] = None,
    period: Annotated[PeriodChoice | None, typer.Option("--period", help="monthly, quarterly or annual.")] = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    alert: Annotated[
        list[str] | None,
        typer.Option("--alert", help="TYPE:THRESHOLD, repeatable: actual:80%, forecast:100%, actual:5 (an amount)."),
    ] = None,
    email: Annotated[list[str] | None, typer.Option("--email", help="Email recipient, repeatable.")] = None,
    sns_topic: Annotated[list[str] | None, typer.Option("--sns-topic", help="AWS SNS topic ARN.")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", help="Azure role notified, repeatable.")] = None,
    action_group: Annotated[
        list[str] | None, typer.Option("--action-group", help="Azure action group id, repeatable.")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="YYYY-MM-01, the first period's start.")] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="guard: the two-tier guard alerts (docs/budgets.md).")
    ] = None,
    idle: Annotated[str | None, typer.Option("--idle", help="guard: the 'nothing should be running' amount.")] = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Create or update budgets so they match the declaration: the inventory's, or the flags'."""
    flags: dict[str, Any] = {
        "amount": amount,
        "currency": currency,
        "period": period.value if period else None,
        "cloud": cloud.value if cloud else None,
        "scope": scope,
        "alerts": alert or None,
        "emails": email or None,
        "sns_topics": sns_topic or None,
        "roles": role or None,
        "action_groups": action_group or None,
        "start": start,
        "preset": preset,
        "idle": idle,
    }
    from_flags = any(value is not None for value in flags.values())
    clouds, declared, loaded = _open(inventory)
    if from_flags:
        if not name:
            raise InputError([Problem("(flags)", "NAME", "a budget built from flags needs a name", "pass NAME")])
        budgets = [budget_from_flags({"name": name, **flags})]
        check_azure_section(budgets, clouds, None)
    elif declared is None:
        raise InputError(
            [
                Problem(
                    "(flags)",
                    "-i / --amount",
                    "nothing to set",
                    "pass -i INVENTORY (its budgets: section) or NAME --amount N --alert actual:80% --email ...",
                )
            ]
        )
    else:
        budgets = _select(declared, name, str(inventory)) if name else list(declared)
        check_azure_section(budgets, clouds, loaded)
    try:
        plans = plan_set(budgets, clouds)
        check_plans(plans)
        if not dry_run:
            apply_plans(plans, clouds)
        _report(plans, clouds, output, dry_run, "budget changes" + (" (dry run)" if dry_run else ""))
    finally:
        clouds.close()


@budget_app.command("list")
def list_budgets(
    inventory: InventoryOpt = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Every budget in the AWS account and the Azure scopes (subscription, declared resource groups, --scope)."""
    clouds, declared, _ = _open(inventory, scope)
    try:
        which = _which(cloud, clouds)
        found = discover(clouds, which, _scopes(scope, declared))
        names = {(t.cloud, t.scope.lower(), t.name.lower()) for b in declared or [] for t in targets_of(b)}
        rows = [(s, (s.target.cloud, s.target.scope.lower(), s.target.name.lower()) in names) for s in found]
        if output is Output.json:
            print_json({"budgets": [{**s.as_dict(), "declared": d} for s, d in rows], "calls": clouds.calls()})
            return
        if not rows:
            stdout.print("No budgets found.")
            return
        stdout.print(_state_table(rows, "budgets"))
    finally:
        clouds.close()


@budget_app.command("show")
def show_budget(
    name: Annotated[str, typer.Argument(help="Budget name.")],
    inventory: InventoryOpt = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """One budget in each cloud: limit, alerts with their contacts, spend, and what `set` would change."""
    clouds, declared, loaded = _open(inventory, scope)
    try:
        chosen = _named(declared, name)
        if chosen:
            check_azure_section(chosen, clouds, loaded)
            plans = plan_set(chosen, clouds)
            if cloud is not None and cloud is not CloudChoice.both:
                plans = [p for p in plans if p.target.cloud == cloud.value]
        else:
            which = _which(cloud, clouds)
            targets = [Target("aws", "account", name)] if "aws" in which else []
            if "azure" in which:
                targets.append(Target("azure", scope or "subscription", name))
            found = read_targets(targets, clouds)
            plans = [TargetPlan(t, None, found.get(t), [], "undeclared") for t in targets]
        document = {
            "budgets": [
                {
                    **p.target.as_dict(),
                    "exists": p.actual is not None,
                    "declared": p.desired is not None,
                    "cloud_state": p.actual.as_dict() if p.actual else None,
                    "changes": [c.as_dict() for c in p.changes],
                }
                for p in plans
            ]
        }
        if output is Output.json:
            print_json(document)
            return
        for plan in plans:
            stdout.print(f"[bold]{escape(plan.target.label())}[/]")
            if plan.actual is None:
                stdout.print("  [red]not found[/]")
            else:
                data = plan.actual.as_dict()
                stdout.print(
                    f"  amount {data['amount']}{' ' + data['currency'] if data['currency'] else ''}, {data['period']}, "
                    f"start {data['start']}"
                )
                spend = data.get("spend")
                if spend:
                    stdout.print(f"  spend: actual {spend['actual']} {spend['unit']}, forecast {spend['forecast']}")
                for item in data["alerts"]:
                    contacts = ", ".join(item["emails"] + item["sns_topics"] + item["roles"] + item["action_groups"])
                    suffix = "%" if item["unit"] == "percent" else ""
                    state = f" [{item['state']}]" if item.get("state") else ""
                    stdout.print(
                        f"  alert {item['type']} > {item['threshold']}{suffix}{state} -> {escape(contacts)}",
                        highlight=False,
                    )
            if plan.desired is not None:
                if plan.changes:
                    for change in plan.changes:
                        stdout.print(f"  [yellow]{change.symbol} {change.action}[/] {escape(change.text())}")
                else:
                    stdout.print("  [green]as declared[/]")
    finally:
        clouds.close()


def _check_found(names: Sequence[str], rows: Sequence[StatusRow], which: Sequence[str]) -> None:
    """A budget asked for by name that is neither declared nor in any cloud read is bad input (exit 2)."""
    found = {r.target.name.lower() for r in rows}
    unknown = [n for n in dict.fromkeys(names) if n.lower() not in found]
    if unknown:
        where = " or ".join({"aws": "the AWS account", "azure": "the Azure scopes read"}[c] for c in which)
        raise InputError(
            [
                Problem(
                    "(flags)",
                    "NAME",
                    f"no budget named '{n}' is declared or exists in {where}",
                    "check the name (`hybridctl budget list` shows what exists; names compare case-insensitively)",
                )
                for n in unknown
            ]
        )


@budget_app.command("status")
def status(
    names: Annotated[list[str] | None, typer.Argument(help="Only these budgets.", show_default=False)] = None,
    inventory: InventoryOpt = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Actual and forecast spend against each budget; exit 3 when any alert threshold is crossed."""
    clouds, declared, loaded = _open(inventory, scope)
    try:
        chosen = declared
        if declared:
            check_azure_section(declared, clouds, loaded)
            which = [c.value for c in (CloudChoice.aws, CloudChoice.azure)]
            if cloud is not None and cloud is not CloudChoice.both:
                which = [cloud.value]
        else:
            which = _which(cloud, clouds)
        rows = status_rows(clouds, chosen, which, _scopes(scope, declared), names or ())
        _check_found(names or [], rows, [c for c in which if c != "azure" or clouds.has_azure])
        crossed = any(r.crossed for r in rows)
        missing = any(r.missing for r in rows)
        if output is Output.json:
            print_json({"budgets": [r.as_dict() for r in rows], "crossed": crossed, "missing": missing})
        elif not rows:
            stdout.print("No budgets found.")
        else:
            stdout.print(_status_table(rows))
            for row in rows:
                for note in row.notes:
                    stderr.print(f"[yellow]note[/]: {escape(row.target.label())}: {escape(note)}", soft_wrap=True)
        if crossed:
            raise typer.Exit(EXIT_THRESHOLD)
        if missing:
            raise typer.Exit(EXIT_BAD_INPUT)
    finally:
        clouds.close()


@budget_app.command("delete")
def delete_budget(
    name: Annotated[str, typer.Argument(help="Budget name.")],
    inventory: InventoryOpt = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Delete the named budget (and its alerts) in each cloud; nothing else is touched."""
    clouds, declared, _ = _open(inventory, scope)
    try:
        chosen = _named(declared, name)
        targets: list[Target] = []
        if chosen and cloud is None and scope is None:
            targets = [t for b in chosen for t in targets_of(b)]
        else:
            which = _which(cloud, clouds)
            if "aws" in which:
                targets.append(Target("aws", "account", name))
            if "azure" in which:
                azure_scopes = (
                    [scope] if scope else [b.scope for b in chosen if "azure" in b.clouds] or ["subscription"]
                )
                targets += [Target("azure", s, name) for s in dict.fromkeys(azure_scopes)]
        if any(t.cloud == "azure" for t in targets) and not clouds.has_azure:
            raise InputError([clouds.missing_azure()])
        plans = plan_delete(targets, clouds)
        if not dry_run:
            apply_plans(plans, clouds)
        _report(plans, clouds, output, dry_run, "budget deletions" + (" (dry run)" if dry_run else ""))
    finally:
        clouds.close()


def register(app: typer.Typer) -> None:
    app.add_typer(budget_app, name="budget")
