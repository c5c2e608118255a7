"""Azure Consumption budgets: one wrapper around every call, a pure parser, one PUT per changed budget.

Reads: GET ``{scope}/providers/Microsoft.Consumption/budgets/{name}`` for a declared budget (404:
missing), or the paged list at a scope. A budget is one ARM resource holding its notifications,
so every change to it (limit, period, any notification or contact) is one PUT of the whole
budget, sent only when the diff is not empty and carrying the eTag read (a concurrent change
answers 412 instead of being overwritten). Notifications the cloud already has keep their names.

azure-core retries throttling and 5xx as its policy says; every failure becomes a
:class:`~hybridctl.core.errors.RemoteError` with a hint (:func:`hybridctl.backends.clouds.arm_call`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from hybridctl.backends.arm_service import ArmService
from hybridctl.backends.clouds import Hints, arm_call, arm_error_code
from hybridctl.core.inventory.budget_rules import to_decimal, today_utc
from hybridctl.features.budget.diff import (
    Alarm,
    BudgetChange,
    BudgetState,
    Contacts,
    Notice,
    Spend,
    Target,
    final_notices,
)

T = TypeVar("T")

GRAINS = {"monthly": "Monthly", "quarterly": "Quarterly", "annual": "Annually"}
PERIODS = {v.lower(): k for k, v in GRAINS.items()}
KINDS = {"actual": "actual", "forecasted": "forecast"}
THRESHOLD_TYPES = {"actual": "Actual", "forecast": "Forecasted"}
OPERATORS = {"greaterthan": "gt", "greaterthanorequalto": "ge", "equalto": "eq"}
OPERATOR_NAMES = {"gt": "GreaterThan", "ge": "GreaterThanOrEqualTo", "eq": "EqualTo"}
TARGET = "azure budgets"
HINTS = Hints(
    permission="give the identity Cost Management Contributor on the scope (docs/budgets.md)",
    rerun="run the command again",
    limits="docs/budgets.md lists the limits",
    scope="scope",
)


# -- pure: ARM JSON <-> state -----------------------------------------------------------------------


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def parse_date(value: Any) -> dt.date | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).replace("Z", "+00:00")
    moment = dt.datetime.fromisoformat(text)
    return (moment.astimezone(dt.UTC) if moment.tzinfo else moment).date()


def scope_of(resource_id: str) -> str:
    """``subscription`` or ``resource-group:<name>`` from a budget's ARM id."""
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    if "resourcegroups" in lowered:
        return f"resource-group:{parts[lowered.index('resourcegroups') + 1]}"
    return "subscription"


def parse_notice(key: str, raw: dict[str, Any]) -> Notice:
    alarm = Alarm(
        kind=KINDS.get(str(raw.get("thresholdType") or "Actual").lower(), "actual"),
        threshold=to_decimal(raw.get("threshold", 0)),
        unit="percent",
        operator=OPERATORS.get(str(raw.get("operator")).lower(), str(raw.get("operator"))),
    )
    contacts = Contacts(
        emails=tuple(raw.get("contactEmails") or ()),
        roles=tuple(raw.get("contactRoles") or ()),
        action_groups=tuple(raw.get("contactGroups") or ()),
    )
    return Notice(alarm, contacts, bool(raw.get("enabled", True)), key)


def parse_budget(raw: dict[str, Any], scope: str | None = None) -> BudgetState:
    """A budget as ARM returns it (GET or list item), as cloud-neutral state."""
    props = raw.get("properties") or {}
    period = props.get("timePeriod") or {}
    current = props.get("currentSpend") or {}
    forecast = props.get("forecastSpend") or {}
    grain = str(props.get("timeGrain") or "")
    notices = tuple(parse_notice(k, v) for k, v in (props.get("notifications") or {}).items())
    spend = None
    if current:
        spend = Spend(
            actual=to_decimal(current.get("amount", 0)),
            forecast=to_decimal(forecast["amount"]) if forecast.get("amount") is not None else None,
            unit=str(current.get("unit") or ""),
        )
    return BudgetState(
        target=Target("azure", scope or scope_of(str(raw.get("id", ""))), str(raw.get("name"))),
        amount=to_decimal(props.get("amount", 0)),
        currency=None,  # Azure budgets have no currency: the amount is in the billing currency
        period=PERIODS.get(grain.lower(), grain.lower()),
        start=parse_date(period.get("startDate")),
        notices=notices,
        kind=str(props.get("category") or "Cost").upper(),
        spend=spend,
        etag=raw.get("eTag") or raw.get("etag"),
        raw=raw,
    )


def period_start(today: dt.date, period: str) -> dt.date:
    """The first day of the current period (what a new budget without a start date gets)."""
    if period == "quarterly":
        return dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    if period == "annual":
        return dt.date(today.year, 1, 1)
    return dt.date(today.year, today.month, 1)


def _arm_date(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def notification_body(notice: Notice) -> dict[str, Any]:
    return {
        "enabled": notice.enabled,
        "operator": OPERATOR_NAMES.get(notice.alarm.operator, "GreaterThan"),
        "threshold": _json_number(notice.alarm.threshold),
        "thresholdType": THRESHOLD_TYPES[notice.alarm.kind],
        "contactEmails": list(notice.contacts.emails),
        "contactRoles": list(notice.contacts.roles),
        "contactGroups": list(notice.contacts.action_groups),
    }


def budget_body(desired: BudgetState, actual: BudgetState | None, today: dt.date) -> dict[str, Any]:
    """The PUT body: the declared budget, with what hybridctl does not manage kept as read."""
    old_props = ((actual.raw or {}).get("properties") or {}) if actual is not None else {}
    old_period = dict(old_props.get("timePeriod") or {})
    if actual is not None and old_period.get("startDate"):
        # The start of an existing budget cannot change (the diff blocks a declared change).
        period = {k: v for k, v in old_period.items() if k in ("startDate", "endDate")}
    else:
        period = {"startDate": _arm_date(desired.start or period_start(today, desired.period))}
    props: dict[str, Any] = {
        "category": "Cost",
        "amount": _json_number(desired.amount),
        "timeGrain": GRAINS.get(desired.period, desired.period),
        "timePeriod": period,
        "notifications": {n.key: notification_body(n) for n in final_notices(desired, actual)},
    }
    if old_props.get("filter") is not None:
        props["filter"] = old_props["filter"]
    body: dict[str, Any] = {"properties": props}
    if actual is not None and actual.etag:
        body["eTag"] = actual.etag
    return body


# -- the adapter ------------------------------------------------------------------------------------


class AzureBudgets(ArmService):
    """Budgets at the subscription and resource-group scopes of one subscription."""

    cloud = "azure"
    client_class = "azure.mgmt.consumption.ConsumptionManagementClient"

    def scope_id(self, scope: str) -> str:
        """The ARM scope id of ``subscription`` / ``resource-group:<name>``."""
        kind, _, rg = scope.partition(":")
        # Spelled out, not scope(rg): an empty group name must never fall back to the subscription.
        return f"{self.subscription}/resourceGroups/{rg}" if kind == "resource-group" else self.subscription

    def client(self) -> Any:
        return self.arm.client()

    # -- the one call wrapper ----------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T]) -> T:
        return arm_call(fn, TARGET, what, HINTS)

    # -- reads -------------------------------------------------------------------------------------

    def read_one(self, target: Target) -> BudgetState | None:
        """The budget, or None when the scope has no budget of that name."""
        scope = self.scope_id(target.scope)
        client = self.client()

        def get() -> Any:
            # The SDK is imported on first call: the pure helpers here (period_start) serve
            # AWS-only inventories too, which must not load it.
            from azure.core.exceptions import HttpResponseError

            try:
                return client.budgets.get(scope, target.name)
            except HttpResponseError as exc:
                if exc.status_code == 404 and arm_error_code(exc) in ("ResourceNotFound", "NotFound", "404"):
                    return None
                raise

        raw = self.call(f"get budget {target.name}", get)
        if raw is None:
            return None
        return parse_budget(raw.as_dict(), target.scope)

    def read_scope(self, scope: str) -> list[BudgetState]:
        """Every budget a list at one scope returns (the pipeline counts each page request).

        Each budget's scope comes from its own id: on Azure a subscription-scope list also
        returns the budgets of its resource groups (spec example BudgetsList.json).
        """
        scope_id = self.scope_id(scope)
        client = self.client()
        items = self.call(f"list budgets at {scope}", lambda: [b.as_dict() for b in client.budgets.list(scope_id)])
        return [parse_budget(item) for item in items]

    def read(self, targets: Iterable[Target]) -> dict[Target, BudgetState | None]:
        return {target: self.read_one(target) for target in targets}

    # -- writes ------------------------------------------------------------------------------------

    def apply(self, desired: BudgetState | None, actual: BudgetState | None, changes: Iterable[BudgetChange]) -> None:
        """One PUT for any set of changes to a budget; DELETE for delete-budget."""
        todo = [c for c in changes if c.action != "blocked"]
        if not todo:
            return
        client = self.client()
        target = todo[0].target
        scope = self.scope_id(target.scope)
        if any(c.action == "delete-budget" for c in todo):

            def delete() -> None:
                from azure.core.exceptions import HttpResponseError

                try:
                    client.budgets.delete(scope, target.name)
                except HttpResponseError as exc:
                    # Budgets_Delete answers 200 only; a budget deleted since the read gets 404,
                    # which leaves the state this call asked for.
                    if exc.status_code != 404:
                        raise

            self.call(f"delete budget {target.name}", delete)
            return
        if desired is None:
            return
        body = budget_body(desired, actual, today_utc())
        self.call(f"put budget {target.name}", lambda: client.budgets.create_or_update(scope, target.name, body))
