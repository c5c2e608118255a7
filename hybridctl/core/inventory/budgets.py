"""The ``budgets:`` section of the inventory: one spend alarm, declared once for AWS, Azure or both.

Example::

    budgets:
      - name: hybrid-guard
        cloud: both                 # aws | azure | both
        amount: 30
        currency: USD               # AWS budgets are USD only
        period: monthly             # monthly | quarterly | annual
        scope: subscription         # Azure: subscription | resource-group:<name>
        alerts:
          - {type: actual, threshold: 25}              # percent of amount (default unit)
          - {type: forecast, threshold: 100}
          - {type: actual, threshold: 5, unit: absolute}  # AWS only: an amount in the currency
        emails: [me@example.com]
        sns_topics: []              # AWS: at most one SNS topic ARN
        roles: []                   # Azure: Owner, Contributor, Reader...
        action_groups: []           # Azure: action group resource ids
        start: 2026-12-01           # optional, the first of a month

or, for the reference's two-tier guard (``preset: guard``, see :func:`guard_alerts`)::

      - {name: guard, amount: 4000, currency: JPY, cloud: azure, preset: guard, emails: [me@example.com]}

Field types are checked by pydantic; every rule with a message of its own (limits, name
characters, threshold ranges, start dates, missing contacts, what each cloud supports) lives
in :mod:`hybridctl.core.inventory.budget_rules` and runs from the validators below, so the inventory
loader reports them with file, line, field and fix like any other problem.

A section of the inventory (:mod:`hybridctl.core.inventory.models` imports this module, so it must
not import that one); the clouds' budget objects are read and written in :mod:`hybridctl.features.budget`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from hybridctl.core.inventory.budget_rules import (
    ACTION_GROUP_PATTERN,
    BUDGET_NAME_PATTERN,
    CURRENCY_PATTERN,
    EMAIL_PATTERN,
    SCOPE_PATTERN,
    SNS_ARN_PATTERN,
    check_budget,
    check_budget_list,
    guard_idle_percent,
    raise_issues,
)

Cloud = Literal["aws", "azure", "both"]
Period = Literal["monthly", "quarterly", "annual"]
AlertType = Literal["actual", "forecast"]
AlertUnit = Literal["percent", "absolute"]
Preset = Literal["guard"]


class _Strict(BaseModel):
    # Same policy as the rest of the inventory: unknown keys are errors, models are values.
    model_config = ConfigDict(extra="forbid", frozen=True)


class BudgetAlert(_Strict):
    """One notification: fires when actual (or forecast) spend goes above the threshold."""

    type: AlertType = Field(
        "actual",
        description="actual: spend so far in the period; forecast: what the cloud predicts for the whole period.",
    )
    threshold: Decimal = Field(
        description="unit percent: percent of the amount, in (0, 1000]; unit absolute: an amount in the "
        "budget's currency, above 0 (AWS only).",
        json_schema_extra={"exclusiveMinimum": 0},
    )
    unit: AlertUnit = Field("percent", description="percent of the amount, or absolute (AWS only).")

    def label(self) -> str:
        suffix = "%" if self.unit == "percent" else ""
        return f"{self.type}:{self.threshold.normalize():f}{suffix}"


class Budget(_Strict):
    """A cost budget with its alerts, applied to the AWS account and/or an Azure scope."""

    name: str = Field(
        description="Budget name in each cloud: letters, digits, '-' and '_', 1-63 characters.",
        json_schema_extra={"pattern": BUDGET_NAME_PATTERN},
    )
    cloud: Cloud = Field("both", description="Where the budget lives: aws, azure or both.")
    amount: Decimal = Field(
        description="Budget amount per period, in `currency`.", json_schema_extra={"exclusiveMinimum": 0}
    )
    currency: str = Field(
        "USD",
        description="ISO 4217 code. AWS budgets are always USD; an Azure amount is in the subscription's "
        "billing currency, which this names.",
        json_schema_extra={"pattern": CURRENCY_PATTERN},
    )
    period: Period = Field("monthly", description="Budget period (AWS TimeUnit / Azure timeGrain).")
    scope: str = Field(
        "subscription",
        description="Azure scope: 'subscription' or 'resource-group:<name>'. AWS budgets are account-wide.",
        json_schema_extra={"pattern": SCOPE_PATTERN},
    )
    preset: Preset | None = Field(
        None,
        description="guard: the reference's two-tier guard (actual above `idle`, actual above 100%, forecast "
        "above 100%) instead of `alerts`.",
    )
    idle: Decimal | None = Field(
        None,
        description="preset guard: the 'nothing should be running' amount; default a quarter of `amount`.",
        json_schema_extra={"exclusiveMinimum": 0},
    )
    alerts: list[BudgetAlert] = Field(default_factory=list, description="Notifications, at most 5 per budget.")
    emails: list[str] = Field(
        default_factory=list,
        description="Email recipients of every alert (AWS: at most 10, Azure: at most 50).",
        json_schema_extra={"items": {"type": "string", "pattern": EMAIL_PATTERN}},
    )
    sns_topics: list[str] = Field(
        default_factory=list,
        description="AWS only: SNS topic ARN notified by every alert (at most one).",
        json_schema_extra={"items": {"type": "string", "pattern": SNS_ARN_PATTERN}},
    )
    roles: list[str] = Field(
        default_factory=list, description="Azure only: RBAC roles notified (Owner, Contributor, Reader...)."
    )
    action_groups: list[str] = Field(
        default_factory=list,
        description="Azure only: action group resource ids notified by every alert.",
        json_schema_extra={"items": {"type": "string", "pattern": ACTION_GROUP_PATTERN}},
    )
    start: dt.date | None = Field(
        None,
        description="First day of the first period, the first of a month at most 12 months ahead. Default: "
        "the start of the current period. Azure cannot change it later.",
    )

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Budget:
        context = info.context if isinstance(info.context, dict) else {}
        today = context.get("today")
        issues = check_budget(self, today if isinstance(today, dt.date) else None)
        if issues:
            raise_issues("Budget", issues)
        return self

    # -- derived ----------------------------------------------------------------------------------

    @property
    def clouds(self) -> tuple[str, ...]:
        return ("aws", "azure") if self.cloud == "both" else (self.cloud,)

    @property
    def resource_group(self) -> str | None:
        """The Azure resource group of a ``resource-group:<name>`` scope."""
        kind, _, rg = self.scope.partition(":")
        return rg if kind == "resource-group" else None

    def resolved_alerts(self) -> list[BudgetAlert]:
        """The alerts to apply: the preset's when one is set, else the declared ones."""
        if self.preset == "guard":
            return guard_alerts(self.amount, self.idle)
        return list(self.alerts)


def _check_list(budgets: list[Budget]) -> list[Budget]:
    issues = check_budget_list(budgets)
    if issues:
        raise_issues("budgets", issues)
    return budgets


BudgetList = Annotated[list[Budget], AfterValidator(_check_list)]


def budget_from_mapping(data: dict[str, Any], today: dt.date | None = None) -> Budget:
    """Validate one budget (flags build the same mapping the inventory holds)."""
    return Budget.model_validate(data, context={"today": today} if today else None)


# -- presets: alert sets worth having a name for ------------------------------------------------------


def guard_alerts(amount: Decimal, idle: Decimal | None = None) -> list[BudgetAlert]:
    """actual above the idle share, actual above 100%, forecast above 100%."""
    return [
        BudgetAlert(type="actual", threshold=guard_idle_percent(amount, idle), unit="percent"),
        BudgetAlert(type="actual", threshold=Decimal(100), unit="percent"),
        BudgetAlert(type="forecast", threshold=Decimal(100), unit="percent"),
    ]


PRESETS: dict[str, str] = {
    "guard": "two-tier guard: actual above idle (default 25% of the amount), actual above 100%, forecast above 100%",
}
