"""AWS Budgets actions moto 5.2.1 lacks or gets wrong, plus a spend feed for the admin API.

Spend model: AWS computes a budget's ``CalculatedSpend`` from billing data; the lab has
none, so the admin API *seeds* it (:func:`seed_spend`, "new billing data arrived"). Each
budget keeps the latest seeded figures as its underlying data and publishes them as
``CalculatedSpend``. ``UpdateBudget`` follows the AWS documentation: "When you modify a
budget, the calculatedSpend drops to zero until AWS has new usage data" -- the published
figures become zero until :func:`refresh_spend` (or another seed) delivers data again.

State lives on moto's own ``Budget``/``Notification`` objects, so moto's other budget
actions (CreateBudget, DescribeBudget, DeleteBudget) keep working on the same data.
"""

from __future__ import annotations

import json
from copy import deepcopy
from decimal import Decimal, InvalidOperation
from typing import Any

from moto.budgets.exceptions import BudgetMissingLimit, DuplicateRecordException, NotFoundException
from moto.budgets.models import Budget
from moto.budgets.responses import BudgetsResponse
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time

from .backends import DEFAULT_ACCOUNT_ID, STATE_LOCK, budgets_backend
from .paging import PageError, paginate

_SPEND_ATTR = "hl_underlying_spend"


class InvalidParameterException(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterException", message)


class InvalidNextTokenException(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("InvalidNextTokenException", message)


def _money(amount: Any, unit: str) -> dict[str, str]:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidParameterException(f"Invalid amount: {amount}") from None
    return {"Amount": format(value.normalize(), "f"), "Unit": unit}


def _zero_spend(unit: str) -> dict[str, dict[str, str]]:
    return {"ActualSpend": _money(0, unit), "ForecastedSpend": _money(0, unit)}


def _unit(budget: Budget) -> str:
    limit = budget.budget.get("BudgetLimit") or {}
    return str(limit.get("Unit", "USD"))


def notification_key(details: dict[str, Any]) -> tuple[str, str, float, str]:
    """AWS identifies a notification by type, operator, threshold and threshold type."""
    return (
        str(details.get("NotificationType")),
        str(details.get("ComparisonOperator")),
        float(details.get("Threshold", 0)),
        str(details.get("ThresholdType") or "PERCENTAGE"),
    )


def _subscriber_key(sub: dict[str, Any]) -> tuple[str, str]:
    return str(sub.get("SubscriptionType")), str(sub.get("Address"))


def _clean_notification(details: dict[str, Any]) -> dict[str, Any]:
    # NotificationState is output-only: it is computed, never stored.
    return {k: v for k, v in details.items() if k != "NotificationState"}


def notification_state(budget: Budget, details: dict[str, Any]) -> str:
    """ALARM when the published spend crosses the notification's threshold, else OK."""
    spend = budget.to_dict().get("CalculatedSpend", {})
    kind = "ForecastedSpend" if details.get("NotificationType") == "FORECASTED" else "ActualSpend"
    limit = (budget.budget.get("BudgetLimit") or {}).get("Amount")
    try:
        value = Decimal(str(spend.get(kind, {}).get("Amount", "0")))
        threshold = Decimal(str(details.get("Threshold", 0)))
        if (details.get("ThresholdType") or "PERCENTAGE") == "PERCENTAGE":
            if limit is None:
                return "OK"
            threshold = Decimal(str(limit)) * threshold / 100
    except InvalidOperation:
        return "OK"
    crossed = {
        "GREATER_THAN": value > threshold,
        "LESS_THAN": value < threshold,
        "EQUAL_TO": value == threshold,
    }.get(str(details.get("ComparisonOperator")), False)
    return "ALARM" if crossed else "OK"


def _render_notification(budget: Budget, details: dict[str, Any]) -> dict[str, Any]:
    out = _clean_notification(details)
    out.setdefault("ThresholdType", "PERCENTAGE")
    out["NotificationState"] = notification_state(budget, details)
    return out


# --------------------------------------------------------------------------- spend feed


def _find_budget(budget_name: str, account_id: str) -> Budget:
    budgets = budgets_backend(account_id).budgets[account_id]
    if budget_name not in budgets:
        raise KeyError(f"budget {budget_name!r} does not exist in account {account_id}")
    return budgets[budget_name]


def seed_spend(
    budget_name: str,
    actual: str | float | Decimal,
    forecasted: str | float | Decimal | None = None,
    *,
    account_id: str = DEFAULT_ACCOUNT_ID,
    unit: str | None = None,
) -> dict[str, dict[str, str]]:
    """New billing data for one budget: store it and publish it as CalculatedSpend."""
    with STATE_LOCK:
        budget = _find_budget(budget_name, account_id)
        unit = unit or _unit(budget)
        spend = {
            "ActualSpend": _money(actual, unit),
            "ForecastedSpend": _money(actual if forecasted is None else forecasted, unit),
        }
        setattr(budget, _SPEND_ATTR, spend)
        budget.budget["CalculatedSpend"] = deepcopy(spend)
        return deepcopy(spend)


def refresh_spend(account_id: str | None = None) -> int:
    """Billing data arrives again: republish every budget's underlying spend. Returns how many."""
    from moto.budgets.models import budgets_backends

    count = 0
    with STATE_LOCK:
        for caller, regional in list(budgets_backends.items()):
            if account_id is not None and caller != account_id:
                continue
            for backend in list(regional.values()):
                for budgets in backend.budgets.values():
                    for budget in budgets.values():
                        spend = getattr(budget, _SPEND_ATTR, None)
                        if spend is not None:
                            budget.budget["CalculatedSpend"] = deepcopy(spend)
                            count += 1
    return count


# --------------------------------------------------------------------------- responder


class ExtBudgetsResponse(BudgetsResponse):
    def _params(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or "{}")
        except ValueError:
            raise InvalidParameterException("Request body is not valid JSON") from None
        return data if isinstance(data, dict) else {}

    def _budget(self, params: dict[str, Any], verb: str, name: str | None = None) -> Any:
        name = name if name is not None else params.get("BudgetName")
        budgets = self.backend.budgets[str(params.get("AccountId"))]
        if name not in budgets:
            raise NotFoundException(f"Unable to {verb}: {name} - the budget doesn't exist.")
        return budgets[name]

    def _notification(self, budget: Any, details: dict[str, Any], verb: str) -> Any:
        # Returns moto's Notification; typed Any because moto annotates its subscribers as a
        # dict while storing the list of Subscriber dicts.
        key = notification_key(details)
        for notification in budget.notifications:
            if notification_key(notification.details) == key:
                return notification
        raise NotFoundException(f"Unable to {verb}: the notification doesn't exist.")

    @staticmethod
    def _page(items: list[Any], params: dict[str, Any], maximum: int) -> tuple[list[Any], str | None]:
        try:
            page = paginate(items, params.get("MaxResults"), params.get("NextToken"), minimum=1, maximum=maximum)
        except PageError as exc:
            if exc.field == "NextToken":
                raise InvalidNextTokenException(f"Invalid NextToken: {exc.value}") from None
            raise InvalidParameterException(f"MaxResults {exc.value}: {exc}") from None
        return page.items, page.next_token

    # -- budgets

    def update_budget(self) -> str:
        """Not implemented in moto."""
        params = self._params()
        new = params.get("NewBudget") or {}
        budget = self._budget(params, "update budget", new.get("BudgetName"))
        if "BudgetLimit" not in new and "PlannedBudgetLimits" not in new:
            raise BudgetMissingLimit()
        replaced = deepcopy(new)
        replaced.pop("CalculatedSpend", None)  # cannot be changed by the caller
        replaced.setdefault("TimePeriod", budget.budget.get("TimePeriod"))
        replaced["LastUpdatedTime"] = unix_time()
        budget.budget = replaced
        # "the calculatedSpend drops to zero until AWS has new usage data" (UpdateBudget docs)
        budget.budget["CalculatedSpend"] = _zero_spend(_unit(budget))
        return json.dumps({})

    def describe_budgets(self) -> str:
        """moto ignored MaxResults/NextToken."""
        params = self._params()
        budgets = [b.to_dict() for b in self.backend.budgets[str(params.get("AccountId"))].values()]
        items, token = self._page(budgets, params, 1000)
        body: dict[str, Any] = {"Budgets": items}
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    # -- notifications

    def describe_notifications_for_budget(self) -> str:
        """moto: HTTP 500 for an unknown budget, no pagination, no NotificationState."""
        params = self._params()
        budget = self._budget(params, "describe notifications")
        rendered = [_render_notification(budget, n.details) for n in budget.notifications]
        items, token = self._page(rendered, params, 100)
        body: dict[str, Any] = {"Notifications": items}
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    def create_notification(self) -> str:
        """moto accepted duplicates."""
        params = self._params()
        budget = self._budget(params, "create notification")
        details = _clean_notification(params.get("Notification") or {})
        if any(notification_key(n.details) == notification_key(details) for n in budget.notifications):
            raise DuplicateRecordException(record_type="notification", record_name=str(notification_key(details)))
        subscribers = list(params.get("Subscribers") or [])
        if not 1 <= len(subscribers) <= 11:
            raise InvalidParameterException("A notification needs between 1 and 11 subscribers.")
        budget.add_notification(details, subscribers)
        return json.dumps({})

    def delete_notification(self) -> str:
        """moto answered success for a notification that does not exist."""
        params = self._params()
        budget = self._budget(params, "delete notification")
        target = self._notification(budget, params.get("Notification") or {}, "delete notification")
        budget.notifications = [n for n in budget.notifications if n is not target]
        return json.dumps({})

    def update_notification(self) -> str:
        """Not implemented in moto. Subscribers stay with the notification."""
        params = self._params()
        budget = self._budget(params, "update notification")
        target = self._notification(budget, params.get("OldNotification") or {}, "update notification")
        new = _clean_notification(params.get("NewNotification") or {})
        for other in budget.notifications:
            if other is not target and notification_key(other.details) == notification_key(new):
                raise DuplicateRecordException(record_type="notification", record_name=str(notification_key(new)))
        target.details = new
        return json.dumps({})

    # -- subscribers

    def describe_subscribers_for_notification(self) -> str:
        """Not implemented in moto."""
        params = self._params()
        budget = self._budget(params, "describe subscribers")
        target = self._notification(budget, params.get("Notification") or {}, "describe subscribers")
        items, token = self._page(list(target.subscribers), params, 100)
        body: dict[str, Any] = {"Subscribers": items}
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    def create_subscriber(self) -> str:
        """Not implemented in moto."""
        params = self._params()
        budget = self._budget(params, "create subscriber")
        target = self._notification(budget, params.get("Notification") or {}, "create subscriber")
        sub = params.get("Subscriber") or {}
        if any(_subscriber_key(s) == _subscriber_key(sub) for s in target.subscribers):
            raise DuplicateRecordException(record_type="subscriber", record_name=str(sub.get("Address")))
        target.subscribers = [*target.subscribers, sub]
        return json.dumps({})

    def delete_subscriber(self) -> str:
        """Not implemented in moto."""
        params = self._params()
        budget = self._budget(params, "delete subscriber")
        target = self._notification(budget, params.get("Notification") or {}, "delete subscriber")
        key = _subscriber_key(params.get("Subscriber") or {})
        if not any(_subscriber_key(s) == key for s in target.subscribers):
            raise NotFoundException("Unable to delete subscriber: the subscriber doesn't exist.")
        target.subscribers = [s for s in target.subscribers if _subscriber_key(s) != key]
        return json.dumps({})

    def update_subscriber(self) -> str:
        """Not implemented in moto."""
        params = self._params()
        budget = self._budget(params, "update subscriber")
        target = self._notification(budget, params.get("Notification") or {}, "update subscriber")
        old = _subscriber_key(params.get("OldSubscriber") or {})
        new_sub = params.get("NewSubscriber") or {}
        new = _subscriber_key(new_sub)
        if not any(_subscriber_key(s) == old for s in target.subscribers):
            raise NotFoundException("Unable to update subscriber: the subscriber doesn't exist.")
        if new != old and any(_subscriber_key(s) == new for s in target.subscribers):
            raise DuplicateRecordException(record_type="subscriber", record_name=str(new_sub.get("Address")))
        target.subscribers = [new_sub if _subscriber_key(s) == old else s for s in target.subscribers]
        return json.dumps({})


OVERRIDDEN_ACTIONS = frozenset(
    {
        "UpdateBudget",
        "DescribeBudgets",
        "DescribeNotificationsForBudget",
        "CreateNotification",
        "DeleteNotification",
        "UpdateNotification",
        "DescribeSubscribersForNotification",
        "CreateSubscriber",
        "DeleteSubscriber",
        "UpdateSubscriber",
    }
)
