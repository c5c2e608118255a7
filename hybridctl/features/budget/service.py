"""What the ``budget`` commands do, without any rendering: read, diff, apply, report spend.

``set``: read each declared target once, diff (pure), check what only the read can tell
(Azure refuses a new budget starting before the current period), then apply target by target.
A target whose diff is empty gets no call at all. ``status`` reads spend and the notifications
the clouds really have, and marks every threshold crossed.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hybridctl.backends.calls import CallCounter
from hybridctl.core.errors import HybridctlError, InputError, Problem
from hybridctl.core.inventory.budget_rules import today_utc
from hybridctl.core.inventory.budgets import Budget
from hybridctl.core.inventory.models import AwsSettings, AzureSettings
from hybridctl.core.secrets import SecretStore
from hybridctl.features.budget.diff import (
    ACTION_ORDER,
    BudgetChange,
    BudgetState,
    Notice,
    Target,
    blocked,
    delete_changes,
    desired_state,
    diff_budget,
    targets_of,
)

if TYPE_CHECKING:
    from hybridctl.core.inventory.load import LoadedInventory
    from hybridctl.features.budget.aws import AwsBudgets
    from hybridctl.features.budget.azure import AzureBudgets

CLOUDS = ("aws", "azure")


# -- where the clouds are ---------------------------------------------------------------------------


def settings_from_env(environ: dict[str, str] | None = None) -> tuple[AwsSettings, AzureSettings | None]:
    """AWS: botocore's own chain (AWS_PROFILE, AWS_ENDPOINT_URL, AWS_SHARED_CREDENTIALS_FILE...).

    Azure: AZURE_SUBSCRIPTION_ID (required for Azure), AZURE_TENANT_ID, AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET (read from the environment at call time, never copied), AZURE_AUTHORITY_HOST,
    HYBRIDCTL_ARM_ENDPOINT and REQUESTS_CA_BUNDLE.
    """
    env = dict(os.environ if environ is None else environ)
    aws = AwsSettings.model_validate({})
    subscription = env.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        return aws, None
    azure = AzureSettings.model_validate(
        {
            "subscription_id": subscription,
            "tenant_id": env.get("AZURE_TENANT_ID") or None,
            "client_id": env.get("AZURE_CLIENT_ID") or None,
            "client_secret": "env:AZURE_CLIENT_SECRET" if env.get("AZURE_CLIENT_SECRET") else None,
            "authority": env.get("AZURE_AUTHORITY_HOST") or None,
            "arm_endpoint": env.get("HYBRIDCTL_ARM_ENDPOINT") or None,
            "ca_bundle": env.get("REQUESTS_CA_BUNDLE") or None,
        }
    )
    return aws, azure


class Clouds:
    """The two adapters, made on first use from the inventory's (or the environment's) settings."""

    def __init__(
        self,
        aws_settings: AwsSettings,
        azure_settings: AzureSettings | None,
        secrets: SecretStore,
        *,
        origin: str = "(environment)",
    ) -> None:
        self.aws_settings = aws_settings
        self.azure_settings = azure_settings
        self.secrets = secrets
        self.origin = origin
        self.counters = {"aws": CallCounter(), "azure": CallCounter()}
        self._aws: AwsBudgets | None = None
        self._azure: AzureBudgets | None = None

    @classmethod
    def from_inventory(cls, loaded: LoadedInventory) -> Clouds:
        inventory = loaded.inventory
        return cls(
            inventory.aws or AwsSettings.model_validate({}),
            inventory.azure,
            SecretStore.for_inventory(inventory.name, inventory.secrets.store),
            origin=str(loaded.path),
        )

    @classmethod
    def from_env(cls) -> Clouds:
        aws, azure = settings_from_env()
        return cls(aws, azure, SecretStore.for_inventory("budget", None))

    @property
    def has_azure(self) -> bool:
        return self.azure_settings is not None

    def aws(self) -> AwsBudgets:
        if self._aws is None:
            from hybridctl.features.budget.aws import AwsBudgets

            self._aws = AwsBudgets(self.aws_settings, self.counters["aws"])
        return self._aws

    def azure(self) -> AzureBudgets:
        if self._azure is None:
            if self.azure_settings is None:
                raise InputError([self.missing_azure()])
            from hybridctl.features.budget.azure import AzureBudgets

            self._azure = AzureBudgets(self.azure_settings, self.secrets, self.counters["azure"])
        return self._azure

    def missing_azure(self, field: str = "azure", line: int | None = None) -> Problem:
        if self.origin == "(environment)":
            return Problem(
                "(environment)",
                "AZURE_SUBSCRIPTION_ID",
                "Azure is not configured",
                "pass -i with an inventory that has an azure section, or export AZURE_SUBSCRIPTION_ID "
                "(and AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)",
            )
        return Problem(
            self.origin,
            field,
            "the budget is for Azure and the inventory has no azure section",
            "add azure: {subscription_id: ...}, or set cloud: aws",
            line,
        )

    def calls(self) -> dict[str, Any]:
        return {cloud: counter.as_dict() for cloud, counter in self.counters.items()}

    def close(self) -> None:
        for adapter in (self._aws, self._azure):
            if adapter is not None:
                adapter.close()


# -- plans --------------------------------------------------------------------------------------------


@dataclass
class TargetPlan:
    """One cloud budget: what is declared, what the cloud has, what to do."""

    target: Target
    desired: BudgetState | None
    actual: BudgetState | None
    changes: list[BudgetChange]
    result: str = "planned"  # planned | in sync | ok | failed | not found
    error: str | None = None


def _ordered(changes: Iterable[BudgetChange]) -> list[BudgetChange]:
    return sorted(changes, key=lambda c: ACTION_ORDER.index(c.action))


def check_azure_section(budgets: Sequence[Budget], clouds: Clouds, loaded: LoadedInventory | None) -> None:
    """Budgets for Azure need Azure settings; say which budget, before any call."""
    if clouds.has_azure:
        return
    problems = []
    for index, budget in enumerate(budgets):
        if "azure" not in budget.clouds:
            continue
        if loaded is None:
            problems.append(clouds.missing_azure())
            break
        position = _inventory_index(loaded, budget)
        loc: tuple[str | int, ...] = ("budgets", position if position is not None else index, "cloud")
        from hybridctl.core.inventory.problems import field_name

        problems.append(clouds.missing_azure(field_name(loaded.raw, loc), loaded.line_of(loc)))
    if problems:
        raise InputError(problems)


def _inventory_index(loaded: LoadedInventory, budget: Budget) -> int | None:
    for index, declared in enumerate(loaded.inventory.budgets):
        if declared is budget:
            return index
    return None


def read_targets(targets: Sequence[Target], clouds: Clouds) -> dict[Target, BudgetState | None]:
    """One read per cloud scope: AWS lists the account once, Azure GETs each budget."""
    out: dict[Target, BudgetState | None] = {}
    aws_targets = [t for t in targets if t.cloud == "aws"]
    if aws_targets:
        found = clouds.aws().read({t.name for t in aws_targets})
        for target in aws_targets:
            out[target] = found.get(target.name)
    azure_targets = [t for t in targets if t.cloud == "azure"]
    if azure_targets:
        out.update(clouds.azure().read(azure_targets))
    return out


def plan_set(budgets: Sequence[Budget], clouds: Clouds) -> list[TargetPlan]:
    """Read and diff every declared target. No mutating call."""
    pairs = [(budget, target) for budget in budgets for target in targets_of(budget)]
    actual = read_targets([t for _, t in pairs], clouds)
    plans = []
    for budget, target in pairs:
        desired = desired_state(budget, target)
        have = actual.get(target)
        changes = _ordered(diff_budget(desired, have))
        plans.append(TargetPlan(target, desired, have, changes, "planned" if changes else "in sync"))
    return plans


def check_plans(plans: Sequence[TargetPlan], today: dt.date | None = None) -> None:
    """What only the read can tell, raised as bad input before any mutating call."""
    from hybridctl.features.budget.azure import period_start

    today = today or today_utc()
    problems = []
    for plan in plans:
        desired = plan.desired
        if desired is None or desired.start is None or plan.target.cloud != "azure":
            continue
        if plan.actual is None and desired.start < period_start(today, desired.period):
            first = period_start(today, desired.period)
            problems.append(
                Problem(
                    "(budget)",
                    f"{plan.target.label()}.start",
                    f"Azure creates budgets starting in the current period or later; {desired.start.isoformat()} "
                    f"is before {first.isoformat()}",
                    f"use start {first.isoformat()} or later, or leave start out",
                )
            )
    if problems:
        raise InputError(problems)


def apply_plans(plans: Sequence[TargetPlan], clouds: Clouds) -> None:
    """Apply each target's changes; one failing target does not stop the others."""
    for plan in plans:
        if not plan.changes:
            if plan.result != "not found":  # a delete of a budget that does not exist stays "not found"
                plan.result = "in sync"
            continue
        stop = blocked(plan.changes)
        if stop:
            plan.result = "failed"
            plan.error = "; ".join(c.why for c in stop)
            continue
        adapter: Any = clouds.aws() if plan.target.cloud == "aws" else clouds.azure()
        try:
            adapter.apply(plan.desired, plan.actual, plan.changes)
        except HybridctlError as error:
            plan.result = "failed"
            plan.error = str(error)
            continue
        plan.result = "ok"


def plan_delete(targets: Sequence[Target], clouds: Clouds) -> list[TargetPlan]:
    actual = read_targets(targets, clouds)
    plans = []
    for target in targets:
        have = actual.get(target)
        changes = delete_changes(have, target)
        plans.append(TargetPlan(target, None, have, changes, "planned" if changes else "not found"))
    return plans


# -- reading what exists --------------------------------------------------------------------------------


def discover(clouds: Clouds, which: Sequence[str], azure_scopes: Sequence[str]) -> list[BudgetState]:
    """Every budget of the AWS account and of the given Azure scopes."""
    out: list[BudgetState] = []
    if "aws" in which:
        out += sorted(clouds.aws().read().values(), key=lambda s: s.target.name)
    if "azure" in which:
        # A subscription-scope list already holds its resource groups' budgets (as on Azure), so
        # a resource group listed as well would repeat them: each budget is kept once, by its id.
        seen: set[str] = set()
        for scope in dict.fromkeys(["subscription", *azure_scopes]):
            found = [b for b in clouds.azure().read_scope(scope) if _budget_key(b) not in seen]
            seen.update(_budget_key(b) for b in found)
            out += sorted(found, key=lambda s: (s.target.scope != "subscription", s.target.scope, s.target.name))
    return out


def _budget_key(state: BudgetState) -> str:
    raw_id = str((state.raw or {}).get("id") or "")
    return raw_id.strip("/").lower() or f"{state.target.scope}/{state.target.name}".lower()


# -- status --------------------------------------------------------------------------------------------


@dataclass
class Crossing:
    notice: Notice
    limit: Decimal
    spend: Decimal


@dataclass
class StatusRow:
    target: Target
    state: BudgetState | None
    declared: Budget | None = None
    crossed: list[Crossing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        return self.state is None


def crossings(state: BudgetState) -> list[Crossing]:
    """The notifications whose threshold the reported spend is past (by each one's own operator)."""
    spend = state.spend
    if spend is None:
        return []
    out = []
    for notice in state.notices:
        if not notice.enabled:
            continue
        value = spend.actual if notice.alarm.kind == "actual" else spend.forecast
        if value is None:
            continue
        if notice.alarm.crossed(state.amount, value):
            out.append(Crossing(notice, notice.alarm.limit(state.amount), value))
    return out


def status_rows(
    clouds: Clouds,
    declared: Sequence[Budget] | None,
    which: Sequence[str],
    azure_scopes: Sequence[str] = (),
    names: Sequence[str] = (),
) -> list[StatusRow]:
    """Spend and crossings per budget.

    The declared budgets (a missing one is a row without state); when nothing is declared (no
    inventory, or one without ``budgets:``), every budget the clouds have. ``names`` narrows to
    those budgets, and a name that is not declared is looked up among what the clouds have, so
    a budget made from flags is found too. A name that matches nothing yields no row: the
    caller says so.
    """
    wanted = {n.lower() for n in names}
    rows: list[StatusRow] = []
    pairs = [
        (b, t)
        for b in declared or []
        for t in targets_of(b)
        if t.cloud in which and (not wanted or b.name.lower() in wanted)
    ]
    if pairs:
        actual = read_targets([t for _, t in pairs], clouds)
        rows = [StatusRow(target, actual.get(target), budget) for budget, target in pairs]
    undeclared = wanted - {b.name.lower() for b, _ in pairs}
    if not declared or undeclared:
        readable = [c for c in which if c != "azure" or clouds.has_azure]
        for state in discover(clouds, readable, azure_scopes):
            if (not wanted and not declared) or state.target.name.lower() in undeclared:
                rows.append(StatusRow(state.target, state))
    for row in rows:
        if row.state is None:
            continue
        row.crossed = crossings(row.state)
        spend = row.state.spend
        if (
            row.declared is not None
            and row.target.cloud == "azure"
            and spend is not None
            and spend.unit
            and spend.unit != row.declared.currency
        ):
            row.notes.append(
                f"Azure reports spend in {spend.unit}; the budget declares {row.declared.currency}: the amount is "
                f"in the billing currency ({spend.unit})"
            )
    return rows


def summary(plans: Sequence[TargetPlan]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for plan in plans:
        for change in plan.changes:
            counts[change.action] = counts.get(change.action, 0) + 1
    return counts
