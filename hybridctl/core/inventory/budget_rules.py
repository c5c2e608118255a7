"""Budget rules with a message and a fix each, checked before any cloud call.

The rules are the clouds' documented limits, so a declaration that passes here is one both APIs
accept:

- AWS Budgets: names without ':' or '\\' (we use the stricter set both clouds accept), cost
  budgets in USD only, at most 5 notifications per budget, each with at most 10 email
  subscribers and 1 SNS subscriber, and at least one subscriber.
- Azure Consumption budgets: at most 5 notifications, percentage thresholds in (0, 1000],
  at least one contact email or action group per notification, a start date on the first of
  a month, on or after 2017-06-01 and at most 12 months ahead.

:func:`check_budget` and :func:`check_budget_list` return :class:`Issue` items located relative
to the budget / the list; :func:`raise_issues` hands them to pydantic as one error per issue,
with the fix in the error's context, so the inventory loader
(:func:`hybridctl.core.inventory.problems.problems_from_error`) turns each into a
:class:`~hybridctl.core.errors.Problem` with file, line and field.

Part of the inventory (the models in :mod:`hybridctl.core.inventory.budgets` run these rules from
their validators); the ``budget`` command's flags are read in :mod:`hybridctl.features.budget.validation`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    from hybridctl.core.inventory.budgets import Budget, BudgetAlert

Loc = tuple[str | int, ...]

# One name must work in both clouds: AWS forbids ':' and '\\', Azure's portal takes letters,
# digits, '-' and '_' only.
BUDGET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
SCOPE_PATTERN = r"^(subscription|resource-group:[A-Za-z0-9_.()-]{0,89}[A-Za-z0-9_()-])$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
SNS_ARN_PATTERN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$"
ACTION_GROUP_PATTERN = (
    r"^/subscriptions/[^/]+/resource[Gg]roups/[^/]+/providers/[Mm]icrosoft\.[Ii]nsights/[Aa]ction[Gg]roups/[^/]+$"
)

MAX_NOTIFICATIONS = 5  # AWS: 5 per budget; Azure: 5 per budget
AWS_MAX_EMAILS = 10  # per notification
AWS_MAX_SNS = 1  # per notification
AZURE_MAX_CONTACTS = 50  # contactEmails / contactGroups / contactRoles
MAX_PERCENT = Decimal(1000)  # Azure's upper bound; AWS takes it too
MAX_ABSOLUTE = Decimal("15000000000000")  # AWS Threshold maximum
EARLIEST_START = dt.date(2017, 6, 1)  # Azure: budgets start on or after June 1, 2017
FIX_NAME = "use 1-63 letters, digits, '-' or '_', starting with a letter or digit (both clouds accept that)"


@dataclass(frozen=True)
class Issue:
    """One broken rule, located relative to what was checked."""

    loc: Loc
    message: str
    fix: str
    value: Any = None


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month ``months`` after ``day``'s month."""
    index = day.month - 1 + months
    return dt.date(day.year + index // 12, index % 12 + 1, 1)


def number(value: Decimal) -> str:
    """A Decimal as people write it: 80, 7.5, 1000."""
    text = format(value.normalize(), "f")
    return text


def to_decimal(value: Any) -> Decimal:
    """An amount from a cloud's answer (text, int, float, None) as a Decimal; 0 when it is not a number.

    Budgets and cost reports read amounts the same way: a missing or garbled one counts as
    nothing spent rather than failing the whole read.
    """
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


# -- presets ----------------------------------------------------------------------------------------

# ``guard``, the reference's two-tier guard (docs: reference.md section 3): a small amount that
# means "nothing should be running" (the reference's 1,000 JPY) and a self-restraint amount (its
# 4,000 JPY, the budget amount), watched on actual spend, plus the forecast against the amount so
# a leak shows before it lands. Thresholds are percentages of the amount so the same preset works
# in both clouds (Azure takes percentages only). The alerts themselves are built in
# :func:`hybridctl.core.inventory.budgets.guard_alerts`.

# The reference's ratio: 1,000 JPY of a 4,000 JPY budget.
GUARD_IDLE_PERCENT = Decimal(25)
_CENT = Decimal("0.01")


def guard_idle_percent(amount: Decimal, idle: Decimal | None) -> Decimal:
    """The small tier as a percentage of the amount (two decimals at most)."""
    if idle is None or amount <= 0:
        return GUARD_IDLE_PERCENT
    return (idle * 100 / amount).quantize(_CENT).normalize()


# -- one budget -----------------------------------------------------------------------------------


def check_budget(budget: Budget, today: dt.date | None = None) -> list[Issue]:
    """Every rule one budget breaks (locations relative to the budget)."""
    today = today or today_utc()
    out: list[Issue] = []
    clouds = set(budget.clouds)
    _check_identity(budget, clouds, out)
    alerts = _check_alerts(budget, clouds, out)
    _check_contacts(budget, clouds, bool(alerts), out)
    _check_start(budget, today, out)
    return out


def _check_identity(budget: Budget, clouds: set[str], out: list[Issue]) -> None:
    if not re.fullmatch(BUDGET_NAME_PATTERN, budget.name):
        problem = "is longer than 63 characters" if len(budget.name) > 63 else "has characters that are not allowed"
        out.append(Issue(("name",), f"budget name '{budget.name}' {problem}", FIX_NAME, budget.name))
    if budget.amount <= 0:
        out.append(
            Issue(("amount",), f"amount {number(budget.amount)} is not above zero", "give a positive amount", None)
        )
    if not re.fullmatch(CURRENCY_PATTERN, budget.currency):
        out.append(
            Issue(
                ("currency",),
                f"'{budget.currency}' is not a currency code",
                "use an ISO 4217 code in capitals, e.g. USD, JPY, EUR",
                budget.currency,
            )
        )
    elif "aws" in clouds and budget.currency != "USD":
        out.append(
            Issue(
                ("currency",),
                f"AWS budgets are in USD only, whatever the billing currency; {budget.currency} cannot be used "
                f"with cloud: {budget.cloud}",
                f"use currency: USD, or declare two budgets: cloud: aws in USD and cloud: azure in {budget.currency}",
                budget.currency,
            )
        )
    if not re.fullmatch(SCOPE_PATTERN, budget.scope):
        out.append(
            Issue(
                ("scope",),
                f"scope '{budget.scope}' is neither 'subscription' nor 'resource-group:<name>'",
                "write subscription or resource-group:NAME (1-90 letters, digits, '_', '-', '.', '(' or ')')",
                budget.scope,
            )
        )
    elif budget.resource_group and "aws" in clouds:
        out.append(
            Issue(
                ("scope",),
                "AWS budgets are account-wide: a resource-group scope applies to Azure only",
                "set cloud: azure, or leave scope out",
                budget.scope,
            )
        )


def _check_alerts(budget: Budget, clouds: set[str], out: list[Issue]) -> list[BudgetAlert]:
    if budget.preset is not None and budget.alerts:
        out.append(
            Issue(
                ("preset",),
                f"preset {budget.preset} sets the alerts, and alerts are declared too",
                "remove the alerts, or remove the preset",
                budget.preset,
            )
        )
    if budget.idle is not None:
        if budget.preset != "guard":
            out.append(
                Issue(("idle",), "idle only applies to preset: guard", "add preset: guard, or remove idle", None)
            )
        elif not Decimal(0) < budget.idle < budget.amount:
            out.append(
                Issue(
                    ("idle",),
                    f"idle {number(budget.idle)} must be above 0 and below the amount {number(budget.amount)}",
                    "set idle to the small 'nothing should be running' amount, e.g. a quarter of the amount",
                    None,
                )
            )
            return []
        elif guard_idle_percent(budget.amount, budget.idle) <= 0:
            out.append(
                Issue(
                    ("idle",),
                    f"idle {number(budget.idle)} is under 0.01% of the amount",
                    "raise idle (a quarter of the amount is the reference's choice)",
                    None,
                )
            )
            return []
    alerts = budget.resolved_alerts()
    if len(alerts) > MAX_NOTIFICATIONS:
        out.append(
            Issue(
                ("alerts",),
                f"{len(alerts)} alerts; AWS and Azure allow at most {MAX_NOTIFICATIONS} per budget",
                "drop alerts or split them over two budgets",
                None,
            )
        )
    seen: dict[tuple[str, Decimal, str], int] = {}
    for index, alert in enumerate(budget.alerts):
        loc: Loc = ("alerts", index)
        if alert.unit == "percent" and not Decimal(0) < alert.threshold <= MAX_PERCENT:
            out.append(
                Issue(
                    (*loc, "threshold"),
                    f"threshold {number(alert.threshold)}% is outside (0, 1000]",
                    "give a percentage of the amount above 0 and at most 1000, e.g. 80",
                    None,
                )
            )
        if alert.unit == "absolute":
            if not Decimal(0) < alert.threshold <= MAX_ABSOLUTE:
                out.append(
                    Issue(
                        (*loc, "threshold"),
                        f"threshold {number(alert.threshold)} is not an amount above 0",
                        "give an amount above 0 in the budget's currency",
                        None,
                    )
                )
            elif "azure" in clouds:
                fix = "use unit: percent, or cloud: aws"
                if budget.amount > 0:
                    percent = (alert.threshold * 100 / budget.amount).quantize(Decimal("0.01"))
                    fix = (
                        f"use unit: percent with threshold {number(percent)} "
                        f"({number(alert.threshold)} of {number(budget.amount)}), or cloud: aws"
                    )
                out.append(
                    Issue(
                        (*loc, "unit"),
                        "Azure budget alerts are percentages of the amount; absolute thresholds are AWS only",
                        fix,
                        alert.unit,
                    )
                )
        key = (alert.type, alert.threshold, alert.unit)
        if key in seen:
            out.append(
                Issue(
                    loc,
                    f"alert {alert.label()} is declared twice (alerts {seen[key] + 1} and {index + 1})",
                    "remove one of them",
                    None,
                )
            )
        seen.setdefault(key, index)
    return alerts


def _check_list_field(
    values: Sequence[str], field: str, what: str, pattern: str | None, fix: str, out: list[Issue], flags: int = 0
) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if pattern is not None and not re.fullmatch(pattern, value, flags):
            out.append(Issue((field, index), f"'{value}' is not {what}", fix, value))
        elif not value.strip():
            out.append(Issue((field, index), f"empty {what}", fix, value))
        if value.lower() in seen:
            out.append(Issue((field, index), f"'{value}' is listed twice", "list each one once", value))
        seen.add(value.lower())


def _check_contacts(budget: Budget, clouds: set[str], has_alerts: bool, out: list[Issue]) -> None:
    _check_list_field(budget.emails, "emails", "an email address", EMAIL_PATTERN, "write name@domain.example", out)
    _check_list_field(
        budget.sns_topics,
        "sns_topics",
        "an SNS topic ARN",
        SNS_ARN_PATTERN,
        "write arn:aws:sns:REGION:ACCOUNT:TOPIC",
        out,
    )
    _check_list_field(budget.roles, "roles", "a role name", None, "name an Azure role, e.g. Owner", out)
    _check_list_field(
        budget.action_groups,
        "action_groups",
        "an action group resource id",
        ACTION_GROUP_PATTERN,
        "write /subscriptions/SUB/resourceGroups/RG/providers/microsoft.insights/actionGroups/NAME",
        out,
    )
    if "azure" not in clouds:
        for field in ("roles", "action_groups"):
            if getattr(budget, field):
                out.append(
                    Issue(
                        (field,),
                        f"{field} are Azure contacts; this budget is cloud: aws",
                        "remove them, or set cloud: azure / both",
                        None,
                    )
                )
    if "aws" not in clouds and budget.sns_topics:
        out.append(
            Issue(
                ("sns_topics",),
                "sns_topics are AWS subscribers; this budget is cloud: azure",
                "remove them (Azure notifies action_groups), or set cloud: aws / both",
                None,
            )
        )
    if "aws" in clouds:
        if len(budget.emails) > AWS_MAX_EMAILS:
            out.append(
                Issue(
                    ("emails",),
                    f"{len(budget.emails)} emails; an AWS notification takes at most {AWS_MAX_EMAILS} email "
                    "subscribers",
                    "use a mailing list address, or an SNS topic",
                    None,
                )
            )
        if len(budget.sns_topics) > AWS_MAX_SNS:
            out.append(
                Issue(
                    ("sns_topics",),
                    f"{len(budget.sns_topics)} SNS topics; an AWS notification takes at most one",
                    "keep one topic and subscribe the others to it",
                    None,
                )
            )
    if "azure" in clouds:
        for field in ("emails", "roles", "action_groups"):
            if len(getattr(budget, field)) > AZURE_MAX_CONTACTS:
                out.append(
                    Issue(
                        (field,),
                        f"{len(getattr(budget, field))} {field}; an Azure notification takes at most "
                        f"{AZURE_MAX_CONTACTS}",
                        "use a distribution list or an action group",
                        None,
                    )
                )
    if not has_alerts:
        return
    if "aws" in clouds and not budget.emails and not budget.sns_topics:
        out.append(
            Issue(
                ("emails",),
                "the alerts notify nobody: an AWS notification needs an email or an SNS topic",
                "add emails: [you@example.com] (or sns_topics)",
                None,
            )
        )
    if "azure" in clouds and not budget.emails and not budget.action_groups:
        roles = " (roles alone are not enough)" if budget.roles else ""
        out.append(
            Issue(
                ("emails",),
                f"the alerts notify nobody: an Azure notification needs an email or an action group{roles}",
                "add emails: [you@example.com] (or action_groups)",
                None,
            )
        )


def _check_start(budget: Budget, today: dt.date, out: list[Issue]) -> None:
    start = budget.start
    if start is None:
        return
    if start.day != 1:
        out.append(
            Issue(
                ("start",),
                f"start {start.isoformat()} is not the first of a month",
                f"use {start.replace(day=1).isoformat()} or {add_months(start, 1).isoformat()}",
                None,
            )
        )
    if start < EARLIEST_START:
        out.append(
            Issue(
                ("start",),
                f"start {start.isoformat()} is before {EARLIEST_START.isoformat()}, the earliest Azure accepts",
                "use a recent first of the month, or leave start out",
                None,
            )
        )
    latest = add_months(today, 12)
    if start > latest:
        out.append(
            Issue(
                ("start",),
                f"start {start.isoformat()} is more than 12 months ahead",
                f"use {latest.isoformat()} or earlier",
                None,
            )
        )


# -- the list -------------------------------------------------------------------------------------


def budget_targets(budget: Budget) -> list[tuple[str, str, str]]:
    """(cloud, scope, lower-case name) of every cloud object a budget stands for."""
    out = []
    for cloud in budget.clouds:
        scope = "account" if cloud == "aws" else budget.scope.lower()
        out.append((cloud, scope, budget.name.lower()))
    return out


def check_budget_list(budgets: Sequence[Budget]) -> list[Issue]:
    """Two declarations of one cloud budget (same name, cloud and scope) are a mistake."""
    out: list[Issue] = []
    owner: dict[tuple[str, str, str], int] = {}
    for index, budget in enumerate(budgets):
        for target in budget_targets(budget):
            if target in owner:
                out.append(
                    Issue(
                        (index, "name"),
                        f"budget '{budget.name}' in {target[0]} ({target[1]}) is declared twice "
                        f"(budgets {owner[target] + 1} and {index + 1})",
                        "give each budget its own name, or split them by cloud/scope",
                        budget.name,
                    )
                )
                break
            owner[target] = index
    return out


# -- issues -> pydantic errors -> problems ---------------------------------------------------------


def raise_issues(title: str, issues: Iterable[Issue]) -> None:
    """Raise the issues as one pydantic ValidationError (one line error each, fix in ctx)."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError("budget", "{message}", {"message": issue.message, "fix": issue.fix}),
            loc=issue.loc,
            input=issue.value,
        )
        for issue in issues
    ]
    raise ValidationError.from_exception_data(title, details)
