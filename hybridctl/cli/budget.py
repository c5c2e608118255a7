"""`hybridctl budget set | list | show | status | delete`: parse, call hybridctl.features.budget, render.

Exit codes (hybridctl.cli.exit): 0 ok, 1 error (a cloud refused, a target failed), 2 bad input
(nothing called) or, for ``status``, a NAME that matches no budget (BAD_INPUT) or a declared
budget missing in its cloud (DRIFT); ``status`` exits 3 (THRESHOLD) when any threshold is
crossed (that wins over a missing budget), so cron or CI can alarm on it. docs/budgets.md has
the details.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridctl.cli.common import Output, OutputOpt
from hybridctl.cli.environment import Environment
from hybridctl.core.errors import ExitStatus, InputError, Problem
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
)
from hybridctl.features.budget.validation import budget_from_flags
from hybridctl.render.base import print_json
from hybridctl.render.budget import (
    list_document,
    plans_document,
    render_list,
    render_plans,
    render_show,
    render_status,
    show_document,
    status_document,
)

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


# -- output ---------------------------------------------------------------------------------------


def _report(
    env: Environment, plans: Sequence[TargetPlan], clouds: Clouds, output: Output, dry_run: bool, title: str
) -> ExitStatus:
    if output is Output.json:
        print_json(env.stdout, plans_document(plans, clouds.calls(), dry_run))
    else:
        render_plans(env.stdout, env.stderr, plans, dry_run, title)
    return ExitStatus.ERROR if any(p.result == "failed" for p in plans) else ExitStatus.OK


# -- commands -------------------------------------------------------------------------------------


@budget_app.command("set")
def set_budget(
    ctx: typer.Context,
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
) -> ExitStatus:
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
        return _report(
            Environment.of(ctx), plans, clouds, output, dry_run, "budget changes" + (" (dry run)" if dry_run else "")
        )
    finally:
        clouds.close()


@budget_app.command("list")
def list_budgets(
    ctx: typer.Context,
    inventory: InventoryOpt = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    output: OutputOpt = Output.table,
) -> ExitStatus:
    """Every budget in the AWS account and the Azure scopes (subscription, declared resource groups, --scope)."""
    clouds, declared, _ = _open(inventory, scope)
    try:
        which = _which(cloud, clouds)
        found = discover(clouds, which, _scopes(scope, declared))
        names = {(t.cloud, t.scope.lower(), t.name.lower()) for b in declared or [] for t in targets_of(b)}
        rows = [(s, (s.target.cloud, s.target.scope.lower(), s.target.name.lower()) in names) for s in found]
        env = Environment.of(ctx)
        if output is Output.json:
            print_json(env.stdout, list_document(rows, clouds.calls()))
        else:
            render_list(env.stdout, rows)
        return ExitStatus.OK
    finally:
        clouds.close()


@budget_app.command("show")
def show_budget(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Budget name.")],
    inventory: InventoryOpt = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    output: OutputOpt = Output.table,
) -> ExitStatus:
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
        env = Environment.of(ctx)
        if output is Output.json:
            print_json(env.stdout, show_document(plans))
        else:
            render_show(env.stdout, plans)
        return ExitStatus.OK
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
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Only these budgets.", show_default=False)] = None,
    inventory: InventoryOpt = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    output: OutputOpt = Output.table,
) -> ExitStatus:
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
        env = Environment.of(ctx)
        if output is Output.json:
            print_json(env.stdout, status_document(rows))
        else:
            render_status(env.stdout, env.stderr, rows)
        if any(r.crossed for r in rows):
            return ExitStatus.THRESHOLD
        # A declared budget missing in its cloud: the account has drifted from the declaration.
        return ExitStatus.DRIFT if any(r.missing for r in rows) else ExitStatus.OK
    finally:
        clouds.close()


@budget_app.command("delete")
def delete_budget(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Budget name.")],
    inventory: InventoryOpt = None,
    cloud: CloudOpt = None,
    scope: ScopeOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> ExitStatus:
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
        return _report(
            Environment.of(ctx), plans, clouds, output, dry_run, "budget deletions" + (" (dry run)" if dry_run else "")
        )
    finally:
        clouds.close()


def register(app: typer.Typer) -> None:
    app.add_typer(budget_app, name="budget")
